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
import type * as k8s from '../../src/common/k8s/objects.ts';
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

const NODES = ['n1', 'n2', 'n3'];
const NAMESPACES = ['ns0', 'ns1'];

// ---------------------------------------------------------------- generators

const labelsArb = (keys: Record<string, string[]>): fc.Arbitrary<Record<string, string>> =>
  fc.record(Object.fromEntries(Object.entries(keys).map(([k, vs]) => [k, fc.constantFrom(...vs)])), {
    requiredKeys: [],
  }) as fc.Arbitrary<Record<string, string>>;

const podLabels = labelsArb({ app: ['web', 'db', 'cache'], tier: ['f', 'b'] });
const nsLabels = labelsArb({ team: ['a', 'b'], env: ['x', 'y'] });

/** Selectors that often select something: mostly empty or one requirement, sometimes more. */
const selectorArb = (keys: Record<string, string[]>): fc.Arbitrary<k8s.LabelSelector> => {
  const key = fc.constantFrom(...Object.keys(keys));
  const expr = key.chain((k) =>
    fc.oneof(
      fc.record({
        key: fc.constant(k),
        operator: fc.constantFrom('In', 'NotIn'),
        values: fc.uniqueArray(fc.constantFrom(...(keys[k] ?? [])), { minLength: 1, maxLength: 2 }),
      }),
      fc.record({ key: fc.constant(k), operator: fc.constantFrom('Exists', 'DoesNotExist') }),
    ),
  );
  const one = key.chain((k) => fc.constantFrom(...(keys[k] ?? [])).map((v) => ({ [k]: v })));
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant({}) },
    { weight: 4, arbitrary: one.map((matchLabels) => ({ matchLabels })) },
    { weight: 2, arbitrary: expr.map((e) => ({ matchExpressions: [e] })) },
    {
      weight: 1,
      arbitrary: fc.record(
        { matchLabels: labelsArb(keys), matchExpressions: fc.array(expr, { maxLength: 2 }) },
        { requiredKeys: [] },
      ),
    },
  );
};

const podSelectorArb = selectorArb({ app: ['web', 'db', 'cache'], tier: ['f', 'b'] });
const nsSelectorArb = selectorArb({ team: ['a', 'b'], env: ['x', 'y'] });

const ipBlockArb: fc.Arbitrary<k8s.IPBlock> = fc.oneof(
  fc.constant({ cidr: '10.0.0.0/8' }),
  fc.constant({ cidr: '10.0.0.0/8', except: ['10.1.0.0/16', '10.2.3.0/24'] }),
  fc.constant({ cidr: '2001:db8::/32', except: ['2001:db8:1::/48'] }),
);

const peerArb: fc.Arbitrary<k8s.NetworkPolicyPeer> = fc.oneof(
  podSelectorArb.map((podSelector) => ({ podSelector })),
  nsSelectorArb.map((namespaceSelector) => ({ namespaceSelector })),
  fc.record({ podSelector: podSelectorArb, namespaceSelector: nsSelectorArb }),
  ipBlockArb.map((ipBlock) => ({ ipBlock })),
);

const portArb: fc.Arbitrary<k8s.NetworkPolicyPort> = fc.oneof(
  fc.record(
    { protocol: fc.constantFrom('TCP', 'UDP', 'SCTP'), port: fc.constantFrom(53, 80) },
    { requiredKeys: ['port'] },
  ),
  fc.record({ port: fc.constant(8000), endPort: fc.constantFrom(8000, 8080) }),
  fc.record(
    { protocol: fc.constantFrom('TCP', 'UDP'), port: fc.constantFrom('http', 'dns') },
    { requiredKeys: ['port'] },
  ),
  fc.constant({ protocol: 'UDP' }),
);

const peersArb = fc.array(peerArb, { maxLength: 3 });
const portsArb = fc.array(portArb, { maxLength: 2 });

const ingressRuleArb: fc.Arbitrary<k8s.NetworkPolicyIngressRule> = fc.record(
  { from: peersArb, ports: portsArb },
  { requiredKeys: [] },
);
const egressRuleArb: fc.Arbitrary<k8s.NetworkPolicyEgressRule> = fc.record(
  { to: peersArb, ports: portsArb },
  { requiredKeys: [] },
);

const specArb: fc.Arbitrary<k8s.NetworkPolicySpec> = fc.record(
  {
    podSelector: podSelectorArb,
    policyTypes: fc.subarray(['Ingress', 'Egress']),
    ingress: fc.array(ingressRuleArb, { maxLength: 2 }),
    egress: fc.array(egressRuleArb, { maxLength: 2 }),
  },
  { requiredKeys: ['podSelector'] },
);

type Op =
  | { kind: 'ns'; name: string; labels: Record<string, string>; logging: boolean }
  | { kind: 'nsDel'; name: string }
  | { kind: 'pod'; pod: k8s.Pod }
  | { kind: 'podDel'; ns: string; name: string }
  | { kind: 'np'; np: k8s.NetworkPolicy }
  | { kind: 'npDel'; ns: string; name: string }
  | { kind: 'flush' }
  | { kind: 'step'; items: number }
  | { kind: 'publish' };

const podArb: fc.Arbitrary<k8s.Pod> = fc
  .record({
    ns: fc.constantFrom(...NAMESPACES),
    name: fc.constantFrom('p0', 'p1', 'p2', 'p3', 'p4'),
    labels: podLabels,
    node: fc.option(fc.constantFrom(...NODES), { nil: undefined, freq: 8 }),
    ips: fc.constantFrom<string[]>([], ['10.0.0.1'], ['10.0.0.2'], ['10.0.0.3'], ['10.0.0.5'], ['10.0.0.4', 'fd00::4']),
    hostNetwork: fc.integer({ min: 0, max: 9 }).map((x) => x === 0),
    phase: fc.constantFrom('Running', 'Running', 'Running', 'Running', 'Running', 'Pending', 'Succeeded', 'Failed'),
    named: fc.constantFrom<k8s.ContainerPort[]>(
      [],
      [{ name: 'http', containerPort: 80 }],
      [{ name: 'dns', containerPort: 53, protocol: 'UDP' }],
    ),
  })
  .map(({ ns, name, labels, node, ips, hostNetwork, phase, named }) => ({
    metadata: { namespace: ns, name, uid: `${ns}-${name}`, labels },
    spec: {
      ...(node === undefined ? {} : { nodeName: node }),
      ...(hostNetwork ? { hostNetwork: true } : {}),
      containers: [{ name: 'c', ports: named }],
    },
    status: { phase, ...(ips.length === 0 ? {} : { podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) }) },
  }));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('ns' as const),
      name: fc.constantFrom(...NAMESPACES),
      labels: nsLabels,
      logging: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('nsDel' as const), name: fc.constantFrom(...NAMESPACES) }) },
  { weight: 6, arbitrary: podArb.map((pod) => ({ kind: 'pod' as const, pod })) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('podDel' as const),
      ns: fc.constantFrom(...NAMESPACES),
      name: fc.constantFrom('p0', 'p1', 'p2', 'p3', 'p4'),
    }),
  },
  {
    weight: 4,
    arbitrary: fc
      .record({
        ns: fc.constantFrom(...NAMESPACES),
        name: fc.constantFrom('a', 'b', 'c'),
        version: fc.constantFrom(1, 2),
        generation: fc.constantFrom(1, 2),
        spec: specArb,
      })
      .map(({ ns, name, version, generation, spec }) => ({
        kind: 'np' as const,
        np: { metadata: { namespace: ns, name, uid: `${ns}-${name}-v${version}`, generation }, spec },
      })),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('npDel' as const),
      ns: fc.constantFrom(...NAMESPACES),
      name: fc.constantFrom('a', 'b', 'c'),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: 'flush' as const }) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 4 }).map((items) => ({ kind: 'step' as const, items })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'publish' as const }) },
);

// ---------------------------------------------------------------- model and comparison

interface Model {
  namespaces: Map<string, k8s.Namespace>;
  pods: Map<string, k8s.Pod>;
  policies: Map<string, k8s.NetworkPolicy>;
}

function apply(c: NetworkPolicyController, m: Model, op: Op): void {
  switch (op.kind) {
    case 'ns': {
      const obj: k8s.Namespace = {
        metadata: {
          name: op.name,
          labels: op.labels,
          ...(op.logging ? { annotations: { 'networkpolicy.antrea.io/enable-logging': 'true' } } : {}),
        },
      };
      c.handleNamespace(m.namespaces.has(op.name) ? 'MODIFIED' : 'ADDED', obj);
      m.namespaces.set(op.name, obj);
      break;
    }
    case 'nsDel': {
      const obj = m.namespaces.get(op.name);
      if (obj === undefined) return;
      m.namespaces.delete(op.name);
      c.handleNamespace('DELETED', obj);
      break;
    }
    case 'pod': {
      const key = `${op.pod.metadata?.namespace}/${op.pod.metadata?.name}`;
      c.handlePod(m.pods.has(key) ? 'MODIFIED' : 'ADDED', op.pod);
      m.pods.set(key, op.pod);
      break;
    }
    case 'podDel': {
      const key = `${op.ns}/${op.name}`;
      const obj = m.pods.get(key);
      if (obj === undefined) return;
      m.pods.delete(key);
      c.handlePod('DELETED', obj);
      break;
    }
    case 'np': {
      const key = `${op.np.metadata?.namespace}/${op.np.metadata?.name}`;
      c.handleNetworkPolicy(m.policies.has(key) ? 'MODIFIED' : 'ADDED', op.np);
      m.policies.set(key, op.np);
      break;
    }
    case 'npDel': {
      const key = `${op.ns}/${op.name}`;
      const obj = m.policies.get(key);
      if (obj === undefined) return;
      m.policies.delete(key);
      c.handleNetworkPolicy('DELETED', obj);
      break;
    }
    case 'flush':
      c.flush();
      break;
    case 'step':
      // Process a few records only, as the run loop does between slices, then let events in.
      c.flush(Infinity, op.items);
      break;
    case 'publish':
      c.flush();
      c.publish();
      break;
  }
}

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
