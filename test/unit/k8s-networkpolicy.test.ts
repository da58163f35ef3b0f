import t from 'tap';
import type { NetworkPolicyRule } from '../../src/common/apis/controlplane/types.ts';
import type { NetworkPolicySpec } from '../../src/common/k8s/objects.ts';
import { ValidationError } from '../../src/common/util/errors.ts';
import {
  EMPTY_PEER,
  MATCH_ALL_PEER,
  convertK8sNetworkPolicy,
} from '../../src/controller/networkpolicy/k8s-networkpolicy.ts';
import { np, sel } from './fixtures/k8s.ts';

/** Converts with group names equal to the normalized selectors, so the tests read what they check. */
function convert(spec: NetworkPolicySpec, enableLogging = false) {
  return convertK8sNetworkPolicy(np('ns1', 'p', spec, { uid: 'u-1', generation: 7 }), {
    nameOf: (s) => s.normalizedName,
    enableLogging,
  });
}

const allow = (r: Partial<NetworkPolicyRule> & Pick<NetworkPolicyRule, 'direction'>): NetworkPolicyRule => ({
  from: EMPTY_PEER,
  to: EMPTY_PEER,
  services: [],
  priority: -1,
  action: 'Allow',
  ...r,
});

const denyAll = (direction: 'In' | 'Out'): NetworkPolicyRule => ({
  direction,
  from: EMPTY_PEER,
  to: EMPTY_PEER,
  services: [],
  priority: 0,
});

t.test('the internal policy carries Antrea identity and no priorities for K8s policies', (t) => {
  const c = convert({ podSelector: sel({ app: 'db' }), policyTypes: ['Ingress'] });
  t.same(c.policy.metadata, { name: 'u-1', uid: 'u-1', generation: 7 });
  t.same(c.policy.sourceRef, { type: 'K8sNetworkPolicy', namespace: 'ns1', name: 'p', uid: 'u-1' });
  t.equal(c.policy.priority, undefined);
  t.equal(c.policy.tierPriority, undefined);
  t.same(c.policy.appliedToGroups, ['namespace=ns1 And podSelector=app=db']);
  t.same(
    c.appliedTo.map((s) => s.normalizedName),
    ['namespace=ns1 And podSelector=app=db'],
  );
  const all = convert({ podSelector: {}, policyTypes: ['Ingress'] });
  t.same(all.policy.appliedToGroups, ['namespace=ns1 And podSelector='], 'an empty podSelector selects the namespace');
  t.end();
});

t.test('peers: podSelector, namespaceSelector, both, and sharing', (t) => {
  const c = convert({
    podSelector: {},
    policyTypes: ['Ingress'],
    ingress: [
      {
        from: [
          { podSelector: sel({ app: 'web' }) },
          { namespaceSelector: sel({ team: 'a' }) },
          { namespaceSelector: sel({ team: 'a' }), podSelector: sel({ app: 'web' }) },
          { namespaceSelector: {}, podSelector: sel({ app: 'web' }) },
          { namespaceSelector: {} },
          { podSelector: sel({ app: 'web' }) },
        ],
      },
    ],
  });
  const expected = [
    'namespace=ns1 And podSelector=app=web',
    'namespaceSelector=team=a',
    'namespaceSelector=team=a And podSelector=app=web',
    'namespaceSelector= And podSelector=app=web',
    'namespaceSelector=',
  ];
  t.same(c.policy.rules, [allow({ direction: 'In', from: { addressGroups: expected, ipBlocks: [] } })]);
  t.same(
    c.addressGroups.map((s) => s.normalizedName),
    expected,
    'each distinct selector once',
  );
  t.same(c.problems, []);
  t.end();
});

t.test('ipBlock with except is carried, network addresses normalized', (t) => {
  const c = convert({
    podSelector: {},
    policyTypes: ['Egress'],
    egress: [
      {
        to: [
          { ipBlock: { cidr: '10.1.2.3/16', except: ['10.1.128.0/17', '10.1.0.0/24'] } },
          { ipBlock: { cidr: '2001:db8::1/64' } },
        ],
      },
    ],
  });
  t.same(c.policy.rules, [
    allow({
      direction: 'Out',
      to: {
        addressGroups: [],
        ipBlocks: [
          {
            cidr: { ip: '10.1.0.0', prefixLength: 16 },
            except: [
              { ip: '10.1.128.0', prefixLength: 17 },
              { ip: '10.1.0.0', prefixLength: 24 },
            ],
          },
          { cidr: { ip: '2001:db8::', prefixLength: 64 }, except: [] },
        ],
      },
    }),
  ]);
  t.end();
});

t.test('ports: protocols, default TCP, named ports and endPort', (t) => {
  const c = convert({
    podSelector: {},
    policyTypes: ['Ingress'],
    ingress: [
      {
        ports: [
          { port: 80 },
          { protocol: 'UDP', port: 53 },
          { protocol: 'SCTP', port: 9000, endPort: 9010 },
          { protocol: 'TCP', port: 'http' },
          { protocol: 'UDP' },
        ],
      },
    ],
  });
  t.same(c.policy.rules[0]?.services, [
    { protocol: 'TCP', port: 80 },
    { protocol: 'UDP', port: 53 },
    { protocol: 'SCTP', port: 9000, endPort: 9010 },
    { protocol: 'TCP', port: 'http' },
    { protocol: 'UDP' },
  ]);
  t.same(c.policy.rules[0]?.from, MATCH_ALL_PEER, 'no from: every source');
  t.end();
});

t.test('policyTypes and default isolation per direction', (t) => {
  t.same(convert({ podSelector: {}, policyTypes: ['Ingress'] }).policy.rules, [denyAll('In')], 'deny all ingress');
  t.same(convert({ podSelector: {}, policyTypes: ['Egress'] }).policy.rules, [denyAll('Out')], 'deny all egress');
  t.same(
    convert({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] }).policy.rules,
    [denyAll('In'), denyAll('Out')],
    'deny all both ways',
  );
  t.same(
    convert({ podSelector: {}, policyTypes: ['Ingress', 'Egress'], ingress: [{}] }).policy.rules,
    [allow({ direction: 'In', from: MATCH_ALL_PEER }), denyAll('Out')],
    'ingress allowed, egress isolated',
  );
  t.same(
    convert({ podSelector: {}, ingress: [], egress: [] }).policy.rules,
    [denyAll('In')],
    'without policyTypes: Ingress only when there are no egress rules',
  );
  t.same(
    convert({ podSelector: {}, egress: [{}] }).policy.rules,
    [allow({ direction: 'Out', to: MATCH_ALL_PEER }), denyAll('In')],
    'without policyTypes: Ingress and Egress when there are egress rules',
  );
  t.same(
    convert({ podSelector: {}, policyTypes: ['Egress'], ingress: [{}] }).policy.rules,
    [denyAll('Out')],
    'rules of a direction not in policyTypes are ignored',
  );
  t.end();
});

t.test('empty peers and empty rule lists', (t) => {
  t.same(
    convert({ podSelector: {}, policyTypes: ['Ingress'], ingress: [{ from: [] }] }).policy.rules,
    [allow({ direction: 'In', from: MATCH_ALL_PEER })],
    'an empty from allows every source',
  );
  t.same(MATCH_ALL_PEER.ipBlocks, [
    { cidr: { ip: '0.0.0.0', prefixLength: 0 }, except: [] },
    { cidr: { ip: '::', prefixLength: 0 }, except: [] },
  ]);
  const named = convert({ podSelector: {}, policyTypes: ['Egress'], egress: [{ ports: [{ port: 'dns' }] }] });
  t.same(
    named.policy.rules[0]?.to,
    { addressGroups: ['namespaceSelector='], ipBlocks: MATCH_ALL_PEER.ipBlocks },
    'egress to anywhere on a named port also gets the all-Pods group to resolve the name',
  );
  t.same(
    named.addressGroups.map((s) => s.normalizedName),
    ['namespaceSelector='],
  );
  const numbered = convert({ podSelector: {}, policyTypes: ['Egress'], egress: [{ ports: [{ port: 53 }] }] });
  t.same(numbered.policy.rules[0]?.to, MATCH_ALL_PEER, 'no group is needed for numbered ports');
  const namedIngress = convert({ podSelector: {}, policyTypes: ['Ingress'], ingress: [{ ports: [{ port: 'dns' }] }] });
  t.same(namedIngress.policy.rules[0]?.from, MATCH_ALL_PEER, 'ingress named ports resolve on the applied-to side');
  t.end();
});

t.test('namespace logging annotation turns on logging for every rule', (t) => {
  const c = convert({ podSelector: {}, policyTypes: ['Ingress', 'Egress'], ingress: [{}] }, true);
  t.same(
    c.policy.rules.map((r) => r.enableLogging),
    [true, true],
  );
  t.end();
});

t.test('invalid parts fail closed and name their field', (t) => {
  const fields = (c: ReturnType<typeof convert>): string[] =>
    c.problems.map((p) => (p instanceof ValidationError ? p.field : '?'));
  const badCidr = convert({
    podSelector: {},
    policyTypes: ['Ingress'],
    ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/33' } }, { podSelector: sel({ a: 'b' }) }] }],
  });
  t.same(fields(badCidr), ['spec.ingress[0].from[0].ipBlock.cidr']);
  t.same(badCidr.policy.rules[0]?.from, { addressGroups: ['namespace=ns1 And podSelector=a=b'], ipBlocks: [] });

  const onlyBad = convert({
    podSelector: {},
    policyTypes: ['Ingress'],
    ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['11.0.0.0/16'] } }] }],
  });
  t.same(fields(onlyBad), ['spec.ingress[0].from[0].ipBlock.except[0]']);
  t.same(onlyBad.policy.rules, [allow({ direction: 'In', from: EMPTY_PEER })], 'matches nothing but still isolates');

  const sameSize = convert({
    podSelector: {},
    policyTypes: ['Ingress'],
    ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.0.0.0/8'] } }] }],
  });
  t.same(fields(sameSize), ['spec.ingress[0].from[0].ipBlock.except[0]'], 'an except must be strictly smaller');

  const emptyPeer = convert({ podSelector: {}, policyTypes: ['Ingress'], ingress: [{ from: [{}] }] });
  t.same(fields(emptyPeer), ['spec.ingress[0].from[0]']);
  t.same(emptyPeer.policy.rules[0]?.from, EMPTY_PEER, 'a peer list of only invalid peers matches nothing');

  const mixed = convert({
    podSelector: {},
    policyTypes: ['Ingress'],
    ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }] }],
  });
  t.same(fields(mixed), ['spec.ingress[0].from[0]']);

  const badSelector = convert({
    podSelector: {},
    policyTypes: ['Ingress'],
    ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'a', operator: 'In', values: [] }] } }] }],
  });
  t.same(fields(badSelector), ['spec.ingress[0].from[0].podSelector.matchExpressions[0].values']);
  t.same(badSelector.policy.rules[0]?.from, EMPTY_PEER);

  const badPorts = convert({
    podSelector: {},
    policyTypes: ['Ingress'],
    ingress: [
      {
        ports: [
          { protocol: 'ICMP', port: 1 },
          { port: 70000 },
          { port: 'Not_A_Name' },
          { port: 'http', endPort: 90 },
          { endPort: 90 },
          { port: 100, endPort: 90 },
        ],
      },
    ],
  });
  t.same(fields(badPorts), [
    'spec.ingress[0].ports[0].protocol',
    'spec.ingress[0].ports[1].port',
    'spec.ingress[0].ports[2].port',
    'spec.ingress[0].ports[3].endPort',
    'spec.ingress[0].ports[4].endPort',
    'spec.ingress[0].ports[5].endPort',
  ]);
  t.same(
    badPorts.policy.rules,
    [allow({ direction: 'In', from: EMPTY_PEER })],
    'a rule whose every port is invalid matches nothing (not every port)',
  );

  const badType = convert({ podSelector: {}, policyTypes: ['Ingress', 'Sideways'] });
  t.same(fields(badType), ['spec.policyTypes[1]']);

  const throwsField = (f: () => unknown, field: string): void => {
    try {
      f();
      t.fail(`expected an error for ${field}`);
    } catch (err) {
      t.ok(err instanceof ValidationError);
      t.equal((err as ValidationError).field, field);
    }
  };
  throwsField(
    () => convert({ podSelector: { matchExpressions: [{ key: 'x', operator: 'Bad' }] } }),
    'spec.podSelector.matchExpressions[0].operator',
  );
  throwsField(
    () =>
      convertK8sNetworkPolicy({ metadata: { name: 'x', namespace: 'y' } }, { nameOf: () => '', enableLogging: false }),
    'metadata.uid',
  );
  throwsField(
    () => convertK8sNetworkPolicy({ metadata: { name: 'x', uid: 'u' } }, { nameOf: () => '', enableLogging: false }),
    'metadata.namespace',
  );
  t.end();
});
