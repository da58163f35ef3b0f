/**
 * The pipeline framework and bridge client against a real ovs-vswitchd: the realized pipeline and
 * the sample feature's flows, groups and meters are installed with table names; flow sets are
 * added, replaced and deleted atomically; after ovs-vswitchd restarts (or is killed and comes back
 * later) the client reconnects with backoff and replays identical flows, groups and meters.
 */
import t, { type Test } from 'tap';
import { BridgeClient, INITIAL_FLOWS_KEY } from '../../src/common/agent/openflow/bridge.ts';
import { CookieAllocator } from '../../src/common/agent/openflow/cookie.ts';
import { RealizedPipeline } from '../../src/common/agent/openflow/framework.ts';
import { FromPodRegMark, PRIORITY } from '../../src/common/agent/openflow/fields.ts';
import { T } from '../../src/common/agent/openflow/pipeline.ts';
import { OpenFlowClient } from '../../src/common/ovs/openflow/client.ts';
import { isOpenFlowError } from '../../src/common/ovs/openflow/errors.ts';
import type { Flow } from '../../src/common/ovs/openflow/flow.ts';
import { actions } from '../../src/common/agent/openflow/builder.ts';
import { Group } from '../../src/common/ovs/openflow/group.ts';
import type { OvsDaemons } from '../../src/platform/linux/ovs-daemons.ts';
import { integrationSkipReason, runner, tempNetns, tempOvs, uniqueName } from '../helpers/env.ts';
import { addBridge, dumpFlowLines, dumpGroupLines, dumpMeterTexts, ofctl, vsctl } from '../helpers/ovs-bridge.ts';
import { SAMPLE_FLOW_TEXTS, sampleFeature } from '../helpers/sample-pipeline.ts';
import { until } from '../helpers/wait.ts';
import { configureUserspaceConntrack, purgeDatapathFlows } from '../../src/common/agent/userspace-datapath.ts';
import { unixctl, vswitchdControlSocket } from '../../src/common/ovs/unixctl.ts';
import { nullLogger } from '../../src/common/util/log.ts';
import { join } from 'node:path';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

interface Setup {
  readonly ovs: OvsDaemons;
  readonly endpoint: string;
  readonly client: OpenFlowClient;
  readonly bridge: BridgeClient;
  readonly pipeline: RealizedPipeline;
  readonly cookies: CookieAllocator;
}

async function setup(t: Test, name: string): Promise<Setup> {
  const ovs = await tempOvs(t);
  const endpoint = await addBridge(ovs, name);
  return { ovs, endpoint, ...(await startAgent(t, endpoint, 1)) };
}

/** An "agent": the sample feature's pipeline with cookies of `round`, connected and installed. */
async function startAgent(
  t: Test,
  endpoint: string,
  round: number,
  onSwitchConnected?: () => Promise<void>,
  afterChange?: () => Promise<void>,
): Promise<Pick<Setup, 'client' | 'bridge' | 'pipeline' | 'cookies'>> {
  const cookies = new CookieAllocator(round);
  const pipeline = new RealizedPipeline([sampleFeature(cookies)]);
  const client = new OpenFlowClient({ endpoint, backoff: { initialMs: 50, maxMs: 500 }, echoIntervalMs: 1000 });
  const bridge = new BridgeClient({
    client,
    pipeline,
    cookies,
    opTimeoutMs: 20_000,
    ...(onSwitchConnected === undefined ? {} : { onSwitchConnected }),
    ...(afterChange === undefined ? {} : { afterChange }),
  });
  const ac = new AbortController();
  const running = client.run(ac.signal);
  t.teardown(async () => {
    ac.abort();
    await running;
  });
  await bridge.ready(AbortSignal.timeout(20_000));
  return { client, bridge, pipeline, cookies };
}

t.test('the realized pipeline is installed: default flows, feature flows, groups, meters, table names', async (t) => {
  const { endpoint, bridge, pipeline, cookies } = await setup(t, 'br-pl');
  const recorded = bridge.recordedFlows().map(String).sort();
  t.same(await dumpFlowLines(endpoint), recorded, 'OVS has exactly the recorded flows');
  for (const text of SAMPLE_FLOW_TEXTS) t.ok(recorded.includes(text), `installed: ${text}`);
  t.same(
    pipeline
      .defaultFlows(cookies)
      .map(String)
      .filter((f) => !recorded.includes(f)),
    [],
    'every table has its miss flow',
  );
  t.same(await dumpGroupLines(endpoint), bridge.recordedGroups().map(String).sort());
  t.same(await dumpMeterTexts(endpoint), bridge.recordedMeters().map(String).sort());
  const byName = await ofctl('--no-stats', 'dump-flows', endpoint, 'table=EndpointDNAT');
  t.match(byName, /table=11, priority=200,tcp,reg3=0xa0a0018/, 'OVS knows the table names');
  t.equal(bridge.recordedFlows(INITIAL_FLOWS_KEY).length, recorded.length);
});

t.test('flow sets are added, replaced and deleted atomically, and failures change nothing', async (t) => {
  const { endpoint, bridge, pipeline, cookies } = await setup(t, 'br-ch');
  const classifier = pipeline.table(T.Classifier);
  const spoof = pipeline.table(T.SpoofGuard);
  const c = cookies.request('PodConnectivity', 7);
  const podFlows = (port: number, ip: string, mac: string): Flow[] => [
    classifier.flow(PRIORITY.low).cookie(c).matchInPort(port).loadRegMark(FromPodRegMark).gotoStage('validation'),
    spoof.flow(PRIORITY.normal).cookie(c).matchProtocol('ip').matchInPort(port).matchSrcMAC(mac).matchSrcIP(ip).next(),
  ];
  const base = await dumpFlowLines(endpoint);
  const a = podFlows(10, '10.10.0.10', '02:00:00:00:00:0a');
  await bridge.addFlows('pod-a', a);
  t.same(await dumpFlowLines(endpoint), [...base, ...a.map(String)].sort(), 'added');
  await bridge.addFlows('pod-a', a);
  t.equal(bridge.recordedFlows('pod-a').length, 2, 'adding the same flows again is a no-op');

  const a2 = podFlows(10, '10.10.0.11', '02:00:00:00:00:0a');
  await bridge.replaceFlows('pod-a', a2);
  t.same(
    await dumpFlowLines(endpoint),
    [...base, ...a2.map(String)].sort(),
    'replaced: the old spoof-guard flow is gone',
  );

  const bad = [
    ...podFlows(11, '10.10.0.12', '02:00:00:00:00:0b'),
    spoof.flow(PRIORITY.high).cookie(c).action({ type: 'meter', meterId: 4242 }).next(),
  ];
  const err = await bridge.replaceFlows('pod-b', bad).catch((e: unknown) => e);
  t.ok(isOpenFlowError(err, 'OFPMMFC_INVALID_METER'), 'the invalid flow fails the bundle');
  t.match(String(err), /meter:4242/, 'and is named in the error');
  t.same(await dumpFlowLines(endpoint), [...base, ...a2.map(String)].sort(), 'nothing of pod-b was installed');
  t.same(bridge.recordedFlows('pod-b'), [], 'nor recorded');

  const err2 = await bridge.addFlows('pod-c', [a2[0]!]).catch((e: unknown) => e);
  t.match(err2, { code: 'INVALID_ARGUMENT', field: 'flows' }, 'a flow owned by another cache key is refused');

  await bridge.change((b) => {
    b.deleteFlows('pod-a');
    b.addFlows('pod-b', bad.slice(0, 2));
  });
  t.same(await dumpFlowLines(endpoint), [...base, ...bad.slice(0, 2).map(String)].sort(), 'several keys in one bundle');
  await bridge.deleteFlows('pod-b');
  await bridge.deleteFlows('pod-b');
  t.same(await dumpFlowLines(endpoint), base, 'deleted (twice: idempotent)');
});

t.test(
  'after ovs-vswitchd restarts, the client reconnects and replays identical flows, groups and meters',
  async (t) => {
    const { ovs, endpoint, bridge, client, pipeline, cookies } = await setup(t, 'br-rp');
    await bridge.addFlows('pod-x', [
      pipeline
        .table(T.Classifier)
        .flow(PRIORITY.low)
        .cookie(cookies.request('PodConnectivity'))
        .matchInPort(44)
        .loadRegMark(FromPodRegMark)
        .gotoStage('validation'),
    ]);
    const flows = await dumpFlowLines(endpoint);
    const groups = await dumpGroupLines(endpoint);
    const meters = await dumpMeterTexts(endpoint);
    t.ok(flows.length > SAMPLE_FLOW_TEXTS.length);

    await ovs.restart('ovs-vswitchd');
    await until('the replay', () => bridge.replayCount >= 1);
    t.equal(client.connectCount, 2, 'reconnected once');
    t.same(await dumpFlowLines(endpoint), flows, 'identical flows after the restart');
    t.same(await dumpGroupLines(endpoint), groups, 'identical groups');
    t.same(await dumpMeterTexts(endpoint), meters, 'identical meters');
    t.match(await ofctl('--no-stats', 'dump-flows', endpoint, 'table=Output'), /table=28/, 'table names are back');

    // Killed, then back only later: the client keeps retrying with backoff, then replays.
    await ovs.kill('ovs-vswitchd');
    const err = await bridge.addFlows('pod-y', []).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.equal(err, undefined, 'an empty change needs no connection');
    await new Promise((r) => setTimeout(r, 1500));
    await ovs.start();
    await until('the second replay', () => bridge.replayCount >= 2);
    t.equal(client.connectCount, 3);
    t.same(await dumpFlowLines(endpoint), flows, 'identical flows after a kill and a late start');
    t.same(await dumpGroupLines(endpoint), groups);

    // Changes made while disconnected wait for the reconnection (and its replay) instead of failing.
    await ovs.kill('ovs-vswitchd');
    const pending = bridge.deleteFlows('pod-x');
    await new Promise((r) => setTimeout(r, 300));
    await ovs.start();
    await pending;
    t.same(
      await dumpFlowLines(endpoint),
      flows.filter((f) => !f.includes('in_port=44')),
      'the queued change applied after the replay',
    );
  },
);

t.test('changes requested together are committed in one bundle, and each caller gets its own outcome', async (t) => {
  const ovs = await tempOvs(t);
  const endpoint = await addBridge(ovs, 'br-gc');
  let afterChanges = 0;
  const { bridge, pipeline, cookies } = await startAgent(t, endpoint, 1, undefined, () => {
    afterChanges++;
    return Promise.resolve();
  });
  const base = await dumpFlowLines(endpoint);
  const classifier = pipeline.table(T.Classifier);
  const c = cookies.request('PodConnectivity', 9);
  const podFlow = (port: number): Flow =>
    classifier.flow(PRIORITY.low).cookie(c).matchInPort(port).loadRegMark(FromPodRegMark).gotoStage('validation');
  const ports = Array.from({ length: 20 }, (_, i) => 100 + i);

  afterChanges = 0;
  await Promise.all(ports.map((p) => bridge.addFlows(`pod-${p}`, [podFlow(p)])));
  t.equal(afterChanges, 1, 'twenty changes at once: one bundle, one afterChange');
  t.same(await dumpFlowLines(endpoint), [...base, ...ports.map((p) => String(podFlow(p)))].sort(), 'all installed');

  // Among changes requested together, a faulty one fails alone.
  const bad = pipeline
    .table(T.SpoofGuard)
    .flow(PRIORITY.high)
    .cookie(c)
    .action({ type: 'meter', meterId: 4242 })
    .next();
  const outcomes = await Promise.allSettled([
    bridge.deleteFlows('pod-100'),
    bridge.addFlows('bad', [bad]),
    bridge.addFlows('pod-120', [podFlow(120)]),
    bridge.addFlows('dup', [podFlow(101)]), // owned by pod-101: refused by the record
  ]);
  t.same(
    outcomes.map((o) => o.status),
    ['fulfilled', 'rejected', 'fulfilled', 'rejected'],
  );
  const reason = (i: number): unknown => (outcomes[i] as PromiseRejectedResult).reason;
  t.ok(isOpenFlowError(reason(1), 'OFPMMFC_INVALID_METER'), 'the switch refused the faulty flow');
  t.match(reason(3), { code: 'INVALID_ARGUMENT', field: 'flows' }, 'the record refused the duplicate');
  const now = [...ports.slice(1), 120].map((p) => String(podFlow(p)));
  t.same(await dumpFlowLines(endpoint), [...base, ...now].sort(), 'the others are applied');
  t.same(bridge.recordedFlows('bad'), [], 'the faulty change is not recorded');

  // A group change is applied alone and in its turn: a flow using the group, requested right after
  // it, finds it installed; deleting both in the opposite order works too.
  const group = new Group({
    groupId: 77,
    type: 'select',
    buckets: [{ weight: 100, actions: actions().resubmit(11).actions }],
  });
  const user = pipeline.table(T.ServiceLB).flow(PRIORITY.high).cookie(c).matchProtocol('udp').group(77).done();
  afterChanges = 0;
  await Promise.all([bridge.setGroup(group), bridge.addFlows('group-user', [user])]);
  t.equal(afterChanges, 2, 'the group and the flow: two bundles');
  t.ok(
    (await dumpGroupLines(endpoint)).some((l) => l.includes('group_id=77')),
    'the group is installed',
  );
  t.ok((await dumpFlowLines(endpoint)).includes(String(user)), 'and the flow using it');
  await Promise.all([bridge.deleteFlows('group-user'), bridge.deleteGroup(77)]);
  t.notOk(
    (await dumpGroupLines(endpoint)).some((l) => l.includes('group_id=77')),
    'the group is gone',
  );
  t.same(await dumpFlowLines(endpoint), [...base, ...now].sort(), 'and the flow');
});

t.test('userspace conntrack settings are applied on connecting and again after ovs-vswitchd restarts', async (t) => {
  const ovs = await tempOvs(t);
  const endpoint = await addBridge(ovs, 'br-ct');
  const seqCheck = async (): Promise<string> =>
    (await unixctl(vswitchdControlSocket(ovs.runDir), 'dpctl/ct-get-tcp-seq-chk')).trim();
  t.equal(await seqCheck(), 'TCP sequence checking: enabled', 'a fresh ovs-vswitchd checks TCP sequence numbers');
  let calls = 0;
  const { bridge } = await startAgent(t, endpoint, 1, async () => {
    calls++;
    await configureUserspaceConntrack(ovs.runDir, nullLogger);
  });
  t.equal(await seqCheck(), 'TCP sequence checking: disabled', 'the agent turned the check off before installing');
  await ovs.restart('ovs-vswitchd');
  await until('the replay', () => bridge.replayCount >= 1);
  t.equal(await seqCheck(), 'TCP sequence checking: disabled', 'and again after ovs-vswitchd restarted');
  t.equal(calls, 2, 'once per connection');
});

t.test('after every change the userspace datapath holds no flow translated from the previous tables', async (t) => {
  const ovs = await tempOvs(t);
  const endpoint = await addBridge(ovs, 'br-pg');
  const ovsNs = ovs.netns ?? '';
  // A sender on a port of the bridge: whatever it sends is translated into a datapath flow.
  const peer = await tempNetns(t);
  const [a, b] = [uniqueName('pga'), uniqueName('pgb')];
  const ip = (...args: string[]): Promise<unknown> => runner.run('ip', args, { timeoutMs: 20_000 });
  await ip('-n', ovsNs, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b, 'netns', peer);
  await ip('-n', ovsNs, 'link', 'set', a, 'up');
  await ip('-n', peer, 'addr', 'add', '10.99.0.1/24', 'dev', b);
  await ip('-n', peer, 'link', 'set', b, 'up');
  await vsctl(ovs, 'add-port', 'br-pg', a);
  let purges = 0;
  const { bridge } = await startAgent(t, endpoint, 1, undefined, async () => {
    purges++;
    await purgeDatapathFlows(vswitchdControlSocket(ovs.runDir));
  });
  t.ok(purges >= 1, 'purged after the initial installation');
  const datapathFlows = async (): Promise<string[]> =>
    (await unixctl(vswitchdControlSocket(ovs.runDir), 'dpctl/dump-flows'))
      .split('\n')
      .filter((l) => l.startsWith('recirc_id'));
  const send = (): Promise<unknown> =>
    // One datagram to a neighbour that does not exist: the kernel broadcasts ARP requests for it.
    runner.run(
      'ip',
      [
        'netns',
        'exec',
        peer,
        process.execPath,
        '-e',
        "const s = require('node:dgram').createSocket('udp4'); s.send('x', 9, '10.99.0.2', () => setTimeout(() => s.close(), 300));",
      ],
      { timeoutMs: 20_000 },
    );
  await until('a datapath flow for the sender', async () => {
    await send();
    return (await datapathFlows()).length > 0;
  });
  const before = purges;
  await bridge.addFlows('pg', [
    bridge.pipeline
      .table(T.Classifier)
      .flow(PRIORITY.low)
      .cookie(bridge.cookies.request('PodConnectivity'))
      .matchInPort(77)
      .loadRegMark(FromPodRegMark)
      .gotoStage('validation'),
  ]);
  t.equal(purges, before + 1, 'one purge for the change, done before it resolved');
  t.same(await datapathFlows(), [], 'no datapath flow outlived the change');
  await bridge.addFlows('pg', []);
  t.equal(purges, before + 1, 'a change that changes nothing purges nothing');
});

t.test('a failing datapath setting is logged and does not stop the pipeline', async (t) => {
  const ovs = await tempOvs(t);
  const endpoint = await addBridge(ovs, 'br-ctf');
  const { bridge } = await startAgent(t, endpoint, 1, () =>
    configureUserspaceConntrack(join(ovs.runDir, 'absent'), nullLogger),
  );
  t.same(await dumpFlowLines(endpoint), bridge.recordedFlows().map(String).sort(), 'the pipeline is installed');
});

t.test('a restarted agent installs a new cookie round and removes the previous round after converging', async (t) => {
  const first = await setup(t, 'br-rd');
  const { endpoint } = first;
  const old = first.pipeline
    .table(T.Classifier)
    .flow(PRIORITY.low)
    .cookie(first.cookies.request('PodConnectivity'))
    .matchInPort(77)
    .loadRegMark(FromPodRegMark)
    .gotoStage('validation');
  await first.bridge.addFlows('pod-gone', [old]);
  // The "restarted agent": round 2, same feature, no pod-gone (that Pod went away meanwhile).
  const { bridge } = await startAgent(t, endpoint, CookieAllocator.nextRound(first.cookies.round));
  const during = await dumpFlowLines(endpoint);
  t.ok(during.includes(old.toString()), 'flows of the previous round stay until convergence');
  t.ok(
    during.every((l) => l === old.toString() || l.startsWith('cookie=0x2')),
    'every flow the new agent installed carries round 2 (identical matches were taken over)',
  );
  await bridge.deleteStaleRounds(first.cookies.round);
  t.same(await dumpFlowLines(endpoint), bridge.recordedFlows().map(String).sort(), 'only round 2 remains');
});
