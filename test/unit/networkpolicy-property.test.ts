/**
 * Property tests of the NetworkPolicy computation. For random small clusters and random sequences of
 * Namespace, Pod and NetworkPolicy events (with processing at random points):
 *
 * 1. the published state equals a brute-force reference computed from scratch from the final objects
 *    (fixtures/np-reference.ts, independent of the implementation);
 * 2. it equals the state of a fresh controller fed only the final objects;
 * 3. a replica built from the store snapshot at publication plus every event since equals it; and for
 *    every Node, the per-Node view (initial objects + per-Node watch events) equals the per-Node
 *    snapshot at the end: what an agent would have.
 */
import fc from 'fast-check';
import t from 'tap';
import type { GroupMember } from '../../src/common/apis/controlplane/types.ts';
import { NetworkPolicyController } from '../../src/controller/networkpolicy/controller.ts';
import {
  addressGroupWatchEvent,
  addressGroupsFor,
  appliedToGroupWatchEvent,
  appliedToGroupsFor,
  networkPoliciesFor,
  networkPolicyWatchEvent,
} from '../../src/controller/networkpolicy/watch-events.ts';
import { type ClusterState, type Expected, memberKey, referenceCompute } from './fixtures/np-reference.ts';
import { apply, type Model, NODES, opArb } from './fixtures/np-ops.ts';

/** The published state of a controller in the reference's comparable form. */
function actual(c: NetworkPolicyController): Expected {
  const out: Expected = { policies: new Map(), appliedToGroups: new Map(), addressGroups: new Map() };
  for (const p of c.networkPolicies.list()) out.policies.set(p.name, { object: p.object, span: [...p.span].sort() });
  for (const g of c.appliedToGroups.list()) {
    const byNode: Record<string, string[]> = {};
    for (const n of g.span) byNode[n] = [...g.membersOn(n)].map(memberKey).sort();
    t.equal(g.memberCount, [...g.members()].length);
    out.appliedToGroups.set(g.name, { byNode, span: [...g.span].sort() });
  }
  for (const g of c.addressGroups.list()) {
    out.addressGroups.set(g.name, { members: [...g.members()].map(memberKey).sort(), span: [...g.span].sort() });
  }
  return out;
}

const toObj = (e: Expected): unknown => ({
  policies: Object.fromEntries([...e.policies].sort()),
  appliedToGroups: Object.fromEntries([...e.appliedToGroups].sort()),
  addressGroups: Object.fromEntries([...e.addressGroups].sort()),
});

/** A replica of all three stores built only from events. */
class Replica {
  readonly state: Expected = { policies: new Map(), appliedToGroups: new Map(), addressGroups: new Map() };

  constructor(c: NetworkPolicyController) {
    const init = actual(c);
    for (const [k, v] of init.policies) this.state.policies.set(k, v);
    for (const [k, v] of init.appliedToGroups) this.state.appliedToGroups.set(k, v);
    for (const [k, v] of init.addressGroups) this.state.addressGroups.set(k, v);
    c.networkPolicies.subscribe((e) => {
      if (e.type === 'DELETED') this.state.policies.delete(e.name);
      else this.state.policies.set(e.name, { object: e.object, span: [...e.span].sort() });
    });
    c.addressGroups.subscribe((e) => {
      if (e.type === 'DELETED') {
        this.state.addressGroups.delete(e.name);
        return;
      }
      const members = new Set(e.type === 'ADDED' ? [] : (this.state.addressGroups.get(e.name)?.members ?? []));
      for (const m of e.removed) members.delete(memberKey(m));
      for (const m of e.added) members.add(memberKey(m));
      this.state.addressGroups.set(e.name, { members: [...members].sort(), span: [...e.span].sort() });
    });
    c.appliedToGroups.subscribe((e) => {
      if (e.type === 'DELETED') {
        this.state.appliedToGroups.delete(e.name);
        return;
      }
      const prev = e.type === 'ADDED' ? {} : (this.state.appliedToGroups.get(e.name)?.byNode ?? {});
      const byNode = new Map<string, Set<string>>(Object.entries(prev).map(([n, ms]) => [n, new Set(ms)]));
      const edit = (m: ReadonlyMap<string, readonly GroupMember[]>, add: boolean): void => {
        for (const [n, ms] of m) {
          let set = byNode.get(n);
          if (set === undefined) byNode.set(n, (set = new Set()));
          for (const x of ms) {
            if (add) set.add(memberKey(x));
            else set.delete(memberKey(x));
          }
        }
      };
      edit(e.removed, false);
      edit(e.added, true);
      const out: Record<string, string[]> = {};
      for (const [n, set] of byNode) if (set.size > 0) out[n] = [...set].sort();
      t.same(Object.keys(out).sort(), [...e.span].sort(), 'ATG span = its Nodes with members');
      this.state.appliedToGroups.set(e.name, { byNode: out, span: [...e.span].sort() });
    });
  }
}

/** What one Node's agent holds: objects keyed by name, built from its initial objects and its watch events. */
class NodeView {
  readonly nps = new Map<string, unknown>();
  readonly ags = new Map<string, Set<string>>();
  readonly atgs = new Map<string, Set<string>>();

  constructor(c: NetworkPolicyController, node: string | undefined) {
    for (const p of networkPoliciesFor(c.networkPolicies, node)) this.nps.set(p.metadata.name, p);
    for (const g of addressGroupsFor(c.addressGroups, node))
      this.ags.set(g.metadata.name, new Set(g.groupMembers.map(memberKey)));
    for (const g of appliedToGroupsFor(c.appliedToGroups, node))
      this.atgs.set(g.metadata.name, new Set(g.groupMembers.map(memberKey)));
    c.networkPolicies.subscribe((e) => {
      const w = networkPolicyWatchEvent(e, node);
      if (w === undefined) return;
      if (w.type === 'DELETED') this.nps.delete(e.name);
      else this.nps.set(e.name, w.object);
    });
    const patcher =
      (target: Map<string, Set<string>>) =>
      (w: { type: string; object: object } | undefined, name: string): void => {
        if (w === undefined) return;
        if (w.type === 'DELETED') target.delete(name);
        else if (w.type === 'ADDED') {
          t.notOk(target.has(name), 'ADDED only for an object the Node does not have');
          target.set(name, new Set((w.object as { groupMembers: GroupMember[] }).groupMembers.map(memberKey)));
        } else {
          const patch = w.object as { addedGroupMembers: GroupMember[]; removedGroupMembers: GroupMember[] };
          const set = target.get(name);
          t.ok(set, 'MODIFIED only for an object the Node has');
          for (const m of patch.removedGroupMembers) set?.delete(memberKey(m));
          for (const m of patch.addedGroupMembers) set?.add(memberKey(m));
        }
      };
    const ag = patcher(this.ags);
    const atg = patcher(this.atgs);
    c.addressGroups.subscribe((e) => ag(addressGroupWatchEvent(e, node), e.name));
    c.appliedToGroups.subscribe((e) => atg(appliedToGroupWatchEvent(e, node), e.name));
  }

  static snapshot(c: NetworkPolicyController, node: string | undefined): unknown {
    return {
      nps: Object.fromEntries(networkPoliciesFor(c.networkPolicies, node).map((p) => [p.metadata.name, p])),
      ags: Object.fromEntries(
        addressGroupsFor(c.addressGroups, node).map((g) => [g.metadata.name, g.groupMembers.map(memberKey).sort()]),
      ),
      atgs: Object.fromEntries(
        appliedToGroupsFor(c.appliedToGroups, node).map((g) => [g.metadata.name, g.groupMembers.map(memberKey).sort()]),
      ),
    };
  }

  view(): unknown {
    const sortedSets = (m: Map<string, Set<string>>): Record<string, string[]> =>
      Object.fromEntries([...m].map(([k, v]): [string, string[]] => [k, [...v].sort()]));
    return { nps: Object.fromEntries(this.nps), ags: sortedSets(this.ags), atgs: sortedSets(this.atgs) };
  }
}

function stateOf(m: Model): ClusterState {
  return { namespaces: m.namespaces, pods: m.pods, policies: m.policies };
}

// A fixed seed keeps `npm test` repeatable; NP_PROPERTY_SEED / NP_PROPERTY_RUNS explore further.
const SEED = Number(process.env['NP_PROPERTY_SEED'] ?? '42');
const RUNS = Number(process.env['NP_PROPERTY_RUNS'] ?? '400');

t.test('random clusters and event orders match the reference, a fresh computation and the event streams', (t) => {
  let runs = 0;
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 10, maxLength: 80 }), (ops) => {
      runs++;
      const c = new NetworkPolicyController();
      const m: Model = { namespaces: new Map(), pods: new Map(), policies: new Map() };
      let replica: Replica | undefined;
      const views = new Map<string, NodeView>();
      const all = [...ops, { kind: 'publish' } as const];
      for (const op of all) {
        apply(c, m, op);
        if (op.kind === 'publish' && replica === undefined) {
          replica = new Replica(c);
          for (const n of [...NODES, undefined]) views.set(n ?? '*', new NodeView(c, n));
        }
      }
      c.flush();
      const got = toObj(actual(c));
      const expected = toObj(referenceCompute(stateOf(m)));
      if (!t.same(got, expected, 'equals the brute-force reference')) return false;

      const fresh = new NetworkPolicyController();
      for (const n of m.namespaces.values()) fresh.handleNamespace('ADDED', n);
      for (const p of m.pods.values()) fresh.handlePod('ADDED', p);
      for (const p of m.policies.values()) fresh.handleNetworkPolicy('ADDED', p);
      fresh.flush();
      fresh.publish();
      if (!t.same(got, toObj(actual(fresh)), 'equals a computation from scratch')) return false;

      if (replica === undefined) return false;
      if (!t.same(toObj(replica.state), got, 'the event stream reconstructs the stores')) return false;
      for (const [n, v] of views) {
        const node = n === '*' ? undefined : n;
        if (!t.same(v.view(), NodeView.snapshot(c, node), `the watch of ${n} reconstructs what it must hold`)) {
          return false;
        }
      }
      return true;
    }),
    { numRuns: RUNS, seed: SEED, endOnFailure: true },
  );
  t.equal(runs, RUNS);
  t.end();
});

t.test('the reference itself on a hand-checked case', (t) => {
  const e = referenceCompute({
    namespaces: new Map([['ns1', { metadata: { name: 'ns1' } }]]),
    pods: new Map([
      [
        'ns1/a',
        {
          metadata: { namespace: 'ns1', name: 'a', labels: { app: 'db' } },
          spec: { nodeName: 'n1' },
          status: { podIP: '10.0.0.1' },
        },
      ],
      [
        'ns1/b',
        {
          metadata: { namespace: 'ns1', name: 'b', labels: { app: 'web' } },
          spec: { nodeName: 'n2' },
          status: { podIP: '10.0.0.2' },
        },
      ],
    ]),
    policies: new Map([
      [
        'ns1/p',
        {
          metadata: { namespace: 'ns1', name: 'p', uid: 'u' },
          spec: {
            podSelector: { matchLabels: { app: 'db' } },
            ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }] }],
          },
        },
      ],
    ]),
  });
  t.same(e.policies.get('u')?.span, ['n1']);
  t.same([...e.addressGroups.values()], [{ members: ['ns1/b|10.0.0.2|'], span: ['n1'] }]);
  t.same([...e.appliedToGroups.values()], [{ byNode: { n1: ['ns1/a||'] }, span: ['n1'] }]);
  t.end();
});
