/**
 * The CNI server in CNI chaining mode (trafficEncapMode networkPolicyOnly) with in-memory fakes: a
 * fake primary plugin makes the Pod's veth and host route; antrea's ADD needs prevResult, attaches
 * the host side to OVS, moves the route to antrea-gw0, installs the Pod's flows and answers
 * prevResult unchanged, with no IPAM and no journal; DEL undoes only that; failures roll back;
 * GC, STATUS and start-up reconciliation leave IPAM alone. The same runs for real (ptp + antrea,
 * real packets) in test/integration/policy-only.test.ts.
 */
import t, { type Test } from 'tap';
import { type CniMethod, ErrorCode } from '../../src/common/apis/cni/proto.ts';
import { defaultAgentConfig } from '../../src/common/agent/config.ts';
import type { PendingAddJournal } from '../../src/common/agent/cniserver/journal.ts';
import { CniServer, type NodeNetworkContext } from '../../src/common/agent/cniserver/server.ts';
import { chainedPodIps } from '../../src/common/agent/cniserver/chaining.ts';
import type { InterfaceStore } from '../../src/common/agent/interfacestore.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import type { FakeOvsBridge } from '../helpers/fake-ovs-bridge.ts';
import {
  cniServerParts,
  FakeChaining,
  type FakeFlows,
  type FakeIpam,
  type FakePods,
} from './fixtures/cniserver-fakes.ts';

const ctx: NodeNetworkContext = { nodeName: 'n1', podCIDRs: ['10.10.1.0/24'], gatewayIPs: ['192.0.2.10'], mtu: 1500 };
const GW = 'antrea-gw0';

interface Rig {
  server: CniServer;
  pods: FakePods;
  chaining: FakeChaining;
  ipam: FakeIpam;
  flows: FakeFlows;
  bridge: FakeOvsBridge;
  store: InterfaceStore;
  journal: PendingAddJournal;
  call(
    method: CniMethod,
    o?: { containerId?: string; netns?: string; prevResult?: unknown; version?: string; extra?: object },
  ): Promise<{ code: number; message: string; text: string }>;
}

function prevResult(netns: string, host: string, ip: string, mac: string): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    interfaces: [
      { name: host, mac: '0a:00:00:00:00:01' },
      { name: 'eth0', mac, sandbox: netns },
    ],
    ips: [{ interface: 1, address: `${ip}/24`, gateway: '10.10.1.1' }],
    routes: [{ dst: '0.0.0.0/0' }],
    dns: {},
  };
}

async function rig(t: Test, opts: { chaining?: boolean } = {}): Promise<Rig> {
  const { bridge, pods, ipam, flows, store, journal } = await cniServerParts(t);
  const chaining = new FakeChaining(pods);
  if (opts.chaining !== false) pods.chaining = chaining;
  const server = new CniServer({
    config: { ...defaultAgentConfig(), hostProcPathPrefix: '', trafficEncapMode: 'networkPolicyOnly' },
    bridge,
    podInterfaces: pods,
    ipam,
    store,
    journal,
    podFlows: flows,
    clock: new FakeClock(),
  });
  server.setStoreReady(ctx);
  server.setNetworkReady();
  const call: Rig['call'] = async (method, o = {}) => {
    const config = {
      cniVersion: o.version ?? '1.0.0',
      name: 'chained',
      type: 'antrea',
      ...(o.prevResult === undefined ? {} : { prevResult: o.prevResult }),
      ...o.extra,
    };
    const resp = await server.handle(method, {
      cniArgs: {
        containerId: o.containerId ?? 'c1',
        netns: o.netns ?? '/run/netns/p1',
        ifname: 'eth0',
        args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web',
        path: '/opt/cni/bin',
        networkConfiguration: Buffer.from(JSON.stringify(config)),
      },
    });
    return {
      code: resp.error?.code ?? 0,
      message: resp.error?.message ?? '',
      text: Buffer.from(resp.cniResult).toString(),
    };
  };
  return { server, pods, chaining, ipam, flows, bridge, store, journal, call };
}

/** The primary plugin's ADD for Pod c1 in p1, and its result. */
function primary(r: Rig, netns = '/run/netns/p1', host = 'veth1111', ip = '10.10.1.5'): Record<string, unknown> {
  r.chaining.primaryAdd(netns, 'eth0', host, ip, '02:00:00:00:00:05');
  return prevResult(netns, host, ip, '02:00:00:00:00:05');
}

t.test('ADD without prevResult is a clear error and touches nothing', async (t) => {
  const r = await rig(t);
  primary(r);
  const add = await r.call('CmdAdd');
  t.equal(add.code, ErrorCode.UNSUPPORTED_FIELD);
  t.match(add.message, /prevResult is required.*networkPolicyOnly.*after the primary CNI plugin/);
  t.equal(r.bridge.getPort('veth1111'), undefined, 'no port');
  t.equal(r.chaining.routes.get('10.10.1.5/32'), 'veth1111', 'the route stays where the primary put it');
  const bad = await r.call('CmdAdd', { prevResult: { ips: [{ address: 'nope' }] } });
  t.equal(bad.code, ErrorCode.INVALID_NETWORK_CONFIG);
  t.match(bad.message, /prevResult\.ips\[0\]\.address/);
});

t.test('ADD attaches the primary interface, moves its route and answers prevResult', async (t) => {
  const r = await rig(t);
  const prev = primary(r);
  const add = await r.call('CmdAdd', { prevResult: prev });
  t.equal(add.code, 0, add.message);
  t.same(JSON.parse(add.text), prev, 'prevResult passed through unchanged');
  const port = r.bridge.getPort('veth1111');
  t.match(port?.externalIds, {
    'antrea-type': 'container',
    'container-id': 'c1',
    'attached-mac': '02:00:00:00:00:05',
    'ip-address': '10.10.1.5',
    'pod-name': 'web',
  });
  t.equal(r.flows.installed.get('veth1111')?.ofport, port?.ofport, 'Pod flows installed with the ofport');
  t.equal(r.chaining.routes.get('10.10.1.5/32'), GW, 'the route now goes to antrea-gw0');
  t.equal(r.ipam.held.size, 0, 'no IPAM by antrea');
  t.equal(r.journal.list().length, 0, 'no journal');
  t.equal(r.store.byContainer('c1', 'eth0')?.name, 'veth1111');

  const again = await r.call('CmdAdd', { prevResult: prev });
  t.equal(again.code, 0, 'a repeated ADD attaches again');
  t.equal(r.store.list('container').length, 1);

  const check = await r.call('CmdCheck', { prevResult: prev });
  t.equal(check.code, 0, check.message);
  t.equal((await r.call('CmdCheck')).code, ErrorCode.UNSUPPORTED_FIELD, 'CHECK needs prevResult');
});

t.test('DEL undoes only what antrea did', async (t) => {
  const r = await rig(t);
  const prev = primary(r);
  t.equal((await r.call('CmdAdd', { prevResult: prev })).code, 0);
  const del = await r.call('CmdDel', { prevResult: prev });
  t.equal(del.code, 0, del.message);
  t.equal(r.bridge.getPort('veth1111'), undefined, 'port removed');
  t.notOk(r.flows.installed.has('veth1111'), 'flows removed');
  t.equal(r.chaining.routes.get('10.10.1.5/32'), undefined, 'the Pod route on antrea-gw0 removed');
  t.ok(r.pods.links.has('veth1111'), "the veth stays: it is the primary plugin's");
  t.equal(r.store.byContainer('c1', 'eth0'), undefined);
  r.chaining.primaryDel('/run/netns/p1', 'eth0');
  t.equal((await r.call('CmdDel')).code, 0, 'a repeated DEL (no prevResult, nothing left) succeeds');
});

t.test('failures roll back and map to CNI codes', async (t) => {
  const r = await rig(t);
  const prev = primary(r);
  r.flows.fail = true;
  const add = await r.call('CmdAdd', { prevResult: prev });
  t.equal(add.code, ErrorCode.CONFIG_INTERFACE_FAILURE);
  t.match(add.message, /failed to connect container c1 to OVS: bundle rejected/);
  t.equal(r.bridge.getPort('veth1111'), undefined, 'port rolled back');
  t.equal(r.chaining.routes.get('10.10.1.5/32'), undefined, 'moved route released');
  t.equal(r.store.list('container').length, 0);
  r.flows.fail = false;

  r.chaining.fail = 'takeOver';
  t.equal((await r.call('CmdAdd', { prevResult: prev })).code, ErrorCode.CONFIG_INTERFACE_FAILURE);
  t.equal(r.bridge.getPort('veth1111'), undefined, 'port rolled back after a route failure');
  r.chaining.fail = undefined;

  const missing = await r.call('CmdAdd', {
    containerId: 'c2',
    netns: '/run/netns/p2',
    prevResult: prevResult('/run/netns/p2', 'veth2222', '10.10.1.6', '02:00:00:00:00:06'),
  });
  t.equal(missing.code, ErrorCode.CONFIG_INTERFACE_FAILURE, 'no interface made by a primary plugin');
  t.match(missing.message, /no eth0 in \/run\/netns\/p2/);
  const noNetns = await r.call('CmdAdd', {
    containerId: 'c3',
    netns: '/run/netns/gone',
    prevResult: prevResult('/run/netns/gone', 'veth3333', '10.10.1.7', '02:00:00:00:00:07'),
  });
  t.equal(noNetns.code, ErrorCode.INVALID_ENVIRONMENT_VARIABLES);
  const noIp = await r.call('CmdAdd', { prevResult: { ...prev, ips: [] } });
  t.equal(noIp.code, ErrorCode.INVALID_NETWORK_CONFIG);
  t.match(noIp.message, /prevResult: no address for interface eth0/);
  t.equal((await r.call('CmdAdd', { prevResult: prev })).code, 0, 'and then it works');
});

t.test('a platform without chaining says so', async (t) => {
  const r = await rig(t, { chaining: false });
  const prev = primary(r);
  const add = await r.call('CmdAdd', { prevResult: prev });
  t.equal(add.code, ErrorCode.CONFIG_INTERFACE_FAILURE);
  t.match(add.message, /does not support CNI chaining/);
});

t.test('GC, STATUS and reconciliation leave IPAM to the primary plugin', async (t) => {
  const r = await rig(t);
  t.equal((await r.call('CmdAdd', { prevResult: primary(r) })).code, 0);
  const p2 = primary(r, '/run/netns/p2', 'veth2222', '10.10.1.6');
  t.equal((await r.call('CmdAdd', { containerId: 'c2', netns: '/run/netns/p2', prevResult: p2 })).code, 0);
  r.ipam.held.set('10.10.1.99', { containerId: 'someone', ifname: 'eth0' });
  const gc = await r.call('CmdGC', {
    version: '1.1.0',
    extra: { 'cni.dev/valid-attachments': [{ containerID: 'c2', ifname: 'eth0' }] },
  });
  t.equal(gc.code, 0, gc.message);
  t.equal(r.bridge.getPort('veth1111'), undefined, 'the stale attachment is detached');
  t.ok(r.pods.links.has('veth1111'), 'its veth is left to the primary plugin');
  t.ok(r.bridge.getPort('veth2222'), 'the valid one stays');
  t.equal(r.ipam.gcCalls, 0, 'no IPAM GC');
  t.ok(r.ipam.held.has('10.10.1.99'), 'no reservation released');
  t.equal((await r.call('CmdStatus', { version: '1.1.0' })).code, 0);
  t.equal(r.ipam.statusCalls, 0, 'STATUS does not ask an IPAM');

  // The primary plugin removed c2's veth while the agent was down: reconciliation detaches it.
  r.chaining.primaryDel('/run/netns/p2', 'eth0');
  const report = await r.server.reconcile(ctx);
  t.same(report.removedInterfaces, ['veth2222']);
  t.same(report.releasedIps, []);
  t.ok(r.ipam.held.has('10.10.1.99'));
});

t.test('chainedPodIps picks the container interface addresses', (t) => {
  const prev = {
    interfaces: [{ name: 'veth1' }, { name: 'eth0', sandbox: '/n' }, { name: 'net1', sandbox: '/n' }],
    ips: [
      { address: '10.0.0.1/32', interface: 0 },
      { address: '10.1.0.5/24', interface: 1 },
      { address: '10.2.0.5/24', interface: 2 },
      { address: 'fd00::5/64' },
    ],
    routes: [],
    dns: {},
  };
  t.same(
    chainedPodIps(prev, 'eth0', '/n').map((i) => i.address),
    ['10.1.0.5/24', 'fd00::5/64'],
  );
  t.end();
});
