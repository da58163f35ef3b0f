/**
 * The common agent start-up (Initializer) run against both strategies where the behaviour is
 * shared: the Linux capabilities with a recording NodeNetwork (see initializer.test.ts) and the
 * real Windows strategy over the fake Windows host (PowerShell port). Same bridge, gateway and
 * tunnel outcome; the Windows-only steps (HNS network, uplink and LOCAL port, tunnel local_ip) are
 * checked on top.
 */
import t from 'tap';
import { parseAgentConfig } from '../../src/common/agent/config.ts';
import { Initializer } from '../../src/common/agent/initializer.ts';
import { InterfaceStore } from '../../src/common/agent/interfacestore.ts';
import { StaticNodeConfigSource } from '../../src/common/agent/node-config.ts';
import type { GatewaySpec, HostInterface, NodeNetwork } from '../../src/common/host/node-network.ts';
import type { PlatformStrategy } from '../../src/common/host/platform.ts';
import { LINUX_CAPABILITIES } from '../../src/platform/linux/capabilities.ts';
import { createWindowsPlatform } from '../../src/platform/windows/platform.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { FakeOvs } from '../helpers/fake-ovs-bridge.ts';
import { FakeWindowsHost } from '../helpers/fake-windows-host.ts';

const node = new StaticNodeConfigSource({ name: 'node-2', podCIDRs: ['10.10.2.0/24'], nodeIPs: ['192.0.2.11'] });

const linuxNet: NodeNetwork = {
  prepareHost: () => Promise.resolve(),
  transportInterface: (): Promise<HostInterface> =>
    Promise.resolve({ name: 'eth0', index: 2, mtu: 1500, mac: '0a:00:00:00:00:aa', addresses: ['192.0.2.11/24'] }),
  configureGateway: (s: GatewaySpec): Promise<HostInterface> =>
    Promise.resolve({ name: s.name, index: 3, mtu: s.mtu, mac: '0a:00:00:00:00:bb', addresses: [...s.addresses] }),
};

function platforms(): { name: string; platform: PlatformStrategy; host?: FakeWindowsHost }[] {
  const h = new FakeWindowsHost();
  h.addUplink('Ethernet0', '00-15-5D-0A-0B-0C', '192.0.2.11', 24, '192.0.2.1');
  h.addAdapter('antrea-gw0', 'E6-3A-91-4C-0D-77');
  return [
    {
      name: 'linux',
      platform: {
        os: 'linux',
        capabilities: LINUX_CAPABILITIES,
        paths: { ovsRunDir: '', cniSocket: '', stateDir: '', cniBinDir: '', cniConfDir: '' },
        nodeNetwork: linuxNet,
        podInterfaces: undefined as never,
        close: () => Promise.resolve(),
      },
    },
    { name: 'windows', platform: createWindowsPlatform({ ps: h.ps, clock: new FakeClock() }), host: h },
  ];
}

for (const { name, platform, host } of platforms()) {
  t.test(`start-up and restart on ${name}`, async (t) => {
    const ovs = new FakeOvs();
    const config = parseAgentConfig('tunnelType: vxlan');
    const run = async () => {
      const bridge = ovs.bridge(config.ovsBridge);
      const store = new InterfaceStore();
      const init = new Initializer({ config, platform, bridge, store, nodeConfigSource: node });
      return { result: await init.initialize(new AbortController().signal), bridge, store };
    };
    const first = await run();
    t.match(first.result, { gatewayIPs: ['10.10.2.1'], mtu: 1450, gatewayOfport: 32769, tunnelOfport: 32768 });
    t.match(first.bridge.getPort('antrea-gw0'), {
      type: 'internal',
      mtu: 1450,
      externalIds: { 'antrea-type': 'gateway' },
    });
    const tun = first.bridge.getPort('antrea-tun0');
    t.match(tun, { type: 'vxlan', options: { remote_ip: 'flow', key: 'flow' } });
    t.equal(tun?.options['local_ip'], platform.os === 'windows' ? '192.0.2.11' : undefined, 'local_ip on Windows only');
    const mac = first.bridge.getPort('antrea-gw0')?.mac;
    const second = await run();
    t.equal(second.bridge.getPort('antrea-gw0')?.mac, mac, 'a restart keeps the gateway MAC');
    if (host !== undefined) {
      t.equal(host.networks.length, 1, 'one HNS network, also after a restart');
      t.match(second.bridge.getPort('Ethernet0'), { ofport: 32770, externalIds: { 'antrea-type': 'uplink' } });
      t.equal(second.bridge.get()?.otherConfig['datapath-id'], '000000155d0a0b0c');
      t.match(
        host.adapters.find((a) => a.Name === 'antrea-gw0'),
        { NlMtu: 1450, Forwarding: 1 },
      );
      t.ok(
        host.addresses.some((a) => a.IPAddress === '10.10.2.1'),
        'the gateway got its address',
      );
    }
    const bad = parseAgentConfig('tunnelType: gre\novsDatapathType: netdev');
    const fresh = new FakeOvs();
    const rejected = new Initializer({
      config: bad,
      platform,
      bridge: fresh.bridge('br-int'),
      store: new InterfaceStore(),
      nodeConfigSource: node,
    }).initialize(new AbortController().signal);
    if (platform.os === 'windows') {
      await t.rejects(rejected, { code: 'INVALID_CONFIG', message: /ovsDatapathType[\s\S]*tunnelType/ });
    } else {
      await rejected;
      t.pass('netdev with GRE is supported on Linux');
    }
  });
}
