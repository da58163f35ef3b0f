/**
 * The uplink bridge of the userspace datapath, set up and torn down for real: an encap Node (its
 * own namespace, OVS and antrea-agent) behind the underlay router. The agent puts the uplink on
 * br-phy with the Node's address and default route; a stopped agent leaves it there (Pods keep
 * their network across restarts); `antrea-agent --cleanup` puts the address and the route back on
 * the uplink and deletes br-phy, and the Node still reaches the router; a second clean-up does
 * nothing; a new agent start sets the bridge up again.
 */
import t from 'tap';
import { AGENT_ENTRY, type AgentNode } from '../helpers/agent-node.ts';
import { Cluster, SUBNETS } from '../helpers/multinode.ts';
import { integrationSkipReason, runner } from '../helpers/env.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

async function sh(ns: string, cmd: string, args: readonly string[], okExitCodes: number[] = []): Promise<string> {
  const r = await runner.run('ip', ['netns', 'exec', ns, cmd, ...args], { okExitCodes, timeoutMs: 30_000 });
  return r.stdout;
}

async function brExists(node: AgentNode, name: string): Promise<boolean> {
  const r = await runner.run('ovs-vsctl', [`--db=${node.ovs.dbEndpoint}`, 'br-exists', name], {
    okExitCodes: [2],
    timeoutMs: 20_000,
  });
  return r.exitCode === 0;
}

async function pingsRouter(node: AgentNode): Promise<boolean> {
  const r = await runner.run('ip', ['netns', 'exec', node.ns, 'ping', '-c', '1', '-W', '2', SUBNETS.a.router], {
    okExitCodes: [1],
    timeoutMs: 20_000,
  });
  return r.exitCode === 0;
}

async function cleanup(node: AgentNode): Promise<number> {
  const r = await runner.run(
    'ip',
    ['netns', 'exec', node.ns, process.execPath, AGENT_ENTRY, '--config', node.configPath, '--cleanup'],
    { okExitCodes: [1], timeoutMs: 60_000 },
  );
  if (r.exitCode !== 0) t.comment(r.stderr);
  return r.exitCode;
}

t.test('br-phy: set up by the agent, kept across a stop, restored by --cleanup', async (t) => {
  const c = await Cluster.create(t, { trafficEncapMode: 'encap', nodes: [{ subnet: 'a' }] });
  const node = c.nodes[0]!;
  await c.startAgents();
  const ip = node.nodeIP;
  t.ok(await brExists(node, 'br-phy'), 'the agent created br-phy');
  t.match(await sh(node.ns, 'ip', ['-br', '-4', 'addr', 'show', 'br-phy']), `${ip}/24`, 'the Node IP is on br-phy');
  t.notMatch(await sh(node.ns, 'ip', ['-br', '-4', 'addr', 'show', 'uplink']), ip, 'and not on the uplink');
  t.match(await sh(node.ns, 'ip', ['route', 'show', 'default']), /via 192\.0\.2\.1 dev br-phy/);
  t.ok(await pingsRouter(node), 'the Node reaches the router through br-phy');

  t.equal(await node.stop(), 0, 'the agent stops cleanly');
  t.ok(await brExists(node, 'br-phy'), 'a stopped agent leaves br-phy (the datapath keeps working)');
  t.ok(await pingsRouter(node), 'and the Node keeps its network');

  t.equal(await cleanup(node), 0, 'antrea-agent --cleanup succeeds');
  t.notOk(await brExists(node, 'br-phy'), 'br-phy is deleted');
  t.notOk((await node.links()).has('br-phy'), 'its device is gone');
  t.match(
    await sh(node.ns, 'ip', ['-br', '-4', 'addr', 'show', 'uplink']),
    `${ip}/24`,
    'the Node IP is back on the uplink',
  );
  t.match(
    await sh(node.ns, 'ip', ['route', 'show', 'default']),
    /default via 192\.0\.2\.1 dev uplink/,
    'the default route is back on the uplink',
  );
  t.match(await sh(node.ns, 'ip', ['route', 'show', '192.0.2.0/24']), /dev uplink/, 'the subnet route too');
  t.ok(await pingsRouter(node), 'the Node reaches the router through the plain uplink');
  t.equal(await cleanup(node), 0, 'a second clean-up has nothing to do and succeeds');
  t.match(await sh(node.ns, 'ip', ['-br', '-4', 'addr', 'show', 'uplink']), `${ip}/24`);

  await node.start();
  t.ok(await brExists(node, 'br-phy'), 'a new start sets br-phy up again');
  t.match(await sh(node.ns, 'ip', ['-br', '-4', 'addr', 'show', 'br-phy']), `${ip}/24`);
  t.ok(await pingsRouter(node), 'and the Node keeps reaching the router');
});
