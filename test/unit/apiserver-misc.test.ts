import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { PodCidrAllocator, ServiceAllocator } from '../../src/lab/apiserver/allocators.ts';
import { certificateUsable, createServingPki } from '../../src/common/util/pki.ts';
import { crdPrinter, evalJsonPath, humanDuration, PRINTERS } from '../../src/lab/apiserver/printers.ts';
import type { KObject } from '../../src/lab/apiserver/types.ts';

t.test('ages print like kubectl', (t) => {
  const s = 1000;
  const cases: [number, string][] = [
    [-5 * s, '<invalid>'],
    [-500, '0s'],
    [45 * s, '45s'],
    [119 * s, '119s'],
    [5 * 60 * s + 30 * s, '5m30s'],
    [9 * 60 * s, '9m'],
    [150 * 60 * s, '150m'],
    [5 * 3600 * s + 20 * 60 * s, '5h20m'],
    [30 * 3600 * s, '30h'],
    [3 * 86400 * s + 4 * 3600 * s, '3d4h'],
    [400 * 86400 * s, '400d'],
    [3 * 365 * 86400 * s + 10 * 86400 * s, '3y10d'],
  ];
  for (const [ms, want] of cases) t.equal(humanDuration(ms), want, `${ms}ms`);
  t.end();
});

t.test('JSONPath of printer columns, including filters', (t) => {
  const info = {
    version: 'v2.1',
    agentConditions: [
      { type: 'OVSDBConnectionUp', status: 'True' },
      { type: 'AgentHealthy', status: 'False', lastHeartbeatTime: '2026-01-01T00:00:00Z' },
    ],
    nodeSubnets: ['10.10.0.0/24', 'fd00::/64'],
  };
  t.same(evalJsonPath(info, ".agentConditions[?(@.type=='AgentHealthy')].status"), ['False']);
  t.same(evalJsonPath(info, '.nodeSubnets[0]'), ['10.10.0.0/24']);
  t.same(evalJsonPath(info, '.agentConditions[*].type'), ['OVSDBConnectionUp', 'AgentHealthy']);
  t.same(evalJsonPath(info, '{.version}'), ['v2.1']);
  t.same(evalJsonPath(info, '.missing.deep'), []);
  const printer = crdPrinter([
    { name: 'Healthy', type: 'string', jsonPath: ".agentConditions[?(@.type=='AgentHealthy')].status" },
    { name: 'Last Heartbeat', type: 'date', jsonPath: ".agentConditions[?(@.type=='AgentHealthy')].lastHeartbeatTime" },
    { name: 'Subnets', type: 'string', jsonPath: '.nodeSubnets', priority: 2 },
    { name: 'Pods', type: 'integer', jsonPath: '.localPodNum' },
  ]);
  const obj = { metadata: { name: 'n1' }, ...info } as unknown as KObject;
  t.same(printer.row(obj, Date.parse('2026-01-01T00:02:00Z')), [
    'n1',
    'False',
    '2m',
    '["10.10.0.0/24","fd00::/64"]',
    null,
  ]);
  t.same(
    printer.columns.map((c) => [c.name, c.priority ?? 0]),
    [
      ['Name', 0],
      ['Healthy', 0],
      ['Last Heartbeat', 0],
      ['Subnets', 2],
      ['Pods', 0],
    ],
  );
  t.end();
});

t.test('built-in printers: Pods, Services and Nodes', (t) => {
  const now = Date.parse('2026-01-01T01:00:00Z');
  const created = '2026-01-01T00:00:00Z';
  const pod = {
    metadata: { name: 'p', creationTimestamp: created },
    spec: { nodeName: 'n1', containers: [{ name: 'a' }, { name: 'b' }] },
    status: {
      phase: 'Running',
      podIP: '10.10.0.5',
      containerStatuses: [
        { name: 'a', ready: true, restartCount: 1, state: { running: {} } },
        { name: 'b', ready: false, restartCount: 2, state: { waiting: { reason: 'CrashLoopBackOff' } } },
      ],
    },
  } as unknown as KObject;
  t.same(PRINTERS['/Pod']?.row(pod, now), [
    'p',
    '1/2',
    'CrashLoopBackOff',
    3,
    '60m',
    '10.10.0.5',
    'n1',
    '<none>',
    '<none>',
  ]);
  const terminating = { ...pod, metadata: { ...pod.metadata, deletionTimestamp: created } } as KObject;
  t.equal(PRINTERS['/Pod']?.row(terminating, now)[2], 'Terminating');
  const svc = {
    metadata: { name: 's', creationTimestamp: created },
    spec: {
      type: 'NodePort',
      clusterIP: '10.96.0.9',
      selector: { app: 'web' },
      ports: [
        { port: 80, nodePort: 30080, protocol: 'TCP' },
        { port: 53, protocol: 'UDP' },
      ],
    },
  } as unknown as KObject;
  t.same(PRINTERS['/Service']?.row(svc, now), [
    's',
    'NodePort',
    '10.96.0.9',
    '<none>',
    '80:30080/TCP,53/UDP',
    '60m',
    'app=web',
  ]);
  const node = {
    metadata: { name: 'n', creationTimestamp: created, labels: { 'node-role.kubernetes.io/control-plane': '' } },
    spec: { unschedulable: true },
    status: {
      conditions: [{ type: 'Ready', status: 'True' }],
      addresses: [{ type: 'InternalIP', address: '192.0.2.10' }],
      nodeInfo: { kubeletVersion: 'v1.32.4' },
    },
  } as unknown as KObject;
  t.same(PRINTERS['/Node']?.row(node, now).slice(0, 6), [
    'n',
    'Ready,SchedulingDisabled',
    'control-plane',
    '60m',
    'v1.32.4',
    '192.0.2.10',
  ]);
  t.end();
});

t.test('allocators hand out the lowest free addresses and reject bad input', (t) => {
  const a = new ServiceAllocator('10.96.0.0/28');
  t.equal(a.firstIP, '10.96.0.1');
  t.same(a.allocateIP(undefined), { ip: '10.96.0.1' });
  t.same(a.allocateIP('10.96.0.5'), { ip: '10.96.0.5' });
  t.match(a.allocateIP('10.96.0.5'), { error: /already allocated/ });
  t.match(a.allocateIP('10.97.0.5'), { error: /not in the valid range/ });
  t.match(a.allocateIP('10.96.0.15'), { error: /not in the valid range/ }, 'broadcast address');
  for (let i = 0; i < 12; i++) a.allocateIP(undefined);
  t.match(a.allocateIP(undefined), { error: 'range is full' });
  a.releaseIP('10.96.0.5');
  t.same(a.allocateIP(undefined), { ip: '10.96.0.5' });
  t.same(a.allocateNodePort(undefined), { port: 30000 });
  t.match(a.allocateNodePort(80), { error: /30000-32767/ });
  t.throws(() => new ServiceAllocator('10.96.0.0'), { code: 'INVALID_ARGUMENT', field: 'serviceCIDR' });
  const n = new PodCidrAllocator('10.10.0.0/16', 24);
  t.equal(n.allocate(), '10.10.0.0/24');
  n.reserve('10.10.1.0/24');
  t.equal(n.allocate(), '10.10.2.0/24');
  t.throws(() => new PodCidrAllocator('10.10.0.0/16', 12), { code: 'INVALID_ARGUMENT', field: 'nodeCIDRMaskSize' });
  t.end();
});

t.test('the serving certificate chains to the CA and names the API server', (t) => {
  const now = Date.now();
  const pki = createServingPki({
    now,
    dnsNames: ['localhost', 'kubernetes.default.svc'],
    ips: ['127.0.0.1', '::1', '10.96.0.1'],
  });
  const ca = new X509Certificate(pki.ca.certPem);
  const srv = new X509Certificate(pki.server.certPem);
  t.ok(ca.ca, 'CA:TRUE');
  t.notOk(srv.ca);
  t.ok(srv.verify(ca.publicKey), 'signed by the CA');
  t.ok(srv.checkIssued(ca));
  t.equal(srv.checkHost('kubernetes.default.svc'), 'kubernetes.default.svc');
  t.equal(srv.checkIP('10.96.0.1'), '10.96.0.1');
  t.equal(srv.checkIP('::1'), '::1');
  t.ok(certificateUsable(pki.server.certPem, pki.ca.certPem, now, ['localhost'], ['127.0.0.1']));
  t.notOk(
    certificateUsable(pki.server.certPem, pki.ca.certPem, now, ['other.example'], []),
    'a missing name means a new certificate',
  );
  const other = createServingPki({ now, dnsNames: ['x'], ips: [] });
  t.notOk(certificateUsable(pki.server.certPem, other.ca.certPem, now, [], []), 'another CA');
  const reissued = createServingPki({ now, dnsNames: ['y'], ips: [], ca: pki.ca });
  t.ok(new X509Certificate(reissued.server.certPem).verify(ca.publicKey), 'a kept CA signs new serving certificates');
  t.end();
});
