/**
 * The Service feature's flows and groups as canonical ovs-ofctl text (golden files): node-wide
 * flows, a ClusterIP port with three Endpoints, session affinity (learn), NodePort with
 * externalTrafficPolicy Local, the no-Endpoint group, Endpoint DNAT and hairpin flows, and bad
 * input. test/integration/proxy.test.ts runs the same flows on a real bridge with real packets.
 */
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { CookieAllocator } from '../../src/common/agent/openflow/cookie.ts';
import { RealizedPipeline } from '../../src/common/agent/openflow/framework.ts';
import { PodConnectivityFeature } from '../../src/common/agent/openflow/pod-connectivity.ts';
import { ServiceFeature } from '../../src/common/agent/openflow/service.ts';
import { matchesGolden } from '../helpers/golden.ts';

const GOLDEN = join(import.meta.dirname, 'golden', 'service');
const cookies = new CookieAllocator(2);
const gateway = { ofport: 32769, mac: '0a:00:00:00:00:01', ips: ['10.10.1.1'] };
const pc = new PodConnectivityFeature({ cookies, gateway, tunnel: { ofport: 32768 }, podCIDRs: ['10.10.1.0/24'] });
const svc = new ServiceFeature({ cookies, gateway, nodePortAddresses: ['192.0.2.10'] });
const p = new RealizedPipeline([pc, svc]);

function golden(t: Test, name: string, lines: readonly { toString(): string }[]): void {
  matchesGolden(t, join(GOLDEN, name), lines.map(String).join('\n') + '\n');
}

const eps = [
  { ip: '10.10.1.5', port: 8080, local: true },
  { ip: '10.10.1.6', port: 8080, local: true },
  { ip: '10.10.2.7', port: 8080, local: false },
];

t.test('tables and node-wide flows', (t) => {
  t.same(
    p.tableNames().map((x) => x.name),
    [
      'PipelineRootClassifier',
      'ARPSpoofGuard',
      'ARPResponder',
      'Classifier',
      'SpoofGuard',
      'UnSNAT',
      'ConntrackZone',
      'ConntrackState',
      'PreRoutingClassifier',
      'NodePortMark',
      'SessionAffinity',
      'ServiceLB',
      'EndpointDNAT',
      'L3Forwarding',
      'L3DecTTL',
      'SNATMark',
      'SNAT',
      'L2ForwardingCalc',
      'ConntrackCommit',
      'Output',
    ],
  );
  t.equal(p.table('SessionAffinity').missAction, 'drop', 'resubmitted tables return on a miss');
  t.equal(p.table('NodePortMark').missAction, 'drop');
  golden(t, 'initial.txt', svc.initialFlows(p));
  const without = new RealizedPipeline([pc, new ServiceFeature({ cookies, gateway })]);
  t.notOk(without.has('NodePortMark'), 'no NodePortMark without NodePort support');
  t.end();
});

t.test('a ClusterIP port: group, ServiceLB, Endpoint and hairpin flows', (t) => {
  golden(t, 'clusterip-group.txt', [svc.serviceGroup(p, 7, eps, false)]);
  golden(
    t,
    'clusterip-flows.txt',
    svc.serviceFlows(p, { ip: '10.96.0.10', port: 80, protocol: 'TCP', nodePort: false, groupId: 7 }),
  );
  golden(t, 'endpoint-flows.txt', [
    ...svc.endpointFlows(p, eps[0]!, 'TCP'),
    ...svc.endpointFlows(p, { ip: '10.10.1.5', port: 53, local: true }, 'UDP'),
    ...svc.hairpinFlows(p, '10.10.1.5'),
  ]);
  golden(t, 'no-endpoint-group.txt', [svc.serviceGroup(p, 8, [], false)]);
  t.end();
});

t.test('session affinity and NodePort with externalTrafficPolicy Local', (t) => {
  golden(t, 'affinity-group.txt', [svc.serviceGroup(p, 9, eps, true)]);
  golden(t, 'affinity-flows.txt', [
    ...svc.serviceFlows(p, {
      ip: '10.96.0.11',
      port: 80,
      protocol: 'TCP',
      nodePort: false,
      groupId: 9,
      affinityTimeout: 10800,
    }),
    ...svc.serviceFlows(p, {
      ip: '10.96.0.12',
      port: 53,
      protocol: 'UDP',
      nodePort: false,
      groupId: 10,
      affinityTimeout: 100000,
    }),
  ]);
  golden(
    t,
    'nodeport-flows.txt',
    svc.serviceFlows(p, {
      ip: '10.96.0.13',
      port: 30080,
      protocol: 'TCP',
      nodePort: true,
      groupId: 12,
      localClientsGroupId: 11,
    }),
  );
  t.end();
});

t.test('bad input is refused with the field named', (t) => {
  const bad = (fn: () => unknown, field: string): void => {
    t.throws(fn, { code: 'INVALID_ARGUMENT', field }, field);
  };
  bad(() => svc.serviceFlows(p, { ip: '10.96.0.1', port: 0, protocol: 'TCP', nodePort: false, groupId: 1 }), 'port');
  bad(() => svc.serviceFlows(p, { ip: 'fd00::1', port: 80, protocol: 'TCP', nodePort: false, groupId: 1 }), 'ip');
  bad(
    () =>
      svc.serviceFlows(p, {
        ip: '10.96.0.1',
        port: 80,
        protocol: 'TCP',
        nodePort: false,
        groupId: 1,
        affinityTimeout: 0,
      }),
    'affinityTimeout',
  );
  bad(() => svc.serviceGroup(p, 1, [{ ip: '10.0.0.1', port: 70000, local: true }], false), 'endpoints[0].port');
  bad(() => svc.endpointFlows(p, { ip: 'x', port: 80, local: true }, 'TCP'), 'endpoint.ip');
  bad(() => new ServiceFeature({ cookies, gateway, nodePortAddresses: ['nope'] }), 'nodePortAddresses[0]');
  const noNP = new ServiceFeature({ cookies, gateway });
  const p2 = new RealizedPipeline([pc, noNP]);
  bad(() => noNP.serviceFlows(p2, { ip: '', port: 30000, protocol: 'TCP', nodePort: true, groupId: 1 }), 'nodePort');
  t.end();
});
