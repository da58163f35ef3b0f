/**
 * The CNI server's logic with in-memory fakes of OVS (the shared FakeOvs), the Pod interface
 * configurator and IPAM: ADD/DEL/CHECK/GC/STATUS, validation codes, rollback after a failure at
 * every step, convergence of a repeated ADD, per-container serialization, readiness, and start-up
 * reconciliation (journaled ADDs rolled back, dead interfaces removed, leaked IPs released, IPs in
 * use kept). The same behaviour runs against the real components in test/integration/cni.test.ts.
 */
import t, { type Test } from 'tap';
import { type CniMethod, ErrorCode } from '../../src/common/apis/cni/proto.ts';
import type { CniVersion } from '../../src/common/apis/cni/spec.ts';
import { defaultAgentConfig } from '../../src/common/agent/config.ts';
import { PendingAddJournal } from '../../src/common/agent/cniserver/journal.ts';
import { OfportAllocator, POD_OFPORT_MIN } from '../../src/common/agent/cniserver/ofport-allocator.ts';
import {
  CNI_ADD_CRASH_POINTS,
  CniServer,
  type DatapathHealth,
  type NodeNetworkContext,
} from '../../src/common/agent/cniserver/server.ts';
import { InterfaceStore } from '../../src/common/agent/interfacestore.ts';
import { podHostInterfaceName } from '../../src/common/host/pod-interfaces.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { FakeOvs, type FakeOvsBridge } from '../helpers/fake-ovs-bridge.ts';
import { cniServerParts, type FakeFlows, type FakeIpam, type FakePods } from './fixtures/cniserver-fakes.ts';

const ctx: NodeNetworkContext = { nodeName: 'n1', podCIDRs: ['10.10.1.0/24'], gatewayIPs: ['10.10.1.1'], mtu: 1450 };

interface Rig {
  server: CniServer;
  pods: FakePods;
  ipam: FakeIpam;
  flows: FakeFlows;
  ovs: FakeOvs;
  bridge: FakeOvsBridge;
  store: InterfaceStore;
  journal: PendingAddJournal;
  clock: FakeClock;
  crashes: string[];
  health: { value: DatapathHealth };
  call(
    method: CniMethod,
    o?: Partial<CallOpts>,
  ): Promise<{ code: number; message: string; result: Record<string, unknown> | undefined }>;
}

interface CallOpts {
  containerId: string;
  netns: string;
  ifname: string;
  pod: string;
  version: CniVersion;
  config: Record<string, unknown>;
  raw: string;
}

async function rig(t: Test, opts: { ready?: boolean } = {}): Promise<Rig> {
  const { ovs, bridge, pods, ipam, flows, store, journal } = await cniServerParts(t);
  const clock = new FakeClock();
  const crashes: string[] = [];
  const health = { value: 'ok' as DatapathHealth };
  const server = new CniServer({
    config: { ...defaultAgentConfig(), hostProcPathPrefix: '' },
    bridge,
    podInterfaces: pods,
    ipam,
    store,
    journal,
    podFlows: flows,
    health: () => health.value,
    crashPoints: { hit: (n) => crashes.push(n) },
    clock,
  });
  if (opts.ready !== false) {
    server.setStoreReady(ctx);
    server.setNetworkReady();
  }
  const call: Rig['call'] = async (method, o = {}) => {
    const version = o.version ?? '1.0.0';
    const config =
      o.raw ??
      JSON.stringify({
        cniVersion: version,
        name: 'antrea',
        type: 'antrea',
        ipam: { type: 'host-local' },
        ...o.config,
      });
    const resp = await server.handle(method, {
      cniArgs: {
        containerId: o.containerId ?? 'c1',
        netns: o.netns ?? '/run/netns/p1',
        ifname: o.ifname ?? 'eth0',
        args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${o.pod ?? 'web'}`,
        path: '/opt/cni/bin',
        networkConfiguration: Buffer.from(config),
      },
    });
    const text = Buffer.from(resp.cniResult).toString();
    return {
      code: resp.error?.code ?? 0,
      message: resp.error?.message ?? '',
      result: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>),
    };
  };
  return { server, pods, ipam, flows, ovs, bridge, store, journal, clock, crashes, health, call };
}

/** Nothing of container `cid` is left anywhere. */
function assertGone(t: Test, r: Rig, cid: string, pod = 'web'): void {
  const name = podHostInterfaceName(pod, cid, 'eth0');
  t.notOk(r.pods.links.has(name), `no link ${name}`);
  t.equal(r.bridge.getPort(name), undefined, `no OVS port ${name}`);
  t.notOk(r.flows.installed.has(name), `no flows for ${name}`);
  t.notOk(
    [...r.ipam.held.values()].some((o) => o.containerId === cid),
    `no IP held by ${cid}`,
  );
  t.equal(r.store.byContainer(cid, 'eth0'), undefined, `no store entry for ${cid}`);
  t.equal(r.journal.get(cid, 'eth0'), undefined, `no pending record for ${cid}`);
}

t.test('ADD configures everything and answers in the requested version', async (t) => {
  const r = await rig(t);
  const add = await r.call('CmdAdd', { version: '0.4.0' });
  t.equal(add.code, 0, add.message);
  const name = podHostInterfaceName('web', 'c1', 'eth0');
  t.match(add.result, {
    cniVersion: '0.4.0',
    interfaces: [
      { name, mac: '0a:00:00:00:00:01' },
      { name: 'eth0', sandbox: '/run/netns/p1' },
    ],
    ips: [{ version: '4', address: '10.10.1.2/24', gateway: '10.10.1.1', interface: 1 }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.10.1.1' }],
  });
  const port = r.bridge.getPort(name);
  t.match(port?.externalIds, {
    'antrea-type': 'container',
    'container-id': 'c1',
    'pod-name': 'web',
    'pod-namespace': 'default',
    'ip-address': '10.10.1.2',
    'net-ns': '/run/netns/p1',
  });
  t.equal(port?.externalIds['attached-mac'], r.pods.links.get(name)?.mac);
  t.equal(r.flows.installed.get(name)?.ofport, port?.ofport, 'flows installed with the ofport');
  t.equal(r.store.byContainer('c1', 'eth0')?.name, name);
  t.equal(r.journal.list().length, 0, 'the journal is committed');
  t.same(r.crashes, [...CNI_ADD_CRASH_POINTS], 'every crash point is passed, in order');
  await r.server.drain();
  t.same(r.pods.advertised, ['/run/netns/p1/eth0'], 'addresses announced');
});

t.test('validation errors carry the right codes and touch nothing', async (t) => {
  const r = await rig(t);
  const cases: [Partial<CallOpts>, number][] = [
    [{ config: { type: 'bridge' } }, ErrorCode.UNSUPPORTED_FIELD],
    [{ config: { ipam: { type: 'dhcp' } } }, ErrorCode.UNSUPPORTED_FIELD],
    [{ config: { ipam: undefined } }, ErrorCode.UNSUPPORTED_FIELD],
    [{ raw: '{"cniVersion":"0.2.0","name":"antrea","type":"antrea"}' }, ErrorCode.INCOMPATIBLE_CNI_VERSION],
    [{ raw: 'not json' }, ErrorCode.DECODING_FAILURE],
    [{ netns: '/run/netns/absent' }, ErrorCode.INVALID_ENVIRONMENT_VARIABLES],
    [{ netns: '' }, ErrorCode.INVALID_ENVIRONMENT_VARIABLES],
    [{ ifname: 'a/b' }, ErrorCode.INVALID_ENVIRONMENT_VARIABLES],
    [{ containerId: '' }, ErrorCode.UNKNOWN_CONTAINER],
  ];
  for (const [o, code] of cases) {
    const res = await r.call('CmdAdd', o);
    t.equal(res.code, code, `${JSON.stringify(o)} → ${code}: ${res.message}`);
  }
  assertGone(t, r, 'c1');
  t.equal(r.bridge.listPorts().length, 0);
});

t.test('a failure at each step rolls everything back', async (t) => {
  const steps: [string, (r: Rig) => void, number][] = [
    ['IPAM', (r) => (r.ipam.fail = true), ErrorCode.IPAM_FAILURE],
    ['interface', (r) => (r.pods.fail = 'configure'), ErrorCode.CONFIG_INTERFACE_FAILURE],
    [
      'OVS port',
      (r) => r.ovs.failing.add(podHostInterfaceName('web', 'c1', 'eth0')),
      ErrorCode.CONFIG_INTERFACE_FAILURE,
    ],
    ['flows', (r) => (r.flows.fail = true), ErrorCode.CONFIG_INTERFACE_FAILURE],
    // The port is made once IPAM answered and the host end is up, while the addresses are applied:
    // here the addresses fail while OVSDB is still creating the port, which must go too.
    [
      'Pod addresses, while the port is made',
      (r) => {
        r.pods.fail = 'addresses';
        const create = r.bridge.createPort.bind(r.bridge);
        r.bridge.createPort = async (spec) => {
          await new Promise((resolve) => setTimeout(resolve, 20));
          return create(spec);
        };
      },
      ErrorCode.CONFIG_INTERFACE_FAILURE,
    ],
  ];
  for (const [what, inject, code] of steps) {
    const r = await rig(t);
    inject(r);
    const res = await r.call('CmdAdd');
    t.equal(res.code, code, `${what} failure → ${code}: ${res.message}`);
    await new Promise((resolve) => setTimeout(resolve, 50)); // nothing still under way adds anything
    assertGone(t, r, 'c1');
    // And the next ADD works once the fault is gone.
    r.ipam.fail = false;
    r.pods.fail = undefined;
    r.ovs.failing.clear();
    r.flows.fail = false;
    t.equal((await r.call('CmdAdd')).code, 0, `${what}: a retried ADD succeeds`);
  }
});

t.test('ADD chooses the ofport and MAC, so the flows are installed once, while the port is made', async (t) => {
  const r = await rig(t);
  let portExisted: boolean | undefined;
  r.flows.onInstall = (i) => (portExisted ??= r.bridge.getPort(i.name) !== undefined);
  t.equal((await r.call('CmdAdd')).code, 0);
  t.equal((await r.call('CmdAdd', { containerId: 'c2', netns: '/run/netns/p2', pod: 'db' })).code, 0);
  const a = r.bridge.getPort(podHostInterfaceName('web', 'c1', 'eth0'));
  const b = r.bridge.getPort(podHostInterfaceName('db', 'c2', 'eth0'));
  t.equal(a?.ofportRequest, POD_OFPORT_MIN, 'the first Pod asks for the lowest Pod ofport');
  t.equal(a?.ofport, POD_OFPORT_MIN, 'and gets it');
  t.equal(b?.ofport, POD_OFPORT_MIN + 1, 'the next Pod the next one');
  t.equal(portExisted, false, "the flows were sent before the Pod's port existed");
  t.equal(r.flows.history.length, 2, 'one flow install per Pod: nothing to correct');
  t.same(
    r.flows.history.map((f) => f.ofport),
    [POD_OFPORT_MIN, POD_OFPORT_MIN + 1],
  );
  t.equal(r.flows.installed.get(a?.name ?? '')?.mac, r.store.byName(a?.name ?? '')?.mac, 'flows have the Pod MAC');
});

t.test('a Pod whose port did not get the requested ofport or MAC gets corrected flows', async (t) => {
  await t.test("ofport taken behind the agent's back while the port was made", async (t) => {
    const r = await rig(t);
    const name = podHostInterfaceName('web', 'c1', 'eth0');
    r.flows.onInstall = (i) => {
      r.flows.onInstall = undefined;
      // Another writer takes the number between the agent's choice and its port.
      void r.bridge.createPort({ name: 'intruder', type: 'internal', ofportRequest: i.ofport });
    };
    const add = await r.call('CmdAdd');
    t.equal(add.code, 0, add.message);
    const port = r.bridge.getPort(name);
    t.equal(r.bridge.getPort('intruder')?.ofport, POD_OFPORT_MIN, 'the intruder holds the requested number');
    t.not(port?.ofport, POD_OFPORT_MIN, 'the Pod got another one');
    t.equal(r.flows.installed.get(name)?.ofport, port?.ofport, "the Pod's flows use the ofport it got");
    t.equal(r.store.byName(name)?.ofport, port?.ofport, 'and so does the store');
    t.equal(r.flows.history.length, 2, 'installed early, then corrected');
    // The next Pod skips both numbers in use.
    t.equal((await r.call('CmdAdd', { containerId: 'c2', netns: '/run/netns/p2', pod: 'db' })).code, 0);
    const next = r.bridge.getPort(podHostInterfaceName('db', 'c2', 'eth0'))?.ofport ?? 0;
    t.ok(next > POD_OFPORT_MIN && next !== port?.ofport, `the next Pod gets a free number (${next})`);
  });
  await t.test('an interface that cannot take the chosen MAC (as with HNS)', async (t) => {
    const r = await rig(t);
    r.pods.honorMac = false;
    t.equal((await r.call('CmdAdd')).code, 0);
    const name = podHostInterfaceName('web', 'c1', 'eth0');
    t.equal(r.flows.installed.get(name)?.mac, r.pods.links.get(name)?.mac, "flows carry the interface's real MAC");
    t.equal(r.flows.history.length, 2);
    t.equal(
      r.bridge.getPort(name)?.externalIds['attached-mac'],
      r.pods.links.get(name)?.mac,
      "and so do the port's external ids",
    );
  });
});

t.test('ofport allocation after a restart skips every number in use or requested', async (t) => {
  const r = await rig(t);
  t.equal((await r.call('CmdAdd')).code, 0);
  t.equal((await r.call('CmdAdd', { containerId: 'c2', netns: '/run/netns/p2', pod: 'db' })).code, 0);
  // A new server on the same OVS (the agent restarted) continues after the highest number in use.
  const server = new CniServer({
    config: { ...defaultAgentConfig(), hostProcPathPrefix: '' },
    bridge: r.bridge,
    podInterfaces: r.pods,
    ipam: r.ipam,
    store: r.store,
    journal: r.journal,
    podFlows: r.flows,
    clock: r.clock,
  });
  server.setStoreReady(ctx);
  server.setNetworkReady();
  const resp = await server.handle('CmdAdd', {
    cniArgs: {
      containerId: 'c3',
      netns: '/run/netns/p3',
      ifname: 'eth0',
      args: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=api',
      path: '/opt/cni/bin',
      networkConfiguration: Buffer.from(
        JSON.stringify({ cniVersion: '1.0.0', name: 'antrea', type: 'antrea', ipam: { type: 'host-local' } }),
      ),
    },
  });
  t.equal(resp.error, undefined);
  t.equal(r.bridge.getPort(podHostInterfaceName('api', 'c3', 'eth0'))?.ofport, POD_OFPORT_MIN + 2);
});

t.test('OfportAllocator', (t) => {
  const used: (number | undefined)[] = [];
  const a = new OfportAllocator({ inUse: () => used, min: 10, max: 14 });
  t.equal(a.allocate(), 10);
  t.equal(a.allocate(), 11, 'a reserved number is not given twice');
  a.release(10);
  a.release(11);
  t.equal(a.allocate(), 12, 'round-robin: a freed number is reused as late as possible');
  a.release(12);
  used.push(13, undefined, 2, 99);
  t.equal(a.allocate(), 14, 'numbers in use are skipped; out-of-range ones are ignored');
  t.equal(a.allocate(), 10, 'wraps around');
  used.push(11, 12);
  t.throws(() => a.allocate(), { code: 'OFPORT_EXHAUSTED' }, 'nothing free left');
  const fresh = new OfportAllocator({ inUse: () => [11, 12], min: 10, max: 14 });
  t.equal(fresh.allocate(), 13, 'a new allocator starts after the highest number in use');
  t.end();
});

t.test('a repeated ADD returns the same result; a partial interface is rebuilt', async (t) => {
  const r = await rig(t);
  const first = await r.call('CmdAdd');
  const again = await r.call('CmdAdd');
  t.equal(again.code, 0);
  t.same(again.result, first.result, 'same result for a healthy interface');
  t.equal(r.ipam.held.size, 1, 'no second IP');
  const name = podHostInterfaceName('web', 'c1', 'eth0');
  r.pods.links.delete(name); // the veth vanished behind our back
  const rebuilt = await r.call('CmdAdd');
  t.equal(rebuilt.code, 0, rebuilt.message);
  t.ok(r.pods.links.has(name), 'the interface was re-created');
  t.equal(r.ipam.held.size, 1, 'still one IP');
});

t.test('DEL removes everything, is idempotent, and needs no netns', async (t) => {
  const r = await rig(t);
  await r.call('CmdAdd');
  await r.call('CmdAdd', { containerId: 'c2', netns: '/run/netns/p2', pod: 'db' });
  t.equal((await r.call('CmdDel')).code, 0);
  assertGone(t, r, 'c1');
  t.ok(r.store.byContainer('c2', 'eth0'), 'the other Pod is untouched');
  t.equal((await r.call('CmdDel')).code, 0, 'a second DEL succeeds');
  t.equal(
    (await r.call('CmdDel', { containerId: 'never-added', netns: '' })).code,
    0,
    'DEL of an unknown container succeeds',
  );
  t.equal((await r.call('CmdDel', { containerId: 'c2', netns: '', pod: 'db' })).code, 0, 'DEL without CNI_NETNS');
  assertGone(t, r, 'c2', 'db');
  const order = r.bridge.calls.filter((c) => c.startsWith('deletePorts'));
  t.equal(order.length, 2);
});

t.test('DEL cleans what a half-done ADD left (no store entry)', async (t) => {
  const r = await rig(t);
  const name = podHostInterfaceName('web', 'c9', 'eth0');
  // As if the agent died after IPAM and the veth, before the OVS port.
  r.journal.begin({
    containerId: 'c9',
    ifname: 'eth0',
    netns: '/run/netns/p1',
    hostInterfaceName: name,
    podName: 'web',
    podNamespace: 'default',
    args: '',
    cniPath: '',
    networkConfig: '{}',
    startedAt: 0,
  });
  r.pods.links.set(name, { netns: '/run/netns/p1', ifname: 'eth0', mac: 'x', ips: [] });
  r.ipam.held.set('10.10.1.50', { containerId: 'c9', ifname: 'eth0' });
  t.equal((await r.call('CmdDel', { containerId: 'c9' })).code, 0);
  assertGone(t, r, 'c9');
});

t.test('CHECK validates against prevResult', async (t) => {
  const r = await rig(t);
  const add = await r.call('CmdAdd', { version: '1.0.0' });
  const prevResult = add.result;
  t.equal((await r.call('CmdCheck', { config: { prevResult } })).code, 0, 'a fresh Pod checks out');
  t.equal((await r.call('CmdCheck')).code, ErrorCode.UNSUPPORTED_FIELD, 'prevResult is required');
  t.equal(
    (await r.call('CmdCheck', { version: '0.3.1', config: { prevResult } })).code,
    ErrorCode.INCOMPATIBLE_CNI_VERSION,
  );
  const other = { ...prevResult, interfaces: [{ name: 'eth9', sandbox: '/run/netns/p1' }] };
  t.equal((await r.call('CmdCheck', { config: { prevResult: other } })).code, ErrorCode.INVALID_NETWORK_CONFIG);
  const link = r.pods.links.get(podHostInterfaceName('web', 'c1', 'eth0'))!;
  link.mac = '02:ff:ff:ff:ff:ff';
  const bad = await r.call('CmdCheck', { config: { prevResult } });
  t.equal(bad.code, ErrorCode.CHECK_INTERFACE_FAILURE);
  t.match(bad.message, /mac/);
  r.ipam.held.clear();
  t.equal(
    (await r.call('CmdCheck', { config: { prevResult } })).code,
    ErrorCode.IPAM_FAILURE,
    'a lost reservation fails',
  );
});

t.test('GC removes what is not in the valid list', async (t) => {
  const r = await rig(t);
  await r.call('CmdAdd', { containerId: 'c1' });
  await r.call('CmdAdd', { containerId: 'c2', netns: '/run/netns/p2', pod: 'db' });
  r.ipam.held.set('10.10.1.99', { containerId: 'ghost', ifname: 'eth0' });
  t.equal((await r.call('CmdGC', { version: '1.1.0' })).code, ErrorCode.INVALID_NETWORK_CONFIG, 'the list is required');
  const gc = await r.call('CmdGC', {
    version: '1.1.0',
    config: { 'cni.dev/valid-attachments': [{ containerID: 'c2', ifname: 'eth0' }] },
  });
  t.equal(gc.code, 0, gc.message);
  t.equal(r.ipam.gcCalls, 1, 'GC is forwarded to IPAM');
  assertGone(t, r, 'c1');
  t.ok(r.store.byContainer('c2', 'eth0'), 'the valid attachment stays');
  t.same([...r.ipam.held.keys()], [r.store.byContainer('c2', 'eth0')!.ips[0]], 'only the valid IP stays reserved');
  const empty = await r.call('CmdGC', { version: '1.1.0', config: { 'cni.dev/valid-attachments': [] } });
  t.equal(empty.code, 0);
  t.equal(r.store.list('container').length, 0);
});

t.test('STATUS reports readiness and datapath health', async (t) => {
  const r = await rig(t, { ready: false });
  t.equal((await r.call('CmdStatus', { version: '1.1.0' })).code, ErrorCode.PLUGIN_NOT_AVAILABLE);
  r.server.setStoreReady(ctx);
  r.server.setNetworkReady();
  t.equal((await r.call('CmdStatus', { version: '1.1.0' })).code, 0);
  t.equal(r.ipam.statusCalls, 1, 'STATUS is forwarded to IPAM');
  r.health.value = 'ovsdb-down';
  t.equal((await r.call('CmdStatus', { version: '1.1.0' })).code, ErrorCode.PLUGIN_NOT_AVAILABLE);
  r.health.value = 'datapath-down';
  t.equal((await r.call('CmdStatus', { version: '1.1.0' })).code, ErrorCode.LIMITED_CONNECTIVITY);
});

t.test('ADD waits for readiness, then answers TRY_AGAIN_LATER', async (t) => {
  const r = await rig(t, { ready: false });
  const pending = r.call('CmdAdd');
  await r.clock.advance(29_000);
  const early = r.call('CmdAdd', { containerId: 'c2', netns: '/run/netns/p2' });
  await r.clock.advance(1_000);
  t.equal((await pending).code, ErrorCode.TRY_AGAIN_LATER, 'after 30 s');
  r.server.setStoreReady(ctx);
  r.server.setNetworkReady();
  t.equal((await early).code, 0, 'a waiting ADD proceeds once ready');
});

t.test('operations on one container are serialized', async (t) => {
  const r = await rig(t);
  let release!: () => void;
  r.pods.gate = new Promise((res) => (release = res));
  const events: string[] = [];
  const add = r.call('CmdAdd').then((x) => events.push(`add:${x.code}`));
  const del = r.call('CmdDel').then((x) => events.push(`del:${x.code}`));
  const other = r.call('CmdDel', { containerId: 'zz' }).then((x) => events.push(`other:${x.code}`));
  await other;
  t.same(events, ['other:0'], 'another container is not blocked');
  release();
  await Promise.all([add, del]);
  t.same(events, ['other:0', 'add:0', 'del:0'], 'the DEL waited for the ADD');
  assertGone(t, r, 'c1');
});

t.test('start-up reconciliation', async (t) => {
  const r = await rig(t, { ready: false });
  r.server.setStoreReady(ctx);
  r.server.setNetworkReady();
  await r.call('CmdAdd', { containerId: 'alive' });
  await r.call('CmdAdd', { containerId: 'dead', netns: '/run/netns/p2', pod: 'db' });
  const deadName = podHostInterfaceName('db', 'dead', 'eth0');
  r.pods.links.delete(deadName); // its netns was deleted while the agent was down
  // An ADD that never answered: journaled, IP and veth made, no port.
  const halfName = podHostInterfaceName('half', 'half', 'eth0');
  r.journal.begin({
    containerId: 'half',
    ifname: 'eth0',
    netns: '/run/netns/p3',
    hostInterfaceName: halfName,
    podName: 'half',
    podNamespace: 'default',
    args: '',
    cniPath: '/opt/cni/bin',
    networkConfig: JSON.stringify({
      cniVersion: '1.0.0',
      name: 'antrea',
      type: 'antrea',
      ipam: { type: 'host-local' },
    }),
    startedAt: 0,
  });
  r.pods.links.set(halfName, { netns: '/run/netns/p3', ifname: 'eth0', mac: 'x', ips: [] });
  r.ipam.held.set('10.10.1.77', { containerId: 'half', ifname: 'eth0' });
  r.ipam.held.set('10.10.1.88', { containerId: 'leaked', ifname: 'eth0' });
  r.ipam.held.set('10.10.1.99', { containerId: 'reported', ifname: 'eth0' });

  // The agent restarts: a new store from OVSDB.
  const store2 = new InterfaceStore();
  store2.initialize(r.bridge.listPorts());
  const server2 = new CniServer({
    config: { ...defaultAgentConfig(), hostProcPathPrefix: '' },
    bridge: r.bridge,
    podInterfaces: r.pods,
    ipam: r.ipam,
    store: store2,
    journal: r.journal,
    podFlows: r.flows,
  });
  const report = await server2.reconcile(ctx, { inUseIps: ['10.10.1.99'] });
  t.same(report.rolledBack, ['half/eth0']);
  t.same(report.removedInterfaces, [deadName]);
  t.same([...report.releasedIps].sort(), ['10.10.1.3', '10.10.1.88'].sort(), "the dead Pod's IP and the leak");
  t.same(report.errors, []);
  t.notOk(r.pods.links.has(halfName), 'the half-made veth is gone');
  t.equal(r.journal.list().length, 0);
  t.equal(r.bridge.getPort(deadName), undefined);
  const alive = store2.byContainer('alive', 'eth0');
  t.ok(alive, 'the live Pod is kept');
  t.ok(r.ipam.held.has(alive!.ips[0]!), 'its IP is never released');
  t.ok(r.ipam.held.has('10.10.1.99'), 'an IP reported in use is kept');
});
