/**
 * The CNI server's shared behaviour against both strategies' Pod interfaces: a Linux-like
 * configurator (system ports, ofport assigned at once) and the Windows strategy's
 * WindowsPodInterfaces over the recorded PowerShell of a fake Windows host (internal ports whose
 * ofport arrives after ADD answered). Then the asynchronous ofport itself: flows installed when it
 * arrives, removed on DEL, nothing installed for a Pod deleted first, a lost ofport uninstalls,
 * an ofport reported before the pipeline is up is kept for the start-up replay; and the OVSDB
 * monitor cache as the source of ofport events.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CniMethod, ErrorCode } from '../../src/common/apis/cni/proto.ts';
import { defaultAgentConfig } from '../../src/common/agent/config.ts';
import { PendingAddJournal } from '../../src/common/agent/cniserver/journal.ts';
import { type OfportEvent, ovsdbOfportEvents } from '../../src/common/agent/cniserver/ofport-events.ts';
import { CniServer, type NodeNetworkContext } from '../../src/common/agent/cniserver/server.ts';
import { InterfaceStore } from '../../src/common/agent/interfacestore.ts';
import { podHostInterfaceName, type PodInterfaceConfigurator } from '../../src/common/host/pod-interfaces.ts';
import { OvsdbCache } from '../../src/common/ovs/ovsdb/cache.ts';
import { WindowsNodeNetwork } from '../../src/platform/windows/node-network.ts';
import { WindowsPodInterfaces } from '../../src/platform/windows/pod-interfaces.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { FakeOvs, type FakeOvsBridge } from '../helpers/fake-ovs-bridge.ts';
import { SCHEMA } from '../helpers/fake-ovsdb.ts';
import { cmdletError, FakeWindowsHost } from '../helpers/fake-windows-host.ts';
import { FakeFlows, FakeIpam, FakePods } from './fixtures/cniserver-fakes.ts';
import { matchesGolden } from '../helpers/golden.ts';

const ctx: NodeNetworkContext = { nodeName: 'n1', podCIDRs: ['10.10.1.0/24'], gatewayIPs: ['10.10.1.1'], mtu: 1450 };
const GOLDEN = join(import.meta.dirname, 'golden', 'windows');

/** One strategy's Pod interfaces, with what the shared tests need to look at and break. */
interface Backend {
  readonly pods: PodInterfaceConfigurator;
  readonly async: boolean;
  /** A CNI_NETNS that exists on this host (n = 0, 1, 2). */
  netns(n: number): string;
  /** A CNI_NETNS in the right form that does not exist. */
  readonly missingNetns: string;
  linkExists(name: string): boolean;
  /** The host side vanishes behind the agent's back. */
  dropLink(name: string): void;
  /** The next Pod interface creation fails (until clearFaults). */
  failNextConfigure(): void;
  clearFaults(): void;
}

async function linuxBackend(): Promise<Backend> {
  const pods = new FakePods('immediate');
  const ns = ['/run/netns/p1', '/run/netns/p2', '/run/netns/p3'];
  return Promise.resolve({
    pods,
    async: false,
    netns: (n) => ns[n] ?? '',
    missingNetns: '/run/netns/nope',
    linkExists: (name) => pods.links.has(name),
    dropLink: (name) => void pods.links.delete(name),
    failNextConfigure: () => {
      pods.fail = 'configure';
    },
    clearFaults: () => {
      pods.fail = undefined;
    },
  });
}

async function windowsBackend(h = new FakeWindowsHost()): Promise<Backend> {
  h.addUplink('Ethernet0', '00-15-5D-0A-0B-0C', '192.0.2.11', 24, '192.0.2.1');
  await new WindowsNodeNetwork({ ps: h.ps, clock: new FakeClock() }).prepareHost({
    ipv4: true,
    ipv6: false,
    node: { podCIDRs: ctx.podCIDRs, nodeIPs: ['192.0.2.11'], transportInterface: '', bridgeName: 'br-int' },
  });
  const ns = [h.addNamespace(), h.addNamespace(), h.addNamespace()];
  h.ps.clear();
  return {
    pods: new WindowsPodInterfaces({ ps: h.ps }),
    async: true,
    netns: (n) => ns[n] ?? '',
    missingNetns: 'c0ffee00-0000-4000-8000-00000000ffff',
    linkExists: (name) => h.endpoints.some((e) => e.Name === name),
    dropLink: (name) => {
      const i = h.endpoints.findIndex((e) => e.Name === name);
      if (i >= 0) h.endpoints.splice(i, 1);
    },
    failNextConfigure: () => {
      h.failNext = {
        re: /Invoke-AntreaHns -Method POST -Path '\/endpoints'/,
        error: cmdletError('Invoke-HnsRequest', 'InvalidOperation', 'HNS failed with error : Unspecified error'),
      };
    },
    clearFaults: () => {
      h.failNext = undefined;
    },
  };
}

interface Rig {
  readonly server: CniServer;
  readonly backend: Backend;
  readonly ovs: FakeOvs;
  readonly bridge: FakeOvsBridge;
  readonly ipam: FakeIpam;
  readonly flows: FakeFlows;
  readonly store: InterfaceStore;
  readonly journal: PendingAddJournal;
  call(
    method: CniMethod,
    o?: { containerId?: string; netnsIndex?: number; netns?: string; pod?: string; config?: object },
  ): Promise<{ code: number; message: string; result: Record<string, unknown> | undefined }>;
  /** ovs-vswitchd assigns the ofport of Pod ports still waiting (Windows), then the server settles. */
  settle(): Promise<void>;
}

async function rig(t: Test, backend: Backend, opts: { podFlows?: boolean } = {}): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'cnis-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ovs = new FakeOvs();
  ovs.ofportAssignment = backend.pods.ofportAssignment;
  const bridge = ovs.bridge('br-int');
  await bridge.create({ datapathType: 'system' });
  const ipam = new FakeIpam();
  const flows = new FakeFlows();
  const store = new InterfaceStore();
  const journal = new PendingAddJournal(join(dir, 'pending'));
  const server = new CniServer({
    config: { ...defaultAgentConfig(), hostProcPathPrefix: '' },
    bridge,
    podInterfaces: backend.pods,
    ipam,
    store,
    journal,
    ...(opts.podFlows === false ? {} : { podFlows: flows }),
    clock: new FakeClock(),
  });
  t.teardown(server.watchOfports(ovs.ofportEvents));
  server.setStoreReady(ctx);
  server.setNetworkReady();
  const call: Rig['call'] = async (method, o = {}) => {
    const config = JSON.stringify({
      cniVersion: '1.0.0',
      name: 'antrea',
      type: 'antrea',
      ipam: { type: 'host-local' },
      ...o.config,
    });
    const resp = await server.handle(method, {
      cniArgs: {
        containerId: o.containerId ?? 'c1',
        netns: o.netns ?? backend.netns(o.netnsIndex ?? 0),
        ifname: 'eth0',
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
  const settle = async (): Promise<void> => {
    for (const p of bridge.listPorts()) if (p.ofport === undefined) ovs.assignPendingOfport(p.name);
    await server.drain();
  };
  return { server, backend, ovs, bridge, ipam, flows, store, journal, call, settle };
}

function assertGone(t: Test, r: Rig, cid: string, pod = 'web'): void {
  const name = podHostInterfaceName(pod, cid, 'eth0');
  t.notOk(r.backend.linkExists(name), `no host interface ${name}`);
  t.equal(r.bridge.getPort(name), undefined, `no OVS port ${name}`);
  t.notOk(r.flows.installed.has(name), `no flows for ${name}`);
  t.notOk(
    [...r.ipam.held.values()].some((o) => o.containerId === cid),
    `no IP held by ${cid}`,
  );
  t.equal(r.store.byContainer(cid, 'eth0'), undefined, `no store entry for ${cid}`);
  t.equal(r.journal.get(cid, 'eth0'), undefined, `no pending record for ${cid}`);
}

const BACKENDS: [string, () => Promise<Backend>][] = [
  ['linux', linuxBackend],
  ['windows', () => windowsBackend()],
];

for (const [os, make] of BACKENDS) {
  t.test(`${os}: ADD connects the Pod and its flows follow the ofport; DEL removes everything`, async (t) => {
    const r = await rig(t, await make());
    const add = await r.call('CmdAdd');
    t.equal(add.code, 0, add.message);
    const name = podHostInterfaceName('web', 'c1', 'eth0');
    t.match(add.result, {
      interfaces: [{ name }, { name: 'eth0', sandbox: r.backend.netns(0) }],
      ips: [{ address: '10.10.1.2/24', gateway: '10.10.1.1', interface: 1 }],
    });
    t.ok(r.backend.linkExists(name), 'host interface made');
    t.equal(r.bridge.getPort(name)?.type, r.backend.pods.ovsPortType);
    if (r.backend.async) {
      t.equal(r.store.byContainer('c1', 'eth0')?.ofport, undefined, 'answered before the ofport');
      t.notOk(r.flows.installed.has(name), 'no flows without an ofport');
    }
    await r.settle();
    const ofport = r.bridge.getPort(name)?.ofport;
    t.ok(ofport !== undefined && ofport > 0, 'the port has an ofport');
    t.equal(r.flows.installed.get(name)?.ofport, ofport, 'flows installed with the ofport');
    t.equal(r.store.byContainer('c1', 'eth0')?.ofport, ofport, 'the store knows the ofport');

    t.equal((await r.call('CmdCheck', { config: { prevResult: add.result } })).code, 0, 'CHECK passes');
    t.equal((await r.call('CmdDel')).code, 0);
    await r.server.drain();
    assertGone(t, r, 'c1');
    t.equal((await r.call('CmdDel')).code, 0, 'a second DEL succeeds');
  });

  t.test(`${os}: a repeated ADD returns the same result; a vanished host side is rebuilt`, async (t) => {
    const r = await rig(t, await make());
    const first = await r.call('CmdAdd');
    await r.settle();
    const again = await r.call('CmdAdd');
    t.equal(again.code, 0, again.message);
    t.same(again.result, first.result);
    t.equal(r.ipam.held.size, 1, 'no second IP');
    const name = podHostInterfaceName('web', 'c1', 'eth0');
    r.backend.dropLink(name);
    const rebuilt = await r.call('CmdAdd');
    t.equal(rebuilt.code, 0, rebuilt.message);
    t.ok(r.backend.linkExists(name), 'rebuilt');
    await r.settle();
    t.ok(r.flows.installed.has(name), 'flows for the rebuilt interface');
    t.equal(r.ipam.held.size, 1, 'still one IP');
  });

  t.test(`${os}: failures roll back; a missing netns is INVALID_ENVIRONMENT_VARIABLES`, async (t) => {
    const r = await rig(t, await make());
    const missing = await r.call('CmdAdd', { netns: r.backend.missingNetns });
    t.equal(missing.code, ErrorCode.INVALID_ENVIRONMENT_VARIABLES, missing.message);
    assertGone(t, r, 'c1');
    r.backend.failNextConfigure();
    const failed = await r.call('CmdAdd');
    t.equal(failed.code, ErrorCode.CONFIG_INTERFACE_FAILURE, failed.message);
    assertGone(t, r, 'c1');
    r.backend.clearFaults();
    r.ipam.fail = true;
    t.equal((await r.call('CmdAdd')).code, ErrorCode.IPAM_FAILURE);
    assertGone(t, r, 'c1');
    r.ipam.fail = false;
    t.equal((await r.call('CmdAdd')).code, 0, 'a retried ADD succeeds');
  });

  t.test(`${os}: GC and start-up reconciliation remove stale and dead interfaces`, async (t) => {
    const r = await rig(t, await make());
    await r.call('CmdAdd');
    await r.call('CmdAdd', { containerId: 'c2', netnsIndex: 1, pod: 'db' });
    await r.call('CmdAdd', { containerId: 'c3', netnsIndex: 2, pod: 'api' });
    await r.settle();
    const gc = await r.call('CmdGC', {
      config: {
        'cni.dev/valid-attachments': [
          { containerID: 'c1', ifname: 'eth0' },
          { containerID: 'c2', ifname: 'eth0' },
        ],
      },
    });
    t.equal(gc.code, 0, gc.message);
    assertGone(t, r, 'c3', 'api');
    r.backend.dropLink(podHostInterfaceName('db', 'c2', 'eth0'));
    const report = await r.server.reconcile(ctx);
    t.same(report.removedInterfaces, [podHostInterfaceName('db', 'c2', 'eth0')]);
    t.same(report.errors, []);
    assertGone(t, r, 'c2', 'db');
    t.ok(r.flows.installed.has(podHostInterfaceName('web', 'c1', 'eth0')), 'the healthy Pod keeps its flows');
  });
}

t.test('windows: the PowerShell of one Pod ADD and DEL through the CNI server', async (t) => {
  const h = new FakeWindowsHost();
  const r = await rig(t, await windowsBackend(h));
  t.equal((await r.call('CmdAdd')).code, 0);
  await r.settle();
  t.equal((await r.call('CmdDel')).code, 0);
  matchesGolden(t, join(GOLDEN, 'cniserver-add-del.txt'), h.ps.transcript);
});

t.test('async ofport: a Pod deleted before its ofport arrives gets no flows', async (t) => {
  const backend = await linuxBackendAsync();
  const r = await rig(t, backend);
  t.equal((await r.call('CmdAdd')).code, 0);
  const name = podHostInterfaceName('web', 'c1', 'eth0');
  // The ofport arrives while DEL is under way (it holds the container's lock).
  const pods = backend.fakePods;
  const remove = pods.remove.bind(pods);
  pods.remove = (ref) => {
    r.ovs.emitOfport(name, 5);
    return remove(ref);
  };
  t.equal((await r.call('CmdDel')).code, 0);
  await r.server.drain();
  assertGone(t, r, 'c1');
  t.same([...r.flows.installed.keys()], [], 'no flows leaked');
  r.ovs.emitOfport(name, 6);
  await r.server.drain();
  t.same([...r.flows.installed.keys()], [], 'nor after the port is gone');
});

t.test('async ofport: an ofport already there when ADD connects the port is used at once', async (t) => {
  const r = await rig(t, await linuxBackendAsync());
  r.ovs.ofportAssignment = 'immediate'; // the vNIC was quick
  t.equal((await r.call('CmdAdd')).code, 0);
  const name = podHostInterfaceName('web', 'c1', 'eth0');
  const ofport = r.bridge.getPort(name)?.ofport;
  t.ok(ofport !== undefined && ofport > 0);
  t.equal(r.flows.installed.get(name)?.ofport, ofport, 'flows installed during ADD');
  t.equal(r.store.byName(name)?.ofport, ofport);
  await r.server.drain();
  t.equal(r.flows.installed.size, 1);
});

t.test('async ofport: a lost ofport uninstalls the flows; a new one installs them again', async (t) => {
  const r = await rig(t, await linuxBackendAsync());
  await r.call('CmdAdd');
  await r.settle();
  const name = podHostInterfaceName('web', 'c1', 'eth0');
  t.ok(r.flows.installed.has(name));
  r.ovs.emitOfport(name, -1);
  await r.server.drain();
  t.notOk(r.flows.installed.has(name), 'flows removed with the ofport');
  t.equal(r.store.byName(name)?.ofport, undefined);
  r.ovs.emitOfport(name, 7);
  await r.server.drain();
  t.equal(r.flows.installed.get(name)?.ofport, 7);
  r.ovs.emitOfport('not-a-pod', 9);
  r.ovs.emitOfport(name, 7);
  await r.server.drain();
  t.equal(r.flows.installed.size, 1, 'repeats and foreign ports change nothing');
});

t.test('async ofport: before the pipeline is up the ofport is recorded and replayed at start-up', async (t) => {
  const r = await rig(t, await linuxBackendAsync(), { podFlows: false });
  await r.call('CmdAdd');
  await r.settle();
  const name = podHostInterfaceName('web', 'c1', 'eth0');
  const ofport = r.bridge.getPort(name)?.ofport;
  t.equal(r.store.byName(name)?.ofport, ofport, 'recorded without flows');
  r.server.setPodFlows(r.flows);
  t.equal(await r.server.installStoredPodFlows(), 1);
  t.equal(r.flows.installed.get(name)?.ofport, ofport);
});

t.test('async ofport: a failed install is logged and retried by the next change', async (t) => {
  const r = await rig(t, await linuxBackendAsync());
  await r.call('CmdAdd');
  r.flows.fail = true;
  await r.settle();
  const name = podHostInterfaceName('web', 'c1', 'eth0');
  t.equal(r.store.byName(name)?.ofport, undefined, 'not recorded as installed');
  r.flows.fail = false;
  r.ovs.emitOfport(name, r.bridge.getPort(name)?.ofport);
  await r.server.drain();
  t.ok(r.flows.installed.has(name));
});

/** The Linux-like fake configurator with asynchronous ofports (internal ports). */
async function linuxBackendAsync(): Promise<Backend & { readonly fakePods: FakePods }> {
  const b = await linuxBackend();
  const pods = new FakePods('async');
  return {
    ...b,
    pods,
    fakePods: pods,
    async: true,
    linkExists: (n) => pods.links.has(n),
    dropLink: (n) => void pods.links.delete(n),
    failNextConfigure: () => {
      pods.fail = 'configure';
    },
    clearFaults: () => {
      pods.fail = undefined;
    },
  };
}

t.test('ovsdbOfportEvents reports Interface ofport changes from the monitor cache', (t) => {
  const c = new OvsdbCache({ indexes: { Interface: ['name'] } });
  c.configure(SCHEMA, new Map([['Interface', ['name', 'ofport']]]));
  const seen: OfportEvent[] = [];
  const stop = ovsdbOfportEvents(c).subscribe((e) => seen.push(e));
  c.replaceAll({ Interface: { u1: { initial: { name: 'gw0', ofport: 2 } } } }, 'update2');
  c.applyUpdate2({ Interface: { u2: { insert: { name: 'web-1' } } } });
  c.applyUpdate2({ Interface: { u2: { modify: { ofport: 5 } } } });
  c.applyUpdate2({ Interface: { u1: { modify: { name: 'gw0' } } } });
  c.applyUpdate2({ Interface: { u2: { delete: null } } });
  stop();
  c.applyUpdate2({ Interface: { u3: { insert: { name: 'x', ofport: 3 } } } });
  t.same(seen, [
    { port: 'gw0', ofport: 2 },
    { port: 'web-1', ofport: 5 },
    { port: 'web-1', ofport: undefined },
  ]);
  t.end();
});
