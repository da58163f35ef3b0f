/**
 * Crash safety of the agent (reliability.md §6.3 S1 and S6): `kill -9` at every named step of a CNI
 * ADD (ANTREA_CRASH_POINT), then a restart, must leave a consistent Node (every Pod port with its
 * veth, flows and IP; no leaked IP, port, veth or pending record); the runtime's retried ADD then
 * succeeds and the Pod works. A killed idle agent leaves running Pods working, and its restart
 * keeps their IPs, replays their flows in a new cookie round and removes the old round. Leaks made
 * while the agent is down (a reservation without a Pod, a port without a veth) are cleaned at
 * restart, never an IP still in use.
 */
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CNI_ADD_CRASH_POINTS } from '../../src/common/agent/cniserver/server.ts';
import { AgentNode, type PodRef } from '../helpers/agent-node.ts';
import { integrationSkipReason, runner, uniqueName } from '../helpers/env.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

async function pings(node: AgentNode, netns: string, ip: string): Promise<boolean> {
  const r = await node.inPod(netns, 'ping', ['-c', '1', '-W', '2', '-q', ip], [1]);
  return r.exitCode === 0;
}

function roundsOf(flows: readonly string[]): Set<number> {
  const rounds = new Set<number>();
  for (const f of flows) {
    const m = /cookie=0x([0-9a-f]+)/.exec(f);
    if (m !== null) rounds.add(Number(BigInt(`0x${m[1]}`) >> 48n));
  }
  return rounds;
}

t.test('kill -9 at every step of ADD, then a restart, leaves a consistent Node', async (t) => {
  const node = await AgentNode.create(t);
  await node.start();
  // A Pod that must survive all of this untouched.
  const keeper: PodRef = { containerId: uniqueName('keep'), netns: await node.podNetns(t), name: 'keeper' };
  const kept = await node.cni('ADD', keeper);
  t.equal(kept.exitCode, 0);
  const keeperIp = ((kept.json?.['ips'] as { address: string }[])[0]?.address ?? '').split('/')[0] ?? '';
  await node.stop();

  for (const point of CNI_ADD_CRASH_POINTS) {
    await t.test(point, async (t) => {
      await node.start({ crashPoint: point });
      const pod: PodRef = {
        containerId: uniqueName('crash'),
        netns: await node.podNetns(t),
        name: `p-${point.slice(8, 16)}`,
      };
      const r = await node.cni('ADD', pod);
      t.equal(r.exitCode, 1, 'the ADD fails');
      t.equal(r.json?.['code'], 11, `the runtime is told to try again later (${String(r.json?.['msg'])})`);
      await node.exited();
      t.notOk(node.pid, 'the agent died at the crash point');
      const partial = await node.violations();
      if (point === 'cni-add-committed') t.same(partial, [], 'a committed ADD is complete even before the restart');
      else t.ok(partial.length > 0, `the crash left a partial ADD: ${partial.join('; ')}`);

      await node.start();
      t.same(await node.violations(), [], 'after the restart the Node is consistent');
      const eth0 = await node.inPod(pod.netns, 'ip', ['-o', 'addr', 'show', 'dev', 'eth0'], [1]);
      if (point === 'cni-add-committed') {
        t.equal(eth0.exitCode, 0, 'an ADD that completed before the crash is kept');
      } else {
        t.equal(eth0.exitCode, 1, 'an ADD that never completed is rolled back inside the Pod too');
      }
      const retry = await node.cni('ADD', pod);
      t.equal(retry.exitCode, 0, `the retried ADD succeeds: ${retry.stdout}`);
      const ip = ((retry.json?.['ips'] as { address: string }[])[0]?.address ?? '').split('/')[0] ?? '';
      t.ok(await pings(node, pod.netns, node.gatewayIP), 'the Pod reaches the gateway');
      t.ok(await pings(node, pod.netns, keeperIp), 'and the Pod that was there before');
      t.not(ip, keeperIp, 'no IP is handed out twice');
      t.same(await node.violations(), []);
      t.equal((await node.cni('DEL', pod)).exitCode, 0);
      t.same(await node.violations(), []);
      t.same([...node.reservations().keys()], [keeperIp], 'only the keeper holds an IP');
      await node.stop();
    });
  }
});

t.test(
  'an agent killed while idle: Pods keep working; the restart keeps their IPs and replaces the flow round',
  async (t) => {
    const node = await AgentNode.create(t);
    await node.start();
    const pods: (PodRef & { ip: string })[] = [];
    for (const name of ['a', 'b']) {
      const p: PodRef = { containerId: uniqueName('idle'), netns: await node.podNetns(t), name };
      const r = await node.cni('ADD', p);
      pods.push({ ...p, ip: ((r.json?.['ips'] as { address: string }[])[0]?.address ?? '').split('/')[0] ?? '' });
    }
    const [a, b] = pods as [PodRef & { ip: string }, PodRef & { ip: string }];
    const before = roundsOf(await node.flows());
    t.equal(before.size, 1, 'one flow round');
    await node.kill('SIGKILL');
    t.ok(await pings(node, a.netns, b.ip), 'Pods talk while the agent is dead');

    // Leaks made while the agent is down: a reservation with no Pod, a Pod port with no veth.
    const net = join(node.stateDir, 'networks', 'antrea');
    mkdirSync(net, { recursive: true });
    writeFileSync(join(net, '10.10.1.200'), 'ghost\r\neth0');
    await runner.run('ovs-vsctl', [
      `--db=${node.ovs.dbEndpoint}`,
      'add-port',
      'br-int',
      'orphan-0000',
      '--',
      'set',
      'Port',
      'orphan-0000',
      'external_ids:antrea-type=container',
      'external_ids:container-id=orphan',
      'external_ids:ip-address=10.10.1.201',
    ]);

    await node.start();
    t.same(await node.violations(), [], 'the leaks are cleaned');
    t.notOk((await node.ports()).includes('orphan-0000'), 'the orphan port is gone');
    t.notOk(node.reservations().has('10.10.1.200'), 'the leaked IP is released');
    t.same([...node.reservations().keys()].sort(), [a.ip, b.ip].sort(), 'the live Pods keep their IPs');
    const after = roundsOf(await node.flows());
    t.equal(after.size, 1, 'only one round is left');
    t.equal([...after][0], [...before][0]! + 1, 'the new round');
    t.ok(await pings(node, a.netns, b.ip), 'Pods still talk, now through the replayed flows');
    const c: PodRef = { containerId: uniqueName('idle'), netns: await node.podNetns(t), name: 'c' };
    const rc = await node.cni('ADD', c);
    const cIp = ((rc.json?.['ips'] as { address: string }[])[0]?.address ?? '').split('/')[0] ?? '';
    t.notOk([a.ip, b.ip].includes(cIp), "a Pod created after the restart does not get a live Pod's IP");
    t.ok(await pings(node, c.netns, a.ip));
    for (const p of [a, b, c]) t.equal((await node.cni('DEL', p)).exitCode, 0);
    t.same(await node.violations(), []);
  },
);

t.test('a DEL while the agent is down is retried by the runtime and then succeeds', async (t) => {
  const node = await AgentNode.create(t);
  await node.start({ crashPoint: 'cni-add-interface-done' });
  const pod: PodRef = { containerId: uniqueName('del'), netns: await node.podNetns(t), name: 'd' };
  t.equal((await node.cni('ADD', pod)).json?.['code'], 11);
  await node.exited();
  const down = await node.cni('DEL', pod);
  t.equal(down.json?.['code'], 11, 'DEL while the agent is down: try again later');
  await node.start();
  t.equal((await node.cni('DEL', pod)).exitCode, 0);
  t.same(await node.violations(), []);
  t.same([...node.reservations().keys()], []);
});
