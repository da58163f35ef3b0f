/**
 * A client that retries from the same source port after a NetworkPolicy denied it gets through as
 * soon as the policy allows it, across Nodes, on the userspace datapath.
 *
 * Why this needs a test: a denied cross-Node SYN passes the client's Node (its egress allows it,
 * so that Node's conntrack commits the connection, SYN_SENT) and is dropped at the server's Node.
 * When the client's kernel reuses the source port for the same server (a fresh SYN, a new ISN),
 * the userspace conntrack's TCP sequence check judges that SYN invalid against the stale SYN_SENT
 * entry, and the pipeline drops `+inv` — the pair stays blocked until the entry expires (30 s),
 * although no policy denies it any more. The Linux kernel's conntrack accepts such a SYN (it
 * re-initializes the window). The agent turns the userspace datapath's TCP sequence check off
 * (`dpctl/ct-disable-tcp-seq-chk`, applied again after every ovs-vswitchd restart).
 */
import t from 'tap';
import { ControlplaneNode } from '../helpers/controlplane-node.ts';
import { integrationSkipReason } from '../helpers/env.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

const SRC_PORT = 41_234;

t.test('a source port reused after a denied SYN connects once the policy allows it', async (t) => {
  const cp = await ControlplaneNode.createCluster(t, 2);
  cp.namespace('x', { ns: 'x' });
  await Promise.all(cp.nodes.map((n) => n.start()));
  const [n1, n2] = cp.nodes;
  if (n1 === undefined || n2 === undefined) throw new Error('two Nodes expected');
  const client = await cp.addPod('x', 'client', { pod: 'client' }, undefined, n1);
  const server = await cp.addPod('x', 'server', { pod: 'server' }, undefined, n2);
  await cp.serve(server, [80]);
  t.ok(await cp.eventually(client, server, true), 'the client reaches the server on the other Node');

  const reg = cp.api.registry;
  const npType = cp.type('networkpolicies', 'networking.k8s.io');
  let before = cp.realizations();
  reg.create(npType, 'x', {
    metadata: { name: 'deny-server', namespace: 'x' },
    spec: { podSelector: { matchLabels: { pod: 'server' } }, policyTypes: ['Ingress'] },
  });
  await cp.settle(before);
  t.notOk(await cp.eventually(client, server, false), 'the policy isolates the server');
  t.notOk(await cp.probe(client, server, 80, SRC_PORT), `a connection from source port ${SRC_PORT} is denied`);

  before = cp.realizations();
  reg.delete(npType, 'x', 'deny-server');
  await cp.settle(before);
  t.ok(await cp.eventually(client, server, true), 'the policy is gone: a new source port connects');
  // The stale SYN_SENT entry on the client's Node would block this port for its whole timeout.
  const started = Date.now();
  let ok = false;
  while (!ok && Date.now() - started < 5_000) ok = await cp.probe(client, server, 80, SRC_PORT);
  t.ok(ok, `source port ${SRC_PORT} connects again within 5 s (${Date.now() - started} ms)`);
});
