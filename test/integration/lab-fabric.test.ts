/**
 * The lab's networks against the real kernel: the control veth (the root namespace's only
 * footprint), the underlay bridges, the router and the external namespace, Node legs on both
 * underlay subnets, isolation from the machine's network, and complete removal.
 */
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { auditIsolation, destroyLabNetwork, labNamespaces, LabFabric } from '../../src/lab/fabric.ts';
import { buildTopology, labPrefix, type LabTopology } from '../../src/lab/topology.ts';
import { integrationSkipReason, netns, runner } from '../helpers/env.ts';
import { labRoutes } from '../helpers/lab.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

async function ping(ns: string, ip: string): Promise<boolean> {
  const r = await runner.run('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '1', ip], { okExitCodes: [1, 2] });
  return r.exitCode === 0;
}

/** A lab network (fabric, router, external, Nodes) removed at teardown. */
async function labNetwork(t: Test, nodes: number, encap: 'geneve' | 'hybrid'): Promise<LabTopology> {
  const dataDir = `/tmp/labnet-${randomBytes(4).toString('hex')}`;
  const prefix = labPrefix(dataDir);
  t.teardown(() => destroyLabNetwork(runner, prefix));
  const fabric = new LabFabric({ runner });
  await fabric.createFabricNamespace({ fabricNetns: `${prefix}fabric` });
  const slot = await fabric.claimControlSlot(`${prefix}ctl`, `${prefix}fabric`);
  const topo = buildTopology({ dataDir, nodes, encap, slot });
  await fabric.build(topo);
  for (const n of topo.nodes) await fabric.addNode(topo, n);
  return topo;
}

t.test('a hybrid lab network connects Nodes, router and external, and nothing else', async (t) => {
  const before = await labRoutes();
  const topo = await labNetwork(t, 3, 'hybrid');
  const [n1, n2, n3] = topo.nodes;
  if (n1 === undefined || n2 === undefined || n3 === undefined) throw new Error('3 Nodes expected');

  t.ok(await ping(n1.netns, n3.nodeIP), 'Nodes on the same underlay subnet reach each other');
  t.ok(await ping(n1.netns, n2.nodeIP), 'a Node reaches a Node on the other subnet through the router');
  t.ok(await ping(n2.netns, '203.0.113.100'), 'Nodes reach the external network');
  t.ok(await ping(topo.externalNetns, n2.nodeIP), 'the external network reaches the Nodes');
  t.ok(await ping(n1.netns, topo.control.hostIP), 'Nodes reach the root namespace on the control subnet');
  t.ok(await ping(n2.netns, n3.controlIP), 'Nodes reach each other on the control subnet');
  t.notOk(await ping(topo.externalNetns, topo.control.hostIP), 'the external network cannot reach the control subnet');
  t.notOk(await ping(n1.netns, '192.0.2.2'), 'nothing beyond the router: not even an address the machine itself uses');

  const added = (await labRoutes(topo.prefix)).filter((r) => !before.includes(r));
  t.same(
    added.filter((r) => !r.startsWith('local ') && !r.startsWith('broadcast ')),
    [`${topo.control.cidr} dev ${topo.control.hostIface} proto kernel scope link src ${topo.control.hostIP}`],
    'the root namespace gained one connected route and nothing else',
  );
  t.ok(
    added.every((r) => r.includes(`dev ${topo.control.hostIface}`)),
    'every new root entry is on the control veth',
  );
  t.equal(readFileSync(`/proc/sys/net/ipv6/conf/${topo.control.hostIface}/disable_ipv6`, 'utf8').trim(), '1');
  t.equal(readFileSync(`/proc/sys/net/ipv4/conf/${topo.control.hostIface}/forwarding`, 'utf8').trim(), '0');
  t.equal(readFileSync(`/proc/sys/net/ipv4/conf/${topo.control.hostIface}/rp_filter`, 'utf8').trim(), '1');
  t.same(await auditIsolation(runner, topo.prefix, topo.control.cidr), [], 'the isolation audit finds nothing');
  const fwd = await runner.run('ip', ['netns', 'exec', n1.netns, 'iptables', '-w', '-S', 'FORWARD']);
  t.match(fwd.stdout, /-A FORWARD -i ctl0 .*-j DROP/);
  t.match(fwd.stdout, /-A FORWARD -o ctl0 .*-j DROP/);

  // The audit does catch a route towards the root namespace.
  await runner.run('ip', ['-n', topo.fabricNetns, 'addr', 'add', '198.18.0.1/24', 'dev', 'ctl-host']);
  const problems = await auditIsolation(runner, topo.prefix, topo.control.cidr);
  t.ok(
    problems.some((p) => p.includes('ctl-host (peer in the root namespace) has an address')),
    problems.join('\n'),
  );
  t.ok(
    problems.some((p) => p.includes('route 198.18.0.0/24 goes out through ctl-host')),
    problems.join('\n'),
  );
  await runner.run('ip', ['-n', topo.fabricNetns, 'addr', 'del', '198.18.0.1/24', 'dev', 'ctl-host']);

  // Building again is harmless (idempotent).
  const fabric = new LabFabric({ runner });
  await fabric.build(topo);
  await fabric.addNode(topo, n1);
  t.ok(await ping(n1.netns, n2.nodeIP), 'still connected after a second build');

  const { removed, problems: left } = await destroyLabNetwork(runner, topo.prefix);
  t.same(left, []);
  t.equal(removed.filter((r) => r.startsWith('namespace ')).length, 6, removed.join(', '));
  const link = await runner.run('ip', ['link', 'show', topo.control.hostIface], { okExitCodes: [1] });
  t.equal(link.exitCode, 1, 'the control veth is gone');
  t.same(labNamespaces(netns, topo.prefix), [], 'no lab namespace left');
  t.same(await labRoutes(topo.prefix), before, 'the root routes are back to what they were');
  const again = await destroyLabNetwork(runner, topo.prefix);
  t.same(again, { removed: [], problems: [] }, 'idempotent');
});

t.test('two labs starting together get different control subnets', async (t) => {
  const [a, b] = await Promise.all([labNetwork(t, 1, 'geneve'), labNetwork(t, 1, 'geneve')]);
  t.not(a.slot, b.slot);
  t.not(a.control.cidr, b.control.cidr);
  t.ok(await ping(a.nodes[0]?.netns ?? '', a.control.hostIP));
  t.ok(await ping(b.nodes[0]?.netns ?? '', b.control.hostIP));
  t.notOk(await ping(a.nodes[0]?.netns ?? '', b.control.hostIP), 'labs do not reach each other');
});
