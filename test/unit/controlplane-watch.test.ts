/**
 * The watch hub against a real NetworkPolicyController: simulated agents (per Node, and one watching
 * everything) decode the frames in both encodings and must hold exactly their Node's objects,
 * checked against the brute-force reference after random sequences of Pod moves, label changes and
 * policy edits, with watches started at random points (before publication, while changes are
 * pending). Plus the publication and quiescence gates, the bookmark, the name selector, shared
 * encodings and the slow-watcher cut-off.
 */
import fc from 'fast-check';
import t from 'tap';
import { ControlplaneEncoder, type Encoding, WatchDecoder } from '../../src/common/apis/controlplane/codec.ts';
import { WatchHub } from '../../src/controller/apiserver/watch.ts';
import { NetworkPolicyController, groupName } from '../../src/controller/networkpolicy/controller.ts';
import { flushMicrotasks } from '../helpers/fake-clock.ts';
import { SimAgent, SimSink, expectedView } from './fixtures/agent-sim.ts';
import { np, pod, sel } from './fixtures/k8s.ts';
import { NODES, type Op, apply, emptyModel, opArb } from './fixtures/np-ops.ts';
import { referenceCompute } from './fixtures/np-reference.ts';

const policy = np('ns1', 'p', {
  podSelector: sel({ app: 'db' }),
  policyTypes: ['Ingress'],
  ingress: [{ from: [{ podSelector: sel({ app: 'web' }) }] }],
});
const ATG = groupName('namespace=ns1 And podSelector=app=db');
const AG = groupName('namespace=ns1 And podSelector=app=web');

function setup(): { c: NetworkPolicyController; hub: WatchHub; abort: AbortController } {
  const c = new NetworkPolicyController();
  const hub = new WatchHub(c, new ControlplaneEncoder());
  const abort = new AbortController();
  t.teardown(() => {
    abort.abort();
    hub.stop();
  });
  return { c, hub, abort };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await flushMicrotasks();
}

t.test('random event orders: every agent holds exactly its Node objects (reference recomputation)', async (t) => {
  type WatchOp = { kind: 'watch'; node: string | undefined; encoding: Encoding };
  const watchArb = fc.record({
    kind: fc.constant('watch' as const),
    node: fc.constantFrom<(string | undefined)[]>(...NODES, undefined),
    encoding: fc.constantFrom<Encoding[]>('protobuf', 'json'),
  });
  const opsArb = fc.array(fc.oneof({ weight: 12, arbitrary: opArb }, { weight: 1, arbitrary: watchArb }), {
    minLength: 10,
    maxLength: 60,
  });
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(opsArb, async (ops: (Op | WatchOp)[]) => {
      runs++;
      const c = new NetworkPolicyController();
      const hub = new WatchHub(c, new ControlplaneEncoder());
      const abort = new AbortController();
      const m = emptyModel();
      const agents: SimAgent[] = [];
      // Agents present from the start, in both encodings; more join at random points.
      for (const n of [...NODES, undefined]) agents.push(new SimAgent(n, 'protobuf'));
      agents.push(new SimAgent('n1', 'json'));
      const starts = agents.map((a, i) => a.start(hub, abort.signal, i === agents.length - 1 ? 'json' : 'protobuf'));
      for (const op of [...ops, { kind: 'publish' } as const]) {
        if (op.kind === 'watch') {
          const a = new SimAgent(op.node, op.encoding);
          agents.push(a);
          starts.push(a.start(hub, abort.signal, op.encoding));
          continue;
        }
        apply(c, m, op);
        // Let waiting watches start when the controller happens to be idle.
        if (op.kind === 'flush' || op.kind === 'publish') await settle();
      }
      c.flush();
      await settle();
      await Promise.all(starts);
      const expected = referenceCompute({ namespaces: m.namespaces, pods: m.pods, policies: m.policies });
      try {
        for (const a of agents) {
          if (a.errors().length > 0) {
            t.fail(`agent ${a.node ?? '*'} failed: ${String(a.errors()[0])}`);
            return false;
          }
          if (!a.synced) {
            t.fail(`agent ${a.node ?? '*'} never got its bookmark`);
            return false;
          }
          if (!t.same(a.view(), expectedView(expected, a.node), `agent of ${a.node ?? 'all Nodes'}`)) return false;
        }
        return true;
      } finally {
        abort.abort();
        hub.stop();
      }
    }),
    { numRuns: 150, seed: 7, endOnFailure: true },
  );
  t.equal(runs, 150);
});

t.test('no watch starts before the computation is published', async (t) => {
  const { c, hub, abort } = setup();
  c.handlePod('ADDED', pod('ns1', 'db1', { app: 'db' }, { node: 'n1', ip: '10.0.0.1' }));
  c.handleNetworkPolicy('ADDED', policy);
  c.flush();
  const sink = new SimSink('networkpolicies', 'protobuf');
  const started = hub.watch({ resource: 'networkpolicies', node: 'n1', encoding: 'protobuf' }, sink, abort.signal);
  await settle();
  t.equal(sink.frames.length, 0, 'nothing sent while unpublished');
  t.equal(hub.stats().pending, 0);
  c.publish();
  await started;
  t.same(
    sink.events.map((e) => e.type),
    ['ADDED', 'BOOKMARK'],
  );
  t.ok(sink.synced);
  t.equal(sink.state.size, 1);
});

t.test('a watch waits for a quiescent point: never a half-processed snapshot', async (t) => {
  const { c, hub, abort } = setup();
  c.handlePod('ADDED', pod('ns1', 'web1', { app: 'web' }, { node: 'n2', ip: '10.0.0.2' }));
  c.handlePod('ADDED', pod('ns1', 'db1', { app: 'db' }, { node: 'n1', ip: '10.0.0.1' }));
  c.handleNetworkPolicy('ADDED', policy);
  c.flush();
  c.publish();
  // A member joins and leaves again before processing: a snapshot taken now would keep web2.
  c.handlePod('ADDED', pod('ns1', 'web2', { app: 'web' }, { node: 'n2', ip: '10.0.0.3' }));
  const sink = new SimSink('addressgroups', 'json');
  const started = hub.watch({ resource: 'addressgroups', node: 'n1', encoding: 'json' }, sink, abort.signal);
  await settle();
  t.equal(sink.frames.length, 0, 'waiting while changes are queued');
  t.equal(hub.stats().pending, 1);
  c.handlePod('DELETED', pod('ns1', 'web2', { app: 'web' }, { node: 'n2', ip: '10.0.0.3' }));
  c.flush();
  await started;
  t.same(sink.members(AG), [{ pod: { name: 'web1', namespace: 'ns1' }, ips: ['10.0.0.2'] }]);
});

t.test('the bookmark carries the resource version and, for watch-list, the end annotation', async (t) => {
  const { c, hub, abort } = setup();
  c.publish();
  const sink = new SimSink('appliedtogroups', 'protobuf');
  await hub.watch({ resource: 'appliedtogroups', encoding: 'protobuf', annotateBookmark: true }, sink, abort.signal);
  t.same(sink.events, [
    {
      type: 'BOOKMARK',
      kind: 'AppliedToGroup',
      object: {
        metadata: { name: '', resourceVersion: '0', annotations: { 'k8s.io/initial-events-end': 'true' } },
        groupMembers: [],
      },
    },
  ]);
});

t.test('per-Node transitions, the name selector and shared encodings', async (t) => {
  const { c, hub, abort } = setup();
  c.handlePod('ADDED', pod('ns1', 'db1', { app: 'db' }, { node: 'n1', ip: '10.0.0.1' }));
  c.handlePod('ADDED', pod('ns1', 'web1', { app: 'web' }, { node: 'n3', ip: '10.0.0.3' }));
  c.handleNetworkPolicy('ADDED', policy);
  c.flush();
  c.publish();
  const n1 = new SimAgent('n1', 'protobuf');
  const n2 = new SimAgent('n2', 'protobuf');
  await Promise.all([n1.start(hub, abort.signal, 'protobuf'), n2.start(hub, abort.signal, 'protobuf')]);
  const byName = new SimSink('appliedtogroups', 'protobuf');
  await hub.watch({ resource: 'appliedtogroups', name: ATG, encoding: 'protobuf' }, byName, abort.signal);
  const other = new SimSink('appliedtogroups', 'protobuf');
  await hub.watch({ resource: 'appliedtogroups', name: 'nope', encoding: 'protobuf' }, other, abort.signal);
  t.equal(n2.sinks.networkpolicies.state.size, 0, 'n2 has nothing yet');

  // The Pod moves from n1 to n2: n2 gains everything, n1 loses everything.
  c.handlePod('MODIFIED', pod('ns1', 'db1', { app: 'db' }, { node: 'n2', ip: '10.0.0.1' }));
  c.flush();
  t.same(
    n2.sinks.networkpolicies.events.slice(-1).map((e) => e.type),
    ['ADDED'],
  );
  t.same(
    n1.sinks.networkpolicies.events.slice(-1).map((e) => e.type),
    ['DELETED'],
  );
  t.same(n2.sinks.appliedtogroups.members(ATG), [{ pod: { name: 'db1', namespace: 'ns1' } }]);
  t.equal(n1.sinks.appliedtogroups.state.size, 0);
  t.same(
    byName.events.map((e) => e.type),
    ['ADDED', 'BOOKMARK', 'MODIFIED'],
    'a metadata.name watch follows its object only',
  );
  t.same(
    other.events.map((e) => e.type),
    ['BOOKMARK'],
  );

  // A policy edit goes to both Nodes having it as the same bytes.
  const n3 = new SimAgent('n3', 'protobuf');
  c.handlePod('ADDED', pod('ns1', 'db3', { app: 'db' }, { node: 'n3', ip: '10.0.0.4' }));
  c.flush();
  await n3.start(hub, abort.signal, 'protobuf');
  c.handleNetworkPolicy(
    'MODIFIED',
    np('ns1', 'p', { ...policy.spec!, policyTypes: ['Ingress', 'Egress'] }, { generation: 2 }),
  );
  c.flush();
  const f2 = n2.sinks.networkpolicies.frames.at(-1);
  const f3 = n3.sinks.networkpolicies.frames.at(-1);
  t.ok(f2 !== undefined && f2 === f3, 'one encoding shared by both watchers');
  t.same(
    new WatchDecoder('protobuf').push(f2!).map((e) => e.type),
    ['MODIFIED'],
  );
});

t.test('a slow watcher is cut off and never holds the others back', async (t) => {
  const { c, hub, abort } = setup();
  c.handlePod('ADDED', pod('ns1', 'db1', { app: 'db' }, { node: 'n1', ip: '10.0.0.1' }));
  c.handleNetworkPolicy('ADDED', policy);
  c.flush();
  c.publish();
  const slow = new SimSink('addressgroups', 'protobuf');
  slow.liveLimit = 2;
  const fast = new SimSink('addressgroups', 'protobuf');
  const hSlow = await hub.watch({ resource: 'addressgroups', node: 'n1', encoding: 'protobuf' }, slow, abort.signal);
  await hub.watch({ resource: 'addressgroups', node: 'n1', encoding: 'protobuf' }, fast, abort.signal);
  for (let i = 0; i < 5; i++) {
    c.handlePod('ADDED', pod('ns1', `web${i}`, { app: 'web' }, { node: 'n2', ip: `10.0.1.${i}` }));
    c.flush();
  }
  t.equal(slow.closed, 'overflow');
  t.equal(await hSlow.done, 'overflow');
  t.equal(slow.live, 3, 'the third live frame over the limit closed it');
  t.equal(fast.closed, undefined);
  t.equal(fast.members(AG)?.length, 5, 'the other watcher got every event');
  t.equal(hub.stats().closed.overflow, 1);
  t.equal(hub.watcherCount('addressgroups'), 1);
});

t.test('stop closes every watch and refuses new ones', async (t) => {
  const { c, hub, abort } = setup();
  c.publish();
  const a = new SimAgent('n1', 'json');
  await a.start(hub, abort.signal, 'json');
  t.equal(hub.watcherCount(), 3);
  t.equal(hub.stats().connectedAgents, 1);
  hub.stop();
  t.equal(a.sinks.networkpolicies.closed, 'shutdown');
  t.equal(hub.watcherCount(), 0);
  await t.rejects(
    hub.watch({ resource: 'networkpolicies', encoding: 'json' }, new SimSink('networkpolicies', 'json'), abort.signal),
    /stopped/,
  );
});

t.test('an aborted pending watch is never started', async (t) => {
  const { hub } = setup();
  const ac = new AbortController();
  const sink = new SimSink('networkpolicies', 'json');
  const p = hub.watch({ resource: 'networkpolicies', encoding: 'json' }, sink, ac.signal);
  ac.abort();
  await t.rejects(p);
  t.equal(sink.frames.length, 0);
});
