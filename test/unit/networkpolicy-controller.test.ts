import t from 'tap';
import type { GroupMember } from '../../src/common/apis/controlplane/types.ts';
import { memoryLogger } from '../../src/common/util/log.ts';
import {
  type ControllerSource,
  NetworkPolicyController,
  groupName,
} from '../../src/controller/networkpolicy/controller.ts';
import type { StoreEvent } from '../../src/controller/networkpolicy/store.ts';
import { node, np, ns, pod, sel } from './fixtures/k8s.ts';

const G = groupName;
const sorted = (s: Iterable<string>): string[] => [...s].sort();
const who = (m: GroupMember): string =>
  `${m.pod?.namespace ?? ''}/${m.pod?.name ?? ''}${m.ips === undefined ? '' : '@' + m.ips.join(',')}${
    m.ports === undefined ? '' : ':' + m.ports.map((p) => `${p.name}=${p.protocol}/${p.port}`).join(',')
  }`;

function controller(): NetworkPolicyController {
  return new NetworkPolicyController({ logger: memoryLogger('warn') });
}

function atg(
  c: NetworkPolicyController,
  normalized: string,
): { span: string[]; byNode: Record<string, string[]> } | undefined {
  const g = c.appliedToGroups.get(G(normalized));
  if (g === undefined) return undefined;
  const byNode: Record<string, string[]> = {};
  for (const n of g.span) byNode[n] = [...g.membersOn(n)].map(who).sort();
  return { span: sorted(g.span), byNode };
}

function ag(c: NetworkPolicyController, normalized: string): { span: string[]; members: string[] } | undefined {
  const g = c.addressGroups.get(G(normalized));
  if (g === undefined) return undefined;
  return { span: sorted(g.span), members: [...g.members()].map(who).sort() };
}

function span(c: NetworkPolicyController, uid: string): string[] | undefined {
  const p = c.networkPolicies.get(uid);
  return p === undefined ? undefined : sorted(p.span);
}

/** Records every store event as a short line. */
function recorder(c: NetworkPolicyController): string[] {
  const lines: string[] = [];
  const fmt = (e: StoreEvent): string => {
    const spans = `[${sorted(e.prevSpan).join(',')}]->[${sorted(e.span).join(',')}]`;
    if (e.kind === 'NetworkPolicy') return `NP ${e.type} ${e.name} ${spans}`;
    if (e.kind === 'AddressGroup') {
      return `AG ${e.type} ${e.name} ${spans} +${e.added.map(who).sort().join(',')} -${e.removed.map(who).sort().join(',')}`;
    }
    const byNode = (m: ReadonlyMap<string, readonly GroupMember[]>): string =>
      [...m]
        .sort()
        .map(([n, ms]) => `${n}:${ms.map(who).sort().join(',')}`)
        .join(';');
    return `ATG ${e.type} ${e.name} ${spans} +${byNode(e.added)} -${byNode(e.removed)}`;
  };
  c.networkPolicies.subscribe((e) => lines.push(fmt(e)));
  c.addressGroups.subscribe((e) => lines.push(fmt(e)));
  c.appliedToGroups.subscribe((e) => lines.push(fmt(e)));
  return lines;
}

const DB = 'namespace=ns1 And podSelector=app=db';
const WEB = 'namespace=ns1 And podSelector=app=web';
const dbPolicy = np('ns1', 'db', {
  podSelector: sel({ app: 'db' }),
  policyTypes: ['Ingress'],
  ingress: [{ from: [{ podSelector: sel({ app: 'web' }) }] }],
});

t.test('a group spans the Nodes running its selected Pods', (t) => {
  const c = controller();
  c.handleNamespace('ADDED', ns('ns1'));
  c.handlePod('ADDED', pod('ns1', 'db1', { app: 'db' }, { node: 'n1', ip: '10.0.0.1' }));
  c.handlePod('ADDED', pod('ns1', 'db2', { app: 'db' }, { node: 'n2', ip: '10.0.0.2' }));
  c.handlePod('ADDED', pod('ns1', 'db3', { app: 'db' }, { node: 'n3' }));
  c.handlePod('ADDED', pod('ns1', 'db4', { app: 'db' }, {}));
  c.handlePod('ADDED', pod('ns1', 'db5', { app: 'db' }, { node: 'n5', ip: '10.0.0.5', hostNetwork: true }));
  c.handlePod('ADDED', pod('ns1', 'db6', { app: 'db' }, { node: 'n6', ip: '10.0.0.6', phase: 'Succeeded' }));
  c.handlePod('ADDED', pod('ns1', 'db7', { app: 'db' }, { node: 'n7', ip: '10.0.0.7', phase: 'Failed' }));
  c.handlePod('ADDED', pod('ns1', 'web1', { app: 'web' }, { node: 'n8', ip: ['10.0.1.1', 'fd00::1'] }));
  c.handlePod('ADDED', pod('ns1', 'web2', { app: 'web' }, { node: 'n9' }));
  c.handlePod('ADDED', pod('ns2', 'db9', { app: 'db' }, { node: 'n10', ip: '10.0.0.9' }));
  c.handleNetworkPolicy('ADDED', dbPolicy);
  t.notOk(c.networkPolicies.ready, 'nothing is published before publish()');
  t.equal(c.networkPolicies.size, 0);
  t.same([...c.networkPolicies.list()], []);
  c.flush();
  c.publish();
  t.same(atg(c, DB), {
    span: ['n1', 'n2', 'n3'],
    byNode: { n1: ['ns1/db1'], n2: ['ns1/db2'], n3: ['ns1/db3'] },
  });
  t.same(span(c, 'uid-np-ns1-db'), ['n1', 'n2', 'n3'], 'the policy span is its AppliedToGroup span');
  t.same(ag(c, WEB), { span: ['n1', 'n2', 'n3'], members: ['ns1/web1@10.0.1.1,fd00::1'] });
  t.end();
});

t.test('an AddressGroup spans the union of the policies using it', (t) => {
  const c = controller();
  c.handlePod('ADDED', pod('ns1', 'db1', { app: 'db' }, { node: 'n1', ip: '10.0.0.1' }));
  c.handlePod('ADDED', pod('ns1', 'cache1', { app: 'cache' }, { node: 'n2', ip: '10.0.0.2' }));
  c.handlePod('ADDED', pod('ns1', 'web1', { app: 'web' }, { node: 'n3', ip: '10.0.0.3' }));
  c.handleNetworkPolicy('ADDED', dbPolicy);
  c.handleNetworkPolicy(
    'ADDED',
    np('ns1', 'cache', {
      podSelector: sel({ app: 'cache' }),
      policyTypes: ['Ingress'],
      ingress: [{ from: [{ podSelector: sel({ app: 'web' }) }] }],
    }),
  );
  c.flush();
  c.publish();
  t.same(ag(c, WEB)?.span, ['n1', 'n2']);
  t.same(ag(c, WEB)?.members, ['ns1/web1@10.0.0.3'], 'members everywhere, not only on the span');
  t.same(atg(c, WEB), undefined, 'web is a peer, not applied-to');
  t.end();
});

t.test('groups are shared by normalized selector and disappear when unreferenced', (t) => {
  const c = controller();
  c.handlePod('ADDED', pod('ns1', 'db1', { app: 'db' }, { node: 'n1', ip: '10.0.0.1' }));
  const a = np('ns1', 'a', {
    podSelector: sel({ app: 'db' }),
    ingress: [{ from: [{ podSelector: sel({ app: 'web' }) }] }],
  });
  const b = np('ns1', 'b', {
    podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['db'] }] },
    ingress: [{ from: [{ podSelector: sel({ app: 'web' }) }] }],
  });
  const b2 = np('ns1', 'b', {
    podSelector: sel({ app: 'db' }),
    ingress: [{ from: [{ podSelector: sel({ app: 'web' }) }] }],
  });
  c.handleNetworkPolicy('ADDED', a);
  c.handleNetworkPolicy('ADDED', b);
  c.handleNetworkPolicy(
    'ADDED',
    np('ns1', 'c', { podSelector: sel({ app: 'db' }), ingress: [{ from: [{ podSelector: sel({ app: 'web' }) }] }] }),
  );
  c.flush();
  c.publish();
  t.equal(c.appliedToGroups.size, 2, 'app=db and app in (db) are different selectors');
  t.equal(c.addressGroups.size, 1, 'one AddressGroup for three identical peers');
  const events = recorder(c);
  c.handleNetworkPolicy('MODIFIED', b2);
  c.flush();
  t.equal(c.appliedToGroups.size, 1, 'b moved to the shared group; its old group is gone');
  t.ok(c.appliedToGroups.get(G(DB)));
  t.same(
    events.map((e) => e.split(' ').slice(0, 3).join(' ')),
    [`NP MODIFIED uid-np-ns1-b`, `ATG DELETED ${G('namespace=ns1 And podSelector=app in (db)')}`],
    'the policy stops using the group before the group is deleted',
  );
  c.handleNetworkPolicy('DELETED', a);
  c.handleNetworkPolicy('DELETED', b2);
  c.flush();
  t.equal(c.appliedToGroups.size, 1, 'still used by c');
  c.handleNetworkPolicy('DELETED', np('ns1', 'c', {}));
  c.flush();
  t.equal(c.appliedToGroups.size, 0);
  t.equal(c.addressGroups.size, 0);
  t.equal(c.networkPolicies.size, 0);
  t.same(c.stats().selectors, 0, 'the index forgets the selectors too');
  t.end();
});

t.test('named container ports are carried by members', (t) => {
  const c = controller();
  c.handlePod(
    'ADDED',
    pod(
      'ns1',
      'db1',
      { app: 'db' },
      {
        node: 'n1',
        ip: '10.0.0.1',
        ports: [
          { name: 'sql', containerPort: 5432 },
          { name: 'm', containerPort: 9, protocol: 'UDP' },
        ],
      },
    ),
  );
  c.handlePod(
    'ADDED',
    pod('ns1', 'web1', { app: 'web' }, { node: 'n1', ip: '10.0.0.3', ports: [{ name: 'http', containerPort: 80 }] }),
  );
  c.handleNetworkPolicy('ADDED', dbPolicy);
  c.flush();
  c.publish();
  t.same(atg(c, DB)?.byNode, { n1: ['ns1/db1:sql=TCP/5432,m=UDP/9'] }, 'AppliedToGroup members carry no IPs');
  t.same(ag(c, WEB)?.members, ['ns1/web1@10.0.0.3:http=TCP/80']);
  t.end();
});

t.test('namespace selectors follow namespace labels', (t) => {
  const c = controller();
  c.handleNamespace('ADDED', ns('ns1'));
  c.handleNamespace('ADDED', ns('ns2', { team: 'a' }));
  c.handleNamespace('ADDED', ns('ns3', { team: 'b' }));
  for (const n of ['ns1', 'ns2', 'ns3']) {
    c.handlePod('ADDED', pod(n, 'web', { app: 'web' }, { node: `node-${n}`, ip: `10.0.0.${n.slice(2)}` }));
    c.handlePod('ADDED', pod(n, 'db', { app: 'db' }, { node: `node-${n}`, ip: `10.0.1.${n.slice(2)}` }));
  }
  c.handleNetworkPolicy(
    'ADDED',
    np('ns1', 'p', {
      podSelector: sel({ app: 'db' }),
      ingress: [
        { from: [{ namespaceSelector: sel({ team: 'a' }), podSelector: sel({ app: 'web' }) }] },
        { from: [{ namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'Exists' }] } }] },
      ],
    }),
  );
  c.flush();
  c.publish();
  const both = 'namespaceSelector=team=a And podSelector=app=web';
  const teams = 'namespaceSelector=team';
  t.same(ag(c, both)?.members, ['ns2/web@10.0.0.2']);
  t.same(ag(c, teams)?.members, ['ns2/db@10.0.1.2', 'ns2/web@10.0.0.2', 'ns3/db@10.0.1.3', 'ns3/web@10.0.0.3']);
  const events = recorder(c);
  c.handleNamespace('MODIFIED', ns('ns3', { team: 'a' }));
  c.handleNamespace('MODIFIED', ns('ns2', {}));
  c.flush();
  t.same(ag(c, both)?.members, ['ns3/web@10.0.0.3']);
  t.same(ag(c, teams)?.members, ['ns3/db@10.0.1.3', 'ns3/web@10.0.0.3']);
  t.same(events, [
    `AG MODIFIED ${G(both)} [node-ns1]->[node-ns1] +ns3/web@10.0.0.3 -ns2/web@10.0.0.2`,
    `AG MODIFIED ${G(teams)} [node-ns1]->[node-ns1] + -ns2/db@10.0.1.2,ns2/web@10.0.0.2`,
  ]);
  c.handleNamespace('DELETED', ns('ns3'));
  c.flush();
  t.same(ag(c, teams)?.members, [], 'a deleted namespace has no labels');
  t.end();
});

t.test('incremental events carry member deltas and span changes', (t) => {
  const c = controller();
  c.handlePod('ADDED', pod('ns1', 'db1', { app: 'db' }, { node: 'n1', ip: '10.0.0.1' }));
  c.handlePod('ADDED', pod('ns1', 'web1', { app: 'web' }, { node: 'n2', ip: '10.0.0.2' }));
  c.handleNetworkPolicy('ADDED', dbPolicy);
  c.flush();
  c.publish();
  const events = recorder(c);
  const atgName = G(DB);
  const agName = G(WEB);

  c.handlePod('ADDED', pod('ns1', 'db2', { app: 'db' }, { node: 'n3', ip: '10.0.0.3' }));
  c.flush();
  t.same(events.splice(0), [
    `ATG MODIFIED ${atgName} [n1]->[n1,n3] +n3:ns1/db2 -`,
    `NP MODIFIED uid-np-ns1-db [n1]->[n1,n3]`,
    `AG MODIFIED ${agName} [n1]->[n1,n3] + -`,
  ]);

  c.handlePod('MODIFIED', pod('ns1', 'db2', { app: 'web' }, { node: 'n3', ip: '10.0.0.3' }));
  c.flush();
  t.same(events.splice(0), [
    `ATG MODIFIED ${atgName} [n1,n3]->[n1] + -n3:ns1/db2`,
    `NP MODIFIED uid-np-ns1-db [n1,n3]->[n1]`,
    `AG MODIFIED ${agName} [n1,n3]->[n1] +ns1/db2@10.0.0.3 -`,
  ]);

  c.handlePod('MODIFIED', pod('ns1', 'web1', { app: 'web' }, { node: 'n2', ip: '10.0.0.9' }));
  c.flush();
  t.same(
    events.splice(0),
    [`AG MODIFIED ${agName} [n1]->[n1] +ns1/web1@10.0.0.9 -ns1/web1@10.0.0.2`],
    'an IP change is a member change',
  );

  c.handlePod('MODIFIED', { ...pod('ns1', 'web1', { app: 'web' }, { node: 'n2', ip: '10.0.0.9' }), kind: 'Pod' });
  c.handlePod('ADDED', pod('ns1', 'other', { app: 'other' }, { node: 'n2', ip: '10.0.0.10' }));
  c.flush();
  t.same(events.splice(0), [], 'changes nothing reads produce no event');

  c.handlePod('MODIFIED', pod('ns1', 'web1', { app: 'web' }, { node: 'n2', ip: '10.0.0.9', phase: 'Succeeded' }));
  c.handlePod('DELETED', pod('ns1', 'db1', { app: 'db' }, {}));
  c.flush();
  t.same(events.splice(0), [
    `ATG MODIFIED ${atgName} [n1]->[] + -n1:ns1/db1`,
    `NP MODIFIED uid-np-ns1-db [n1]->[]`,
    `AG MODIFIED ${agName} [n1]->[] + -ns1/web1@10.0.0.9`,
  ]);

  c.handlePod('ADDED', pod('ns1', 'db1', { app: 'db' }, { node: 'n1', ip: '10.0.0.1' }));
  c.handlePod('DELETED', pod('ns1', 'db1', { app: 'db' }, {}));
  c.flush();
  t.same(events.splice(0), [], 'an add and a delete in one round cancel out');
  t.end();
});

t.test('policy updates: same spec, new generation, new UID, logging annotation', (t) => {
  const c = controller();
  c.handlePod('ADDED', pod('ns1', 'db1', { app: 'db' }, { node: 'n1', ip: '10.0.0.1' }));
  c.handleNetworkPolicy('ADDED', dbPolicy);
  c.flush();
  c.publish();
  const events = recorder(c);
  c.handleNetworkPolicy('MODIFIED', { ...dbPolicy, metadata: { ...dbPolicy.metadata, labels: { x: 'y' } } });
  c.flush();
  t.same(events.splice(0), [], 'a metadata-only update changes nothing');
  c.handleNetworkPolicy('MODIFIED', { ...dbPolicy, metadata: { ...dbPolicy.metadata, generation: 2 } });
  c.flush();
  t.same(events.splice(0), ['NP MODIFIED uid-np-ns1-db [n1]->[n1]']);
  t.equal(c.networkPolicies.get('uid-np-ns1-db')?.object.metadata.generation, 2);

  c.handleNetworkPolicy('MODIFIED', { ...dbPolicy, metadata: { ...dbPolicy.metadata, uid: 'uid-2' } });
  c.flush();
  t.same(
    events.splice(0).map((e) => e.split(' ').slice(0, 3).join(' ')),
    ['NP DELETED uid-np-ns1-db', 'NP ADDED uid-2'],
    'a new UID under the same name replaces the policy',
  );

  c.handleNamespace(
    'MODIFIED',
    ns('ns1', {}, { metadata: { annotations: { 'networkpolicy.antrea.io/enable-logging': 'true' } } }),
  );
  c.flush();
  t.same(events.splice(0), ['NP MODIFIED uid-2 [n1]->[n1]']);
  t.same(
    c.networkPolicies.get('uid-2')?.object.rules.map((r) => r.enableLogging),
    [true],
  );
  c.handleNamespace('MODIFIED', ns('ns1'));
  c.flush();
  t.same(
    c.networkPolicies.get('uid-2')?.object.rules.map((r) => r.enableLogging),
    [undefined],
  );
  t.end();
});

t.test('invalid policies are logged; an invalid update keeps the previous version', (t) => {
  const log = memoryLogger('warn');
  const c = new NetworkPolicyController({ logger: log });
  c.handleNetworkPolicy('ADDED', dbPolicy);
  c.handleNetworkPolicy(
    'ADDED',
    np('ns1', 'bad', { podSelector: { matchExpressions: [{ key: 'a', operator: 'Nope' }] } }),
  );
  c.flush();
  c.publish();
  t.equal(c.networkPolicies.size, 1);
  c.handleNetworkPolicy('MODIFIED', { ...dbPolicy, spec: { podSelector: { matchLabels: { 'bad key': 'x' } } } });
  c.flush();
  t.equal(c.networkPolicies.get('uid-np-ns1-db')?.object.appliedToGroups[0], G(DB), 'previous version kept');
  t.match(log.lines, [
    { level: 'error', msg: 'invalid NetworkPolicy ignored', policy: 'ns1/bad' },
    { level: 'error', msg: 'invalid NetworkPolicy update ignored, keeping the previous version', policy: 'ns1/db' },
  ]);
  c.handleNetworkPolicy('MODIFIED', { ...dbPolicy, spec: { ...dbPolicy.spec, ingress: [{ from: [{}] }] } });
  c.flush();
  t.match(log.lines[2], {
    level: 'warn',
    msg: 'invalid part of a NetworkPolicy dropped',
    err: /spec.ingress\[0\].from\[0\]/,
  });
  t.end();
});

t.test('a deleted policy is held while its terminating namespace still has Pods', (t) => {
  const c = controller();
  c.handleNamespace('ADDED', ns('ns1'));
  c.handlePod('ADDED', pod('ns1', 'db1', { app: 'db' }, { node: 'n1', ip: '10.0.0.1' }));
  c.handlePod('ADDED', pod('ns1', 'db2', { app: 'db' }, { node: 'n2', ip: '10.0.0.2' }));
  c.handleNetworkPolicy('ADDED', dbPolicy);
  c.handleNetworkPolicy('ADDED', np('ns2', 'other', { podSelector: {} }));
  c.flush();
  c.publish();
  const events = recorder(c);
  c.handleNamespace(
    'MODIFIED',
    ns('ns1', {}, { metadata: { deletionTimestamp: '2026-01-01T00:00:00Z' }, status: { phase: 'Terminating' } }),
  );
  c.handleNetworkPolicy('DELETED', dbPolicy);
  c.flush();
  t.same(events, [], 'the namespace controller deleted the policy before the Pods: keep enforcing it');
  t.equal(c.stats().heldPolicies, 1);
  t.ok(c.networkPolicies.get('uid-np-ns1-db'));
  c.handlePod('DELETED', pod('ns1', 'db1'));
  c.flush();
  t.same(
    events.splice(0).map((e) => e.split(' ').slice(0, 2).join(' ')),
    ['ATG MODIFIED', 'NP MODIFIED', 'AG MODIFIED'],
  );
  c.handleNamespace('DELETED', ns('ns1'));
  c.handlePod('DELETED', pod('ns1', 'db2'));
  c.flush();
  t.same(
    events.splice(0).map((e) => e.split(' ').slice(0, 2).join(' ')),
    ['NP DELETED', 'ATG DELETED', 'AG DELETED'],
    'released with the last Pod',
  );
  t.equal(c.stats().heldPolicies, 0);
  c.handleNetworkPolicy('DELETED', np('ns2', 'other', {}));
  c.flush();
  t.equal(c.networkPolicies.size, 0, 'in a live namespace a deleted policy goes at once');
  t.end();
});

t.test('run() publishes nothing until every informer has synced, then processes changes', async (t) => {
  const c = controller();
  const events: string[] = [];
  c.networkPolicies.subscribe((e) => events.push(`${e.type} ${e.name}`));
  let syncA!: () => void;
  let syncB!: () => void;
  const synced = (set: (f: () => void) => void): Promise<void> => new Promise<void>((r) => set(r));
  const pa = synced((f) => (syncA = f));
  const pb = synced((f) => (syncB = f));
  let running = 0;
  const source = (p: Promise<void>): ControllerSource => ({
    run: async (signal) => {
      running++;
      await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
      running--;
    },
    waitSynced: () => p,
  });
  const ac = new AbortController();
  const done = c.run(ac.signal, [source(pa), source(pb)]);
  c.handlePod('ADDED', pod('ns1', 'db1', { app: 'db' }, { node: 'n1', ip: '10.0.0.1' }));
  c.handleNetworkPolicy('ADDED', dbPolicy);
  syncA();
  await new Promise((r) => setTimeout(r, 20));
  t.notOk(c.networkPolicies.ready, 'one informer is still listing');
  t.equal(c.networkPolicies.size, 0);
  syncB();
  await c.networkPolicies.waitReady();
  t.same(span(c, 'uid-np-ns1-db'), ['n1'], 'published complete');
  t.same(events, [], 'the initial state is read from the store, not streamed');
  c.handlePod('ADDED', pod('ns1', 'db2', { app: 'db' }, { node: 'n2', ip: '10.0.0.2' }));
  await c.whenIdle();
  t.same(events, ['MODIFIED uid-np-ns1-db']);
  t.same(span(c, 'uid-np-ns1-db'), ['n1', 'n2']);
  ac.abort();
  await done;
  t.equal(running, 0, 'informers stopped');
});

t.test('Nodes are recorded', (t) => {
  const c = controller();
  c.handleNode('ADDED', node('n1', { zone: 'a' }, '192.0.2.10'));
  c.handleNode('ADDED', node('n2'));
  c.handleNode('DELETED', node('n2'));
  t.same([...c.knownNodes().values()], [{ name: 'n1', labels: { zone: 'a' }, addresses: ['192.0.2.10'] }]);
  t.end();
});

t.test('a group released and reused before its deletion is processed is published', (t) => {
  const c = controller();
  c.handlePod('ADDED', pod('ns0', 'p0', {}, { node: 'n1', ip: '10.0.0.1' }));
  c.handleNetworkPolicy('ADDED', np('ns0', 'c', { podSelector: {} }));
  c.handleNetworkPolicy(
    'MODIFIED',
    np('ns0', 'c', { podSelector: { matchExpressions: [{ key: 'app', operator: 'Exists' }] } }),
  );
  // The run loop processes in slices: the released group is set aside for deletion...
  t.notOk(c.flush(Infinity, 1));
  // ...and another policy takes it before the slice that would delete it.
  c.handleNetworkPolicy('ADDED', np('ns0', 'a', { podSelector: {} }));
  c.flush();
  c.publish();
  t.same(atg(c, 'namespace=ns0 And podSelector='), { span: ['n1'], byNode: { n1: ['ns0/p0'] } });
  t.same(span(c, 'uid-np-ns0-a'), ['n1']);
  t.end();
});
