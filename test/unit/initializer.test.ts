/**
 * Agent start-up (the common initializer) on the in-memory OVS fake and a recording NodeNetwork:
 * bridge, tunnel and gateway port specs, MTU, gateway addresses, idempotent restarts that keep the
 * gateway MAC and the Pods' ports, traffic modes, and the platform capability check. The real run
 * is test/integration/agent.test.ts.
 */
import t from 'tap';
import { defaultAgentConfig, parseAgentConfig, type AgentConfig } from '../../src/common/agent/config.ts';
import {
  encapOverhead,
  Initializer,
  podMtu,
  policyOnlyGatewayAddresses,
  tunnelPortSpec,
} from '../../src/common/agent/initializer.ts';
import { InterfaceStore } from '../../src/common/agent/interfacestore.ts';
import { StaticNodeConfigSource } from '../../src/common/agent/node-config.ts';
import type { GatewaySpec, HostInterface, NodeNetwork } from '../../src/common/host/node-network.ts';
import type { PlatformStrategy } from '../../src/common/host/platform.ts';
import { LINUX_CAPABILITIES } from '../../src/platform/linux/capabilities.ts';
import { FakeOvs } from '../helpers/fake-ovs-bridge.ts';

class RecordingNodeNetwork implements NodeNetwork {
  readonly calls: string[] = [];
  gateways: GatewaySpec[] = [];
  prepareHost(opts: { ipv4: boolean; ipv6: boolean }): Promise<void> {
    this.calls.push(`prepareHost v4=${opts.ipv4} v6=${opts.ipv6}`);
    return Promise.resolve();
  }
  transportInterface(): Promise<HostInterface> {
    this.calls.push('transportInterface');
    return Promise.resolve({
      name: 'uplink',
      index: 2,
      mtu: 1500,
      mac: '0a:00:00:00:00:aa',
      addresses: ['192.0.2.10/24'],
    });
  }
  configureGateway(spec: GatewaySpec): Promise<HostInterface> {
    this.calls.push(`configureGateway ${spec.name} ${spec.addresses.join(',')} mtu=${spec.mtu}`);
    this.gateways.push(spec);
    return Promise.resolve({
      name: spec.name,
      index: 3,
      mtu: spec.mtu,
      mac: '0a:00:00:00:00:bb',
      addresses: [...spec.addresses],
    });
  }
}

function platform(net: NodeNetwork): PlatformStrategy {
  return {
    os: 'linux',
    capabilities: LINUX_CAPABILITIES,
    paths: { ovsRunDir: '', cniSocket: '', stateDir: '', cniBinDir: '', cniConfDir: '' },
    nodeNetwork: net,
    podInterfaces: undefined as never,
    close: () => Promise.resolve(),
  };
}

const node = new StaticNodeConfigSource({ name: 'node-1', podCIDRs: ['10.10.1.0/24'], nodeIPs: ['192.0.2.10'] });

async function init(ovs: FakeOvs, config: AgentConfig, net = new RecordingNodeNetwork(), store = new InterfaceStore()) {
  const bridge = ovs.bridge(config.ovsBridge);
  const i = new Initializer({ config, platform: platform(net), bridge, store, nodeConfigSource: node });
  return { result: await i.initialize(new AbortController().signal), bridge, net, store };
}

t.test('a first start builds the bridge, tunnel and gateway', async (t) => {
  const ovs = new FakeOvs();
  const cfg = parseAgentConfig('ovsDatapathType: netdev');
  const { result, bridge, net, store } = await init(ovs, cfg);
  t.match(bridge.get(), { datapathType: 'netdev', protocols: ['OpenFlow10', 'OpenFlow15'] });
  const tun = bridge.getPort('antrea-tun0');
  t.match(tun, {
    type: 'geneve',
    ofport: 32768,
    options: { remote_ip: 'flow', key: 'flow' },
    externalIds: { 'antrea-type': 'tunnel' },
  });
  const gw = bridge.getPort('antrea-gw0');
  t.match(gw, { type: 'internal', ofport: 32769, mtu: 1450, externalIds: { 'antrea-type': 'gateway' } });
  t.match(gw?.mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  t.same(net.calls, [
    'prepareHost v4=true v6=false',
    'transportInterface',
    'configureGateway antrea-gw0 10.10.1.1/24 mtu=1450',
  ]);
  t.match(result, {
    nodeName: 'node-1',
    podCIDRs: ['10.10.1.0/24'],
    gatewayIPs: ['10.10.1.1'],
    mtu: 1450,
    gatewayOfport: 32769,
    tunnelOfport: 32768,
  });
  t.same(
    store.list().map((i) => `${i.type}:${i.name}`),
    ['gateway:antrea-gw0', 'tunnel:antrea-tun0'],
  );
});

t.test('a restart converges: same gateway MAC, Pod ports kept in the store', async (t) => {
  const ovs = new FakeOvs();
  const cfg = parseAgentConfig('ovsDatapathType: netdev');
  const first = await init(ovs, cfg);
  const mac = first.bridge.getPort('antrea-gw0')?.mac;
  await first.bridge.createPort({
    name: 'web-2f2276',
    type: 'system',
    externalIds: { 'antrea-type': 'container', 'container-id': 'c1', 'ip-address': '10.10.1.2' },
  });
  const second = await init(ovs, cfg);
  t.equal(second.bridge.getPort('antrea-gw0')?.mac, mac, 'the gateway keeps its MAC');
  t.equal(second.store.byContainer('c1', 'eth0')?.name, 'web-2f2276', 'Pods come back from OVSDB');
  t.equal(second.bridge.listPorts().length, 3);
});

t.test('traffic modes, tunnel options and MTU', async (t) => {
  const ovs = new FakeOvs();
  await init(ovs, parseAgentConfig('ovsDatapathType: netdev'));
  const noEncap = await init(ovs, parseAgentConfig('ovsDatapathType: netdev\ntrafficEncapMode: noEncap'));
  t.equal(noEncap.bridge.getPort('antrea-tun0'), undefined, 'noEncap removes the tunnel port');
  t.equal(noEncap.result.mtu, 1500, 'no encapsulation overhead');
  t.equal(noEncap.result.tunnelOfport, undefined);
  const fixed = await init(new FakeOvs(), parseAgentConfig('ovsDatapathType: netdev\ndefaultMTU: 1300'));
  t.equal(fixed.result.mtu, 1300);
  // The transport interface is still looked up (its subnets decide hybrid routing), not for the MTU.
  t.ok(fixed.net.calls.includes('transportInterface'), 'the transport interface is looked up for its subnets');

  t.same(tunnelPortSpec(parseAgentConfig('tunnelType: vxlan\ntunnelPort: 8472\ntunnelCsum: true')).tunnel, {
    remoteIp: 'flow',
    key: 'flow',
    dstPort: 8472,
    csum: true,
  });
  t.same(tunnelPortSpec(defaultAgentConfig(), '192.0.2.10').tunnel?.localIp, '192.0.2.10');
  t.equal(encapOverhead({ trafficEncapMode: 'encap', tunnelType: 'gre' }, false), 42);
  t.equal(encapOverhead({ trafficEncapMode: 'encap', tunnelType: 'geneve' }, true), 70);
  t.equal(encapOverhead({ trafficEncapMode: 'encap', tunnelType: 'stt' }, true), 0);
  t.equal(podMtu(defaultAgentConfig(), 9000, false), 8950);
  t.equal(podMtu(defaultAgentConfig(), 70000, false), 65000, 'capped with encapsulation');
});

t.test('networkPolicyOnly: no tunnel, no overhead, the gateway holds the Node IP /32', async (t) => {
  const { result, bridge, net } = await init(
    new FakeOvs(),
    parseAgentConfig('ovsDatapathType: netdev\ntrafficEncapMode: networkPolicyOnly'),
  );
  t.equal(bridge.getPort('antrea-tun0'), undefined, 'no tunnel port');
  t.equal(result.mtu, 1500, 'no encapsulation overhead');
  t.same(net.gateways[0]?.addresses, ['192.0.2.10/32']);
  t.equal(net.gateways[0]?.keepOtherAddresses, true, "the primary plugin's gateway addresses moved there stay");
  t.same(result.gatewayIPs, ['192.0.2.10']);
  t.equal(encapOverhead({ trafficEncapMode: 'networkPolicyOnly', tunnelType: 'geneve' }, false), 0);
  t.same(policyOnlyGatewayAddresses(['192.0.2.10', 'fd00::10'], ['198.51.100.3/24', '192.0.2.10/24']), [
    '192.0.2.10/32',
    'fd00::10/128',
  ]);
  t.same(policyOnlyGatewayAddresses(['203.0.113.9'], ['198.51.100.3/24']), ['198.51.100.3/32'], 'by name');
  t.same(policyOnlyGatewayAddresses(['203.0.113.9'], []), ['203.0.113.9/32']);
});

t.test('unsupported settings stop start-up before anything is touched', async (t) => {
  const ovs = new FakeOvs();
  const cfg = parseAgentConfig('ovsDatapathType: netdev\ntunnelType: stt\ntrafficEncryptionMode: wireGuard');
  await t.rejects(init(ovs, cfg), { code: 'INVALID_CONFIG', message: /tunnelType.*\n.*trafficEncryptionMode/ });
  t.equal(ovs.bridges.size, 0, 'no bridge was created');
});
