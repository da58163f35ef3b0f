/**
 * The agent's NetworkPolicy pieces without a switch: port ranges as masks and ipBlocks minus their
 * excepts (property tests), the rule cache, and the controller + reconciler against a recording
 * flow sink (the real flow store): the flows of a policy as canonical ovs-ofctl text (golden), match
 * flows shared between rules, named ports resolved per Pod, isolation, one bundle per update, the
 * initial-realization gate, status reports, failure and retry, and removal leaving nothing behind.
 * The same flows run on a real OVS with real packets in test/integration/networkpolicy.test.ts.
 */
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  AddressGroup,
  AppliedToGroup,
  GroupMember,
  NetworkPolicy,
  NetworkPolicyRule,
} from '../../src/common/apis/controlplane/types.ts';
import { cidrMinus } from '../../src/common/agent/networkpolicy/addresses.ts';
import { FilePolicySource, parsePolicyFile } from '../../src/common/agent/networkpolicy/file-source.ts';
import { RuleCache } from '../../src/common/agent/networkpolicy/cache.ts';
import { NetworkPolicyController, type RealizationReport } from '../../src/common/agent/networkpolicy/controller.ts';
import type { PolicyFlowSink } from '../../src/common/agent/networkpolicy/reconciler.ts';
import { portMatches, portRangeToMasks } from '../../src/common/agent/networkpolicy/ports.ts';
import { CookieAllocator } from '../../src/common/agent/openflow/cookie.ts';
import { RealizedPipeline } from '../../src/common/agent/openflow/framework.ts';
import { NetworkPolicyFeature } from '../../src/common/agent/openflow/network-policy.ts';
import { PodConnectivityFeature } from '../../src/common/agent/openflow/pod-connectivity.ts';
import { OfStore, type PlanBuilder } from '../../src/common/agent/openflow/store.ts';
import type { FlowStats } from '../../src/common/ovs/openflow/flow.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { matchesGolden } from '../helpers/golden.ts';

const GOLDEN = join(import.meta.dirname, 'golden', 'network-policy');

function golden(t: Test, name: string, text: string): void {
  matchesGolden(t, join(GOLDEN, name), text);
}

// ---- pure functions ------------------------------------------------------------------------------

t.test('port ranges: every port in the range matches exactly one mask, none outside', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }), (a, b) => {
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      const masks = portRangeToMasks(lo, hi);
      // Probe the edges, around them and random points; checking all 65536 ports for a few ranges below.
      const probes = [0, lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, 65535, (lo + hi) >> 1].filter(
        (p) => p >= 0 && p <= 65535,
      );
      for (const p of probes) {
        const n = masks.filter((m) => portMatches(m, p)).length;
        if (n !== (p >= lo && p <= hi ? 1 : 0)) return false;
      }
      return masks.length <= 32;
    }),
    { numRuns: 2000 },
  );
  for (const [lo, hi] of [
    [0, 65535],
    [1, 65534],
    [8000, 8010],
    [1024, 2047],
    [33, 33],
  ] as const) {
    const masks = portRangeToMasks(lo, hi);
    let ok = true;
    for (let p = 0; p <= 65535; p++) {
      const n = masks.filter((m) => portMatches(m, p)).length;
      if (n !== (p >= lo && p <= hi ? 1 : 0)) ok = false;
    }
    t.ok(ok, `[${lo}, ${hi}] exhaustively (${masks.length} masks)`);
  }
  t.same(portRangeToMasks(0, 65535), [{ value: 0, mask: 0 }]);
  t.same(portRangeToMasks(8000, 8010), [
    { value: 8000, mask: 0xfff8 },
    { value: 8008, mask: 0xfffe },
    { value: 8010, mask: 0xffff },
  ]);
  t.throws(() => portRangeToMasks(10, 5), { code: 'INVALID_ARGUMENT', field: 'end' }, 'names the field');
  t.throws(() => portRangeToMasks(-1, 5), { code: 'INVALID_ARGUMENT', field: 'start' }, 'names the field');
  t.throws(() => portRangeToMasks(1, 70000), { code: 'INVALID_ARGUMENT', field: 'end' }, 'names the field');
  t.end();
});

t.test('ipBlock minus excepts: disjoint CIDRs covering exactly the difference', (t) => {
  const toNum = (ip: string): number => ip.split('.').reduce((a, x) => a * 256 + Number(x), 0);
  const inCidr = (n: number, cidr: string): boolean => {
    const [ip = '', len = '32'] = cidr.split('/');
    const size = 2 ** (32 - Number(len));
    const base = toNum(ip);
    return n >= base && n < base + size;
  };
  const octet = fc.integer({ min: 0, max: 255 });
  fc.assert(
    fc.property(
      fc.integer({ min: 16, max: 30 }),
      fc.array(fc.tuple(octet, octet, fc.integer({ min: 16, max: 32 })), { maxLength: 4 }),
      fc.array(fc.tuple(octet, octet), { minLength: 20, maxLength: 20 }),
      (len, excepts, probes) => {
        const cidr = `10.20.0.0/${len}`;
        const ex = excepts.map(([a, b, l]) => `10.20.${a}.${b}/${l}`);
        const out = cidrMinus(cidr, ex);
        for (const [a, b] of probes) {
          const n = toNum(`10.20.${a}.${b}`);
          const want = inCidr(n, cidr) && !ex.some((e) => inCidr(n, canonical(e)));
          const got = out.filter((c) => inCidr(n, c)).length;
          if (got !== (want ? 1 : 0)) return false;
        }
        return true;
      },
    ),
    { numRuns: 500 },
  );
  t.same(cidrMinus('10.20.0.0/16', ['10.20.1.0/24']), [
    '10.20.0.0/24',
    '10.20.2.0/23',
    '10.20.4.0/22',
    '10.20.8.0/21',
    '10.20.16.0/20',
    '10.20.32.0/19',
    '10.20.64.0/18',
    '10.20.128.0/17',
  ]);
  t.same(cidrMinus('10.20.0.0/16', ['10.0.0.0/8']), []);
  t.same(cidrMinus('10.20.0.0/16', ['192.168.0.0/16']), ['10.20.0.0/16']);
  t.throws(
    () => cidrMinus('10.20.0.0/16', ['nonsense']),
    { code: 'INVALID_ARGUMENT', field: 'ipBlock.except[0]' },
    'names the field',
  );
  t.end();
});

/** A CIDR with its host bits cleared. */
function canonical(cidr: string): string {
  const [ip = '', len = '32'] = cidr.split('/');
  const n = ip.split('.').reduce((a, x) => a * 256 + Number(x), 0);
  const size = 2 ** (32 - Number(len));
  const base = n - (n % size);
  return `${[base >>> 24, (base >>> 16) & 255, (base >>> 8) & 255, base & 255].join('.')}/${len}`;
}

// ---- fixtures ------------------------------------------------------------------------------------

const pod = (namespace: string, name: string, ips: string[], ports?: GroupMember['ports']): GroupMember => ({
  pod: { namespace, name },
  ips,
  ...(ports === undefined ? {} : { ports }),
});

function policy(name: string, rules: NetworkPolicyRule[], appliedTo: string[], generation = 1): NetworkPolicy {
  return {
    metadata: { name, uid: name, generation },
    rules,
    appliedToGroups: appliedTo,
    sourceRef: { type: 'K8sNetworkPolicy', namespace: 'ns', name, uid: name },
  };
}
const EMPTY = { addressGroups: [], ipBlocks: [] };
const ingress = (
  from: Partial<NetworkPolicyRule['from']>,
  services: NetworkPolicyRule['services'] = [],
): NetworkPolicyRule => ({
  direction: 'In',
  from: { ...EMPTY, ...from },
  to: EMPTY,
  services,
  priority: -1,
  action: 'Allow',
});
const egress = (
  to: Partial<NetworkPolicyRule['to']>,
  services: NetworkPolicyRule['services'] = [],
): NetworkPolicyRule => ({
  direction: 'Out',
  from: EMPTY,
  to: { ...EMPTY, ...to },
  services,
  priority: -1,
  action: 'Allow',
});
const group = (name: string, members: GroupMember[]): AddressGroup & AppliedToGroup => ({
  metadata: { name },
  groupMembers: members,
});

class RecordingSink implements PolicyFlowSink {
  readonly pipeline: RealizedPipeline;
  readonly store = new OfStore();
  bundles = 0;
  fail = false;
  constructor(pipeline: RealizedPipeline) {
    this.pipeline = pipeline;
  }
  change(build: (b: PlanBuilder) => void): Promise<void> {
    const plan = this.store.plan(build);
    if (this.fail) return Promise.reject(new Error('the switch is gone'));
    if (plan.ops.length > 0) this.bundles++;
    plan.commit();
    return Promise.resolve();
  }
  dumpFlowsFiltered(filter: { table?: number }): Promise<FlowStats[]> {
    return Promise.resolve(
      this.store
        .allFlows()
        .filter((f) => filter.table === undefined || f.table === filter.table)
        .map((flow) => ({ flow, packetCount: 3n, byteCount: 300n, durationSec: 0, durationNsec: 0 })),
    );
  }
  text(): string {
    return this.store.allFlows().map(String).sort().join('\n') + '\n';
  }
}

function setup(round = 2): {
  c: NetworkPolicyController;
  sink: RecordingSink;
  reports: RealizationReport[];
  clock: FakeClock;
} {
  const cookies = new CookieAllocator(round);
  const np = new NetworkPolicyFeature({ cookies, gatewayIPs: ['10.10.1.1'] });
  const pc = new PodConnectivityFeature({
    cookies,
    gateway: { ofport: 32769, mac: '0a:00:00:00:00:01', ips: ['10.10.1.1'] },
    tunnel: { ofport: 32768 },
    podCIDRs: ['10.10.1.0/24'],
  });
  const sink = new RecordingSink(new RealizedPipeline([pc, np]));
  const reports: RealizationReport[] = [];
  const clock = new FakeClock();
  const c = new NetworkPolicyController({
    sink,
    feature: np,
    clock,
    status: { report: (r) => reports.push(r), forget: () => undefined },
  });
  c.pods.set('ns', 'web', 'web-1', { ofport: 5, ips: ['10.10.1.5'] });
  c.pods.set('ns', 'api', 'api-1', { ofport: 6, ips: ['10.10.1.6'] });
  return { c, sink, reports, clock };
}

// ---- controller + reconciler ---------------------------------------------------------------------

t.test('the NetworkPolicy tables and initial flows', (t) => {
  const { sink } = setup();
  const p = sink.pipeline;
  const np = p.features[1] as NetworkPolicyFeature;
  golden(t, 'initial.txt', np.initialFlows(p).map(String).join('\n') + '\n');
  t.same(
    p
      .tableNames()
      .map((x) => x.name)
      .filter((n) => /Rule|Metric|Security/.test(n)),
    [
      'EgressRule',
      'EgressDefaultRule',
      'EgressMetric',
      'IngressSecurityClassifier',
      'IngressRule',
      'IngressDefaultRule',
      'IngressMetric',
    ],
  );
  t.end();
});

t.test('nothing is enforced before every resource had its initial set; then one bundle', async (t) => {
  const { c, sink } = setup();
  const pol = policy('p1', [ingress({ addressGroups: ['ag1'] }, [{ protocol: 'TCP', port: 80 }])], ['atg1']);
  await c.replace('networkpolicies', [pol], 'controller');
  await c.replace('addressgroups', [group('ag1', [pod('ns', 'client', ['10.10.2.3'])])], 'controller');
  t.equal(sink.bundles, 0);
  t.notOk(c.initialRealized);
  await c.replace('appliedtogroups', [group('atg1', [pod('ns', 'web', ['10.10.1.5'])])], 'controller');
  t.ok(c.initialRealized);
  t.equal(sink.bundles, 1, 'one bundle for the initial set');
  t.equal(c.summary().ofRules, 1);
  t.end();
});

t.test(
  'a policy as flows: ipBlock with except, port range, named port per Pod, isolation, shared matches',
  async (t) => {
    const { c, sink, reports } = setup();
    const p1 = policy(
      'p1',
      [
        ingress(
          {
            addressGroups: ['ag1'],
            ipBlocks: [
              { cidr: { ip: '10.20.0.0', prefixLength: 22 }, except: [{ ip: '10.20.1.0', prefixLength: 24 }] },
            ],
          },
          [
            { protocol: 'TCP', port: 8000, endPort: 8010 },
            { protocol: 'TCP', port: 'http' },
          ],
        ),
        egress({ addressGroups: ['ag1'] }, [{ protocol: 'UDP', port: 53 }]),
      ],
      ['atg1'],
    );
    const p2 = policy('p2', [ingress({ addressGroups: ['ag1'] })], ['atg2']);
    const deny = policy('deny', [{ direction: 'In', from: EMPTY, to: EMPTY, services: [], priority: 0 }], ['atg2']);
    await c.replace('networkpolicies', [p1, p2, deny], 'controller');
    await c.replace(
      'addressgroups',
      [group('ag1', [pod('ns', 'client', ['10.10.2.3']), pod('ns', 'db', ['10.10.1.7'])])],
      'controller',
    );
    await c.replace(
      'appliedtogroups',
      [
        group('atg1', [
          pod('ns', 'web', ['10.10.1.5'], [{ name: 'http', port: 8080, protocol: 'TCP' }]),
          pod('ns', 'api', ['10.10.1.6'], [{ name: 'http', port: 9090, protocol: 'TCP' }]),
          pod('ns', 'remote', ['10.10.3.9']),
        ]),
        group('atg2', [pod('ns', 'web', ['10.10.1.5'])]),
      ],
      'controller',
    );
    golden(t, 'policies.txt', sink.text());
    t.equal(sink.bundles, 1);
    t.same(reports.map((r) => r.policy).sort(), ['deny', 'p1', 'p2'], 'each policy reported realized');
    // 10.10.2.3 is a peer of p1's ingress rule (two services sets → two conj ids) and of p2's rule:
    // one shared match flow with three conjunction actions.
    const shared = sink.store
      .allFlows()
      .map(String)
      .filter(
        (f) =>
          (f.includes('nw_src=10.10.2.3') && f.includes('IngressRule')) ||
          (f.includes('nw_src=10.10.2.3') && f.includes('conjunction')),
      );
    t.equal(shared.length, 1, 'one match flow per address');
    t.equal((shared[0]?.match(/conjunction\(/g) ?? []).length, 3, 'shared by three OpenFlow rules');

    // Stats by rule.
    const stats = await c.ruleStats();
    t.equal(stats.length, 4);
    t.ok(stats.every((s) => s.packets === 6 && s.bytes === 600 && s.sessions === 3 && s.policy !== ''));

    // Deleting p2 keeps the shared flow for p1; deleting everything leaves nothing.
    await c.event({ resource: 'networkpolicies', type: 'DELETED', object: p2 });
    const after = sink.store
      .allFlows()
      .map(String)
      .filter((f) => f.includes('nw_src=10.10.2.3') && f.includes('conjunction'));
    t.equal((after[0]?.match(/conjunction\(/g) ?? []).length, 2);
    t.match(
      sink.text(),
      /IngressDefaultRule.*reg1=0x5 actions=drop|reg1=0x5 actions=drop/,
      'web still isolated by p1 and deny',
    );
    await c.replace('networkpolicies', [], 'controller');
    t.equal(sink.store.flowCount, 0, 'no policy flow left');
    t.end();
  },
);

t.test('group patches and Pod changes update only what changed, each in one bundle', async (t) => {
  const { c, sink } = setup();
  const pol = policy('p1', [ingress({ addressGroups: ['ag1'] }, [{ protocol: 'TCP', port: 80 }])], ['atg1']);
  await c.replace('networkpolicies', [pol], 'controller');
  await c.replace('addressgroups', [group('ag1', [pod('ns', 'client', ['10.10.2.3'])])], 'controller');
  await c.replace(
    'appliedtogroups',
    [group('atg1', [pod('ns', 'web', ['10.10.1.5']), pod('ns', 'new', ['10.10.1.9'])])],
    'controller',
  );
  const b0 = sink.bundles;
  await c.event({
    resource: 'addressgroups',
    type: 'MODIFIED',
    object: {
      metadata: { name: 'ag1' },
      addedGroupMembers: [pod('ns', 'c2', ['10.10.2.4'])],
      removedGroupMembers: [pod('ns', 'client', ['10.10.2.3'])],
    },
  });
  t.equal(sink.bundles, b0 + 1);
  const text = sink.text();
  t.match(text, /nw_src=10\.10\.2\.4 actions=conjunction/);
  t.notMatch(text, /10\.10\.2\.3/);
  // A Pod of the group arrives on this Node: it is isolated and selected.
  await c.podAdded('ns', 'new', 'new-1', { ofport: 9, ips: ['10.10.1.9'] });
  t.equal(sink.bundles, b0 + 2);
  t.match(sink.text(), /reg1=0x9 actions=drop/);
  t.match(sink.text(), /reg1=0x9 actions=conjunction/);
  await c.podRemoved('ns', 'new', 'new-1');
  t.notMatch(sink.text(), /reg1=0x9/);
  // An unknown Pod changes nothing.
  await c.podRemoved('ns', 'ghost', 'ghost-1');
  t.equal(sink.bundles, b0 + 3);
  t.end();
});

t.test('a failed realization records nothing, is reported and retried', async (t) => {
  const { c, sink, reports, clock } = setup();
  await c.replace('networkpolicies', [policy('p1', [ingress({ addressGroups: ['ag1'] })], ['atg1'])], 'snapshot');
  await c.replace('addressgroups', [group('ag1', [pod('ns', 'client', ['10.10.2.3'])])], 'snapshot');
  sink.fail = true;
  await c.replace('appliedtogroups', [group('atg1', [pod('ns', 'web', ['10.10.1.5'])])], 'snapshot');
  t.notOk(c.initialRealized, 'not realized while the switch fails');
  t.equal(sink.store.flowCount, 0);
  t.match(reports.at(-1), { policy: 'p1', failure: /switch is gone/ });
  sink.fail = false;
  clock.advance(1000);
  await c.waitInitialRealized();
  t.ok(sink.store.flowCount > 0, 'retried and realized');
  t.equal(c.summary().source, 'snapshot');
  t.same(reports.at(-1), { policy: 'p1', generation: 1 });
  t.end();
});

t.test('a rule waits for a group that has not arrived; conj ids differ between rounds', async (t) => {
  const { c, sink } = setup(3);
  await c.replace('networkpolicies', [policy('p1', [ingress({ addressGroups: ['missing'] })], ['atg1'])], 'controller');
  await c.replace('addressgroups', [], 'controller');
  await c.replace('appliedtogroups', [group('atg1', [pod('ns', 'web', ['10.10.1.5'])])], 'controller');
  t.ok(c.initialRealized);
  t.equal(sink.store.flowCount, 0, 'nothing until the group arrives');
  await c.event({
    resource: 'addressgroups',
    type: 'ADDED',
    object: group('missing', [pod('ns', 'x', ['10.10.2.8'])]),
  });
  const ids = c.conjIdsOfPolicy('p1');
  t.equal(ids.length, 1);
  t.ok((ids[0] ?? 0) >= 0x80000000, 'odd rounds use the upper half of the conj id space');
  const even = setup(2);
  await even.c.replace('networkpolicies', [policy('p1', [ingress({ addressGroups: ['g'] })], ['atg1'])], 'controller');
  await even.c.replace('addressgroups', [group('g', [pod('ns', 'x', ['10.10.2.8'])])], 'controller');
  await even.c.replace('appliedtogroups', [group('atg1', [pod('ns', 'web', ['10.10.1.5'])])], 'controller');
  t.ok((even.c.conjIdsOfPolicy('p1')[0] ?? 0) < 0x80000000);
  t.end();
});

t.test('Antrea-native rules are never enforced as allows; their policy reports a failure', async (t) => {
  const { c, sink, reports } = setup();
  const drop: NetworkPolicy = {
    ...policy('acnp', [{ ...ingress({ addressGroups: ['ag1'] }), action: 'Drop', priority: 0 }], ['atg1']),
    tierPriority: 250,
    priority: 1,
  };
  await c.replace('networkpolicies', [drop], 'controller');
  await c.replace('addressgroups', [group('ag1', [pod('ns', 'client', ['10.10.2.3'])])], 'controller');
  await c.replace('appliedtogroups', [group('atg1', [pod('ns', 'web', ['10.10.1.5'])])], 'controller');
  t.ok(c.initialRealized);
  t.equal(sink.store.flowCount, 0, 'no flow for it');
  t.match(reports, [{ policy: 'acnp', failure: /not supported/ }]);
  t.end();
});

t.test('rule cache: content-addressed rule ids, indexes', (t) => {
  const cache = new RuleCache();
  const r = ingress({ addressGroups: ['ag1'] });
  const a = cache.setPolicy(policy('p1', [r, r], ['atg1']));
  t.equal(a.size, 1, 'identical rules collapse');
  const same = cache.setPolicy(policy('p1', [r], ['atg1']));
  t.equal(same.size, 0, 'unchanged rule: nothing dirty');
  const changed = cache.setPolicy(policy('p1', [ingress({ addressGroups: ['ag2'] })], ['atg1']));
  t.equal(changed.size, 2, 'a changed rule is a removal and an addition');
  t.equal(cache.completed([...changed].find((id) => cache.rule(id) !== undefined) ?? ''), 'unrealizable');
  t.same([...cache.setGroup('addressgroups', group('ag2', []))].length, 1);
  t.equal(cache.deletePolicy('p1').size, 1);
  t.equal(cache.ruleCount, 0);
  t.end();
});

t.test('the policy file: bad content names the field; missing or invalid files change nothing', async (t) => {
  t.throws(() => parsePolicyFile('{'), { code: 'INVALID_ARGUMENT', field: 'policyFile' }, 'names the field');
  t.throws(
    () =>
      parsePolicyFile(
        JSON.stringify({ networkpolicies: [{ metadata: { name: 'p' }, rules: [], appliedToGroups: 'x' }] }),
      ),
    { code: 'INVALID_ARGUMENT', field: 'networkpolicies[0].appliedToGroups' },
    'names the field',
  );
  t.throws(
    () =>
      parsePolicyFile(
        JSON.stringify({
          networkpolicies: [
            {
              metadata: { name: 'p' },
              appliedToGroups: [],
              rules: [{ direction: 'Up', from: EMPTY, to: EMPTY, services: [] }],
            },
          ],
        }),
      ),
    { code: 'INVALID_ARGUMENT', field: 'networkpolicies[0].rules[0].direction' },
    'names the field',
  );
  t.throws(
    () => parsePolicyFile(JSON.stringify({ addressgroups: [group('g', []), group('g', [])] })),
    { code: 'INVALID_ARGUMENT', field: 'addressgroups[1].metadata.name' },
    'names the field',
  );
  t.same(parsePolicyFile('{}'), { networkpolicies: [], addressgroups: [], appliedtogroups: [] });

  const dir = t.testdir({});
  const path = join(dir, 'p.json');
  const calls: string[] = [];
  const handler = {
    replace: (resource: string, objects: unknown[]): Promise<void> => {
      calls.push(`${resource}:${objects.length}`);
      return Promise.resolve();
    },
    event: (): Promise<void> => Promise.resolve(),
  };
  const src = new FilePolicySource({ path, handler });
  await src.poll();
  t.same(calls, [], 'a missing file replaces nothing (fail closed)');
  writeFileSync(
    path,
    JSON.stringify({ networkpolicies: [policy('p1', [], ['atg'])], appliedtogroups: [group('atg', [])] }),
  );
  await src.poll();
  t.same(calls, ['networkpolicies:1', 'addressgroups:0', 'appliedtogroups:1'], 'a complete set, as three replaces');
  await src.poll();
  t.equal(calls.length, 3, 'an unchanged file is not handed over again');
  writeFileSync(path, '{"networkpolicies": 5}');
  await src.poll();
  t.equal(calls.length, 3, 'an invalid file keeps the last valid set');
  t.equal(src.loads, 1);
});
