import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  caseMatches,
  expectedMatrix,
  loadCases,
  substitutePlaceholders,
  validateCase,
  type CaseProbe,
} from '../../src/lab/conformance/cases.ts';
import { JsonSchema } from '../../src/lab/conformance/json-schema.ts';
import { formatOutcome, summarize } from '../../src/lab/conformance/runner.ts';
import { MODEL_KEYS, modelPod, seededPlacement } from '../../src/lab/model.ts';
import { podPorts } from '../../src/lab/kubelet.ts';

const root = join(import.meta.dirname, '..', 'conformance');

t.test('the shipped cases all validate, and the schema is the shared one', (t) => {
  const { cases, invalid } = loadCases(join(root, 'netpol'));
  t.same(invalid, []);
  const index = JSON.parse(readFileSync(join(root, 'netpol', 'index.json'), 'utf8')) as { k8s: { id: string }[] };
  t.same(
    cases.map((c) => c.id),
    index.k8s.map((c) => c.id),
    'every case of index.json, in file order; index.json and schema.json themselves are not cases',
  );
  t.equal(
    readFileSync(join(import.meta.dirname, '../../src/lab/conformance/netpol-case.schema.json'), 'utf8'),
    readFileSync(join(root, 'netpol', 'schema.json'), 'utf8'),
  );
  const self = loadCases(join(root, 'lab-selftest'));
  t.same(self.invalid, []);
  t.same(
    self.cases.map((c) => c.id),
    ['lab-01-allow-all', 'lab-02-ipblock-placeholders', 'lab-03-sctp', 'lab-04-wrong-expectation'],
  );
  t.end();
});

t.test('invalid case files are reported with every problem and its JSON pointer', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cases-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'sub'));
  const good = JSON.parse(readFileSync(join(root, 'lab-selftest', '01-allow-all.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  writeFileSync(join(dir, 'sub', 'good.json'), JSON.stringify(good));
  writeFileSync(join(dir, 'dup.json'), JSON.stringify(good));
  const bad = structuredClone(good) as {
    steps: { probes: Record<string, unknown>[] }[];
    model: string;
    extra?: number;
  };
  bad.model = 'calico';
  bad.extra = 1;
  const probe = bad.steps[0]?.probes[0];
  if (probe !== undefined) {
    probe['port'] = 70000;
    probe['expect'] = { default: 'maybe' };
  }
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ ...bad, id: 'other' }));
  writeFileSync(join(dir, 'broken.json'), '{"schema": ');
  writeFileSync(join(dir, 'notes.json'), '{"unrelated": true}');
  const { cases, invalid } = loadCases(dir);
  t.same(cases, [], 'cases with a duplicated id are both held back');
  const byFile = Object.fromEntries(invalid.map((i) => [i.file, i.errors]));
  t.same(Object.keys(byFile).sort(), ['bad.json', 'broken.json', 'dup.json', 'sub/good.json']);
  t.match(byFile['broken.json'], [{ path: '', message: /^not JSON/ }]);
  t.match(byFile['sub/good.json'], [{ path: '/id', message: 'duplicates the id of dup.json' }]);
  t.match(byFile['dup.json'], [{ path: '/id', message: 'duplicates the id of sub/good.json' }]);
  const messages = (byFile['bad.json'] ?? []).map((e) => `${e.path}: ${e.message}`);
  t.ok(messages.includes('/extra: is not an allowed property'), messages.join('\n'));
  t.ok(messages.includes('/model: must be one of "k8s", "antrea", got "calico"'));
  t.ok(messages.includes('/steps/0/probes/0/port: must be <= 65535'));
  t.ok(messages.some((m) => m.startsWith('/steps/0/probes/0/expect/default: must be')));
  t.throws(() => loadCases(join(dir, 'absent')), { code: 'CASE_DIR', message: /--cases: .* is not a directory/ });
  t.end();
});

t.test('the validator implements its keywords and refuses others', (t) => {
  const s = new JsonSchema({
    $defs: { pod: { type: 'string', pattern: '^[xyz]/[abc]$' } },
    type: 'object',
    required: ['pods'],
    properties: {
      pods: { type: 'array', items: { $ref: '#/$defs/pod' }, minItems: 1, maxItems: 2 },
      pair: { type: 'array', prefixItems: [{ const: 'from' }, { type: 'integer', minimum: 1 }] },
      any: { oneOf: [{ type: 'string' }, { type: 'integer' }] },
      labels: {
        type: 'object',
        propertyNames: { pattern: '^[a-z]+$' },
        additionalProperties: { type: ['string', 'null'] },
      },
    },
  });
  t.same(s.validate({ pods: ['x/a'], pair: ['from', 3], any: 4, labels: { a: null, b: 'v' } }), []);
  t.same(s.validate({ pods: [], pair: ['to', 0.5], any: true, labels: { A: 1 } }), [
    { path: '/pods', message: 'must have at least 1 item(s), has 0' },
    { path: '/pair/0', message: 'must be "from"' },
    { path: '/pair/1', message: 'must be integer, got number' },
    { path: '/any', message: 'must be string, got boolean' },
    { path: '/labels/A', message: 'property name must match ^[a-z]+$, got "A"' },
    { path: '/labels/A', message: 'must be string or null, got integer' },
  ]);
  t.same(s.validate({ pods: ['x/a', 'y/d', 'z/c'] }), [
    { path: '/pods', message: 'must have at most 2 item(s), has 3' },
    { path: '/pods/1', message: 'must match ^[xyz]/[abc]$, got "y/d"' },
  ]);
  t.same(s.validate([]), [{ path: '', message: 'must be object, got array' }]);
  t.same(new JsonSchema({ oneOf: [{ type: 'integer' }, { type: 'number' }] }).validate(3), [
    { path: '', message: 'matches 2 alternatives of oneOf, must match exactly one' },
  ]);
  t.throws(() => new JsonSchema({ type: 'object', if: { type: 'string' } }), {
    code: 'SCHEMA_UNSUPPORTED',
    message: '#: keyword "if" is not supported',
  });
  t.throws(() => new JsonSchema({ $ref: 'http://example.com/s.json' }), { code: 'SCHEMA_UNSUPPORTED' });
  t.same(
    validateCase({})
      .map((e) => e.message)
      .slice(0, 2),
    ['is missing the required property "schema"', 'is missing the required property "id"'],
  );
  t.end();
});

t.test('expectations expand to the 81 pairs; placeholders take Pod IPs', (t) => {
  const k8s: CaseProbe = {
    port: 80,
    protocol: 'TCP',
    ignoreLoopback: true,
    expect: { default: true, deny: [['x/a', 'x/b']], allow: [] },
  };
  const m = expectedMatrix(k8s);
  t.equal(m.size, 81);
  t.equal(m.get('x/a>x/b'), false);
  t.equal(m.get('x/b>x/a'), true);
  const antrea = expectedMatrix({
    port: 80,
    protocol: 'TCP',
    ignoreLoopback: false,
    expect: { default: 'allow', drop: [['y/a', 'z/c']], reject: [['z/c', 'y/a']] },
  });
  t.same([antrea.get('y/a>z/c'), antrea.get('z/c>y/a'), antrea.get('x/a>x/a')], ['drop', 'reject', 'allow']);

  const ips = new Map([
    ['x/a', '10.10.1.12'],
    ['x/b', '10.244.1.12'],
    ['y/b', 'fd00:10:244::5'],
  ]);
  const obj = {
    spec: {
      egress: [
        { to: [{ ipBlock: { cidr: '{{cidr:x/b/4}}', except: ['{{hostcidr:x/a}}', '{{hostcidr:y/b}}'] } }] },
        { to: [{ ipBlock: { cidr: '{{cidr:y/b/4}}' } }], note: 'ip {{ip:x/a}} and {{ip:x/b}}', port: 80 },
      ],
    },
  };
  t.same(substitutePlaceholders(obj, ips, 'case step 1'), {
    spec: {
      egress: [
        { to: [{ ipBlock: { cidr: '0.0.0.0/4', except: ['10.10.1.12/32', 'fd00:10:244::5/128'] } }] },
        { to: [{ ipBlock: { cidr: 'f000::/4' } }], note: 'ip 10.10.1.12 and 10.244.1.12', port: 80 },
      ],
    },
  });
  t.throws(() => substitutePlaceholders({ a: '{{hostcidr:z/c}}' }, ips, 'c1 step 2'), {
    code: 'CASE_PLACEHOLDER',
    message: 'c1 step 2: no IP for Pod "z/c"',
  });
  t.throws(() => substitutePlaceholders({ a: '{{podip:x/a}}' }, ips, 'w'), {
    message: 'w: unknown placeholder {{podip:x/a}}',
  });
  t.throws(() => substitutePlaceholders({ a: '{{cidr:x/a}}' }, ips, 'w'), {
    message: 'w: {{cidr:x/a}} must be NS/POD/N',
  });
  t.throws(() => substitutePlaceholders({ a: '{{cidr:x/a/33}}' }, ips, 'w'), { message: /invalid prefix length/ });
  t.end();
});

t.test('filters, outcome lines and the summary', (t) => {
  const { cases } = loadCases(join(root, 'netpol'));
  t.same(
    cases.filter((c) => caseMatches(c, 'SCTP')).map((c) => c.id),
    [
      'k8s-38-sctp-not-treated-as-tcp',
      'k8s-39-sctp-policy-isolates-pod',
      'k8s-46-sctp-default-deny-ingress',
      'k8s-47-sctp-ports',
      'k8s-48-sctp-pod-in-different-namespace-podselector-and-namespaceselector',
    ],
  );
  t.equal(cases.filter((c) => caseMatches(c, 'k8s-16')).length, 1);
  t.equal(cases.filter((c) => caseMatches(c, undefined)).length, 32);
  t.equal(
    formatOutcome({ id: 'k8s-16', status: 'pass', detail: '144 pairs right', ms: 1500, diffs: [] }),
    'PASS  k8s-16 (1.50s): 144 pairs right',
  );
  const s = summarize(
    [
      { id: 'a', status: 'pass', detail: '', ms: 0, diffs: [] },
      { id: 'b', status: 'fail', detail: '', ms: 0, diffs: [] },
      { id: 'c', status: 'skip', detail: '', ms: 0, diffs: [] },
    ],
    2,
  );
  t.equal(s.line, '1 passed, 3 failed, 1 skipped', 'invalid files count as failures');
  t.end();
});

t.test('the model Pods declare the ports and names the README describes', (t) => {
  t.equal(MODEL_KEYS.length, 9);
  const k8s = modelPod('x', 'a', 'k8s') as { spec: { containers: { name: string; ports: { name?: string }[] }[] } };
  t.same(
    k8s.spec.containers.map((c) => `${c.name}:${c.ports.map((p) => p.name).join(',')}`),
    [
      'cont-80-tcp:serve-80-tcp',
      'cont-80-udp:serve-80-udp',
      'cont-80-sctp:serve-80-sctp',
      'cont-81-tcp:serve-81-tcp',
      'cont-81-udp:serve-81-udp',
      'cont-81-sctp:serve-81-sctp',
    ],
  );
  t.same(podPorts(modelPod('x', 'a', 'k8s')), { tcp: [80, 81], udp: [80, 81], unsupported: ['80/SCTP', '81/SCTP'] });
  const antrea = modelPod('y', 'b', 'antrea');
  t.same((antrea as { metadata: { labels: Record<string, string> } }).metadata.labels, { pod: 'b', app: 'b' });
  t.same(podPorts(antrea), {
    tcp: [80, 81, 8080, 8081, 8082, 8083, 8084, 8085],
    udp: [80, 81],
    unsupported: ['80/SCTP', '81/SCTP'],
  });
  t.end();
});

t.test('seededPlacement: every model Pod on a Node, every Node used, the same seed the same placement', (t) => {
  const nodes = ['node-1', 'node-2', 'node-3'];
  const p = seededPlacement(nodes, 7);
  t.same([...p.keys()].sort(), [...MODEL_KEYS].sort(), 'all nine Pods placed');
  t.same(new Set(p.values()), new Set(nodes), 'every Node gets some');
  t.same([...seededPlacement(nodes, 7)], [...p], 'deterministic');
  const distinct = new Set(Array.from({ length: 20 }, (_, seed) => JSON.stringify([...seededPlacement(nodes, seed)])));
  t.ok(distinct.size > 10, `different seeds give different placements (${distinct.size} of 20)`);
  t.same(new Set(seededPlacement(['only'], 3).values()), new Set(['only']), 'one Node takes all');
  t.throws(() => seededPlacement([], 1), /no Nodes/);
  const pinned = modelPod('x', 'a', 'k8s', 'node-2') as { spec: { nodeSelector?: Record<string, string> } };
  t.same(pinned.spec.nodeSelector, { 'kubernetes.io/hostname': 'node-2' }, 'a placed Pod is pinned by hostname');
  t.equal((modelPod('x', 'a', 'k8s') as { spec: { nodeSelector?: unknown } }).spec.nodeSelector, undefined);
  t.end();
});
