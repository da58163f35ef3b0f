import t from 'tap';
import { NetworkPolicyController, groupName } from '../../src/controller/networkpolicy/controller.ts';
import type { StoreEvent } from '../../src/controller/networkpolicy/store.ts';
import {
  addressGroupWatchEvent,
  affectedNodes,
  appliedToGroupWatchEvent,
  networkPolicyWatchEvent,
} from '../../src/controller/networkpolicy/watch-events.ts';
import { np, pod, sel } from './fixtures/k8s.ts';

/** What each watcher (a Node, or everything) receives for the next processed changes. */
function watch(c: NetworkPolicyController, watchers: (string | undefined)[]): Map<string, unknown[]> {
  const got = new Map<string, unknown[]>(watchers.map((w) => [w ?? '*', []]));
  const push = (e: StoreEvent): void => {
    const affected = affectedNodes(e);
    for (const w of watchers) {
      if (w !== undefined && !affected.has(w)) continue;
      const ev =
        e.kind === 'NetworkPolicy'
          ? networkPolicyWatchEvent(e, w)
          : e.kind === 'AddressGroup'
            ? addressGroupWatchEvent(e, w)
            : appliedToGroupWatchEvent(e, w);
      if (ev !== undefined) got.get(w ?? '*')?.push({ kind: e.kind, ...ev });
    }
  };
  c.networkPolicies.subscribe(push);
  c.addressGroups.subscribe(push);
  c.appliedToGroups.subscribe(push);
  return got;
}

const ATG = groupName('namespace=ns1 And podSelector=app=db');
const AG = groupName('namespace=ns1 And podSelector=app=web');
const policy = np('ns1', 'p', {
  podSelector: sel({ app: 'db' }),
  policyTypes: ['Ingress'],
  ingress: [{ from: [{ podSelector: sel({ app: 'web' }) }] }],
});

t.test('per-Node watch events follow span transitions', (t) => {
  const c = new NetworkPolicyController();
  c.handlePod('ADDED', pod('ns1', 'db1', { app: 'db' }, { node: 'n1', ip: '10.0.0.1' }));
  c.handlePod('ADDED', pod('ns1', 'web1', { app: 'web' }, { node: 'n3', ip: '10.0.0.3' }));
  c.handleNetworkPolicy('ADDED', policy);
  c.flush();
  c.publish();
  const got = watch(c, ['n1', 'n2', 'n3', undefined]);

  // db2 on n2: n2 enters every span; n1 gets the AppliedToGroup patch only for its own Node (none).
  c.handlePod('ADDED', pod('ns1', 'db2', { app: 'db' }, { node: 'n2', ip: '10.0.0.2' }));
  c.flush();
  const p = c.networkPolicies.get('uid-np-ns1-p')?.object;
  t.same(got.get('n1'), [], 'n1: nothing new for it (span-only policy change, no member on n1 changed)');
  t.same(got.get('n2'), [
    {
      kind: 'AppliedToGroup',
      type: 'ADDED',
      object: { metadata: { name: ATG, uid: ATG }, groupMembers: [{ pod: { name: 'db2', namespace: 'ns1' } }] },
    },
    { kind: 'NetworkPolicy', type: 'ADDED', object: p },
    {
      kind: 'AddressGroup',
      type: 'ADDED',
      object: {
        metadata: { name: AG, uid: AG },
        groupMembers: [{ pod: { name: 'web1', namespace: 'ns1' }, ips: ['10.0.0.3'] }],
      },
    },
  ]);
  t.same(got.get('n3'), [], 'n3 runs no applied-to Pod');
  t.same(got.get('*'), [
    {
      kind: 'AppliedToGroup',
      type: 'MODIFIED',
      object: {
        metadata: { name: ATG, uid: ATG },
        addedGroupMembers: [{ pod: { name: 'db2', namespace: 'ns1' } }],
        removedGroupMembers: [],
      },
    },
  ]);
  for (const v of got.values()) v.length = 0;

  // web2 joins the AddressGroup: every Node of its span gets the same patch.
  c.handlePod('ADDED', pod('ns1', 'web2', { app: 'web' }, { node: 'n3', ip: '10.0.0.4' }));
  c.flush();
  const patch = {
    kind: 'AddressGroup',
    type: 'MODIFIED',
    object: {
      metadata: { name: AG, uid: AG },
      addedGroupMembers: [{ pod: { name: 'web2', namespace: 'ns1' }, ips: ['10.0.0.4'] }],
      removedGroupMembers: [],
    },
  };
  t.same(got.get('n1'), [patch]);
  t.same(got.get('n2'), [patch]);
  t.same(got.get('n3'), []);
  for (const v of got.values()) v.length = 0;

  // Deleting the policy: every Node of its span gets DELETED bodies (metadata only).
  c.handleNetworkPolicy('DELETED', policy);
  c.flush();
  t.same(got.get('n1'), [
    {
      kind: 'NetworkPolicy',
      type: 'DELETED',
      object: { metadata: p?.metadata, rules: [], appliedToGroups: [], sourceRef: p?.sourceRef },
    },
    { kind: 'AppliedToGroup', type: 'DELETED', object: { metadata: { name: ATG, uid: ATG }, groupMembers: [] } },
    { kind: 'AddressGroup', type: 'DELETED', object: { metadata: { name: AG, uid: AG }, groupMembers: [] } },
  ]);
  t.same(got.get('n3'), []);
  t.equal(got.get('*')?.length, 3, 'an unfiltered watcher sees every deletion');
  t.end();
});
