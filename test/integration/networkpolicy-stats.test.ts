/**
 * Per-rule statistics from OpenFlow flow stats on a real OVS: the agent's pipeline and NetworkPolicy
 * controller in this process, Pods as namespaces on br-int, ICMP traffic through an allow rule. The
 * rule's counters (read by cookie from the metric flows) count the allowed sessions, packets and
 * bytes; a rule without traffic stays at zero; a denied peer's packets are counted by no rule.
 */
import t from 'tap';
import type { AddressGroup, AppliedToGroup, NetworkPolicy } from '../../src/common/apis/controlplane/types.ts';
import { integrationSkipReason } from '../helpers/env.ts';
import { PolicyBridge } from '../helpers/policy-bridge.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

const EMPTY = { addressGroups: [], ipBlocks: [] };

t.test('per-rule packet and byte counts', async (t) => {
  const pb = await PolicyBridge.create(t);
  const server = await pb.addPod('server');
  const client = await pb.addPod('client');
  const other = await pb.addPod('other');
  t.ok(await pb.ping(client, server), 'no policy: client → server');
  const policy: NetworkPolicy = {
    metadata: { name: 'p1', uid: 'p1', generation: 3 },
    appliedToGroups: ['atg'],
    sourceRef: { type: 'K8sNetworkPolicy', namespace: 'x', name: 'allow-client', uid: 'p1' },
    rules: [
      {
        direction: 'In',
        from: { ...EMPTY, addressGroups: ['ag'] },
        to: EMPTY,
        services: [{ protocol: 'ICMP' }],
        priority: -1,
        action: 'Allow',
      },
      {
        direction: 'In',
        from: { ...EMPTY, addressGroups: ['ag'] },
        to: EMPTY,
        services: [{ protocol: 'TCP', port: 80 }],
        priority: -1,
        action: 'Allow',
      },
    ],
  };
  const ag: AddressGroup = {
    metadata: { name: 'ag' },
    groupMembers: [{ pod: { namespace: 'x', name: 'client' }, ips: [client.ip] }],
  };
  const atg: AppliedToGroup = {
    metadata: { name: 'atg' },
    groupMembers: [{ pod: { namespace: 'x', name: 'server' } }],
  };
  await pb.controller.replace('networkpolicies', [policy], 'controller');
  await pb.controller.replace('addressgroups', [ag], 'controller');
  await pb.controller.replace('appliedtogroups', [atg], 'controller');
  t.ok(pb.controller.initialRealized);
  t.notOk(await pb.ping(other, server), 'other → server denied');
  for (let i = 0; i < 3; i++) t.ok(await pb.ping(client, server), `client → server ping ${i + 1} allowed`);

  // OVS folds datapath counters into flow statistics about once a second.
  let stats = await pb.controller.ruleStats();
  for (let i = 0; i < 50 && !stats.some((s) => s.packets >= 6); i++) {
    await new Promise((r) => setTimeout(r, 100));
    stats = await pb.controller.ruleStats();
  }
  t.equal(stats.length, 2, 'one entry per OpenFlow rule');
  const [icmp, tcp] = stats;
  t.equal(icmp?.policy, 'p1');
  t.equal(icmp?.sourceRef, 'K8sNetworkPolicy:x/allow-client');
  t.equal(icmp?.sessions, 3, 'three ping processes (three ICMP ids) are three connections');
  t.equal(icmp?.packets, 6, 'three requests and three replies');
  t.equal(icmp?.bytes, 6 * 98, '98-byte ICMP echo frames');
  t.same(
    { sessions: tcp?.sessions, packets: tcp?.packets, bytes: tcp?.bytes },
    { sessions: 0, packets: 0, bytes: 0 },
    'the TCP rule saw nothing',
  );
});
