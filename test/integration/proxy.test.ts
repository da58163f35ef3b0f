/**
 * AntreaProxy on one real Node (real OVS, real Pods through the real CNI plugin, the agent process
 * watching an embedded API server): a ClusterIP Service spreads 300 connections over its three
 * Endpoints; a removed Endpoint gets no new connection; a Service without Endpoints rejects at once;
 * a Pod reaches itself through its Service (hairpin); session affinity keeps a client on one
 * Endpoint; a NodePort answers on the Node's address from the Node's namespace; after an agent
 * restart, a Service deleted meanwhile leaves no flow or group behind and the others still work.
 */
import t from 'tap';
import { appendFileSync } from 'node:fs';
import { AgentNode } from '../helpers/agent-node.ts';
import { integrationSkipReason, runner } from '../helpers/env.ts';
import { ServiceHarness, serviceObject, sliceObject } from '../helpers/service-harness.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

const SVC = '/api/v1/namespaces/default/services';
const SLICES = '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices';

async function ofctl(node: AgentNode, cmd: string): Promise<string[]> {
  const out = await runner.run(
    'ovs-ofctl',
    ['-O', 'OpenFlow15', cmd, `unix:${node.ovs.bridgeMgmtSocketPath('br-int')}`],
    {
      timeoutMs: 30_000,
    },
  );
  return out.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('group_id=') || l.includes('cookie='));
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The number of buckets of the group ServiceLB uses for `ip`. */
async function buckets(node: AgentNode, ip: string): Promise<number | undefined> {
  const flow = (await ofctl(node, 'dump-flows')).find((f) => f.includes(`nw_dst=${ip},`) && f.includes('group:'));
  const id = /group:(\d+)/.exec(flow ?? '')?.[1];
  if (id === undefined) return undefined;
  const g = (await ofctl(node, 'dump-groups')).find((l) => l.startsWith(`group_id=${id},`));
  return g === undefined ? undefined : g.split('bucket=').length - 1;
}

t.test('ClusterIP, no-Endpoint reject, hairpin, affinity, NodePort and restart on one Node', async (t) => {
  const node = await AgentNode.create(t);
  const h = await ServiceHarness.create(t, node.ns);
  appendFileSync(
    node.configPath,
    `\nclientConnection:\n  kubeconfig: ${h.kubeconfig}\nantreaProxy:\n  proxyAll: true\n`,
  );
  await node.start();
  const [a, b, c, client] = [
    await h.serverPod(node, 'a'),
    await h.serverPod(node, 'b'),
    await h.serverPod(node, 'c'),
    await h.serverPod(node, 'client'),
  ];
  const pods = [a, b, c];

  await h.apply(SVC, serviceObject('web', '10.96.100.10'));
  await h.apply(SLICES, sliceObject('web', pods));
  await until('web has 3 buckets', async () => (await buckets(node, '10.96.100.10')) === 3);

  const spread = await h.connect(client.netns, '10.96.100.10', 80, 300);
  t.same(
    Object.keys(spread).sort(),
    ['a', 'b', 'c'],
    `300 connections reach all three Endpoints ${JSON.stringify(spread)}`,
  );
  for (const p of pods) t.ok((spread[p.name] ?? 0) >= 40, `${p.name} got ${spread[p.name]} of 300`);

  // Endpoint c removed: no new connection reaches it.
  await h.apply(SLICES, sliceObject('web', [a, b]), 'web-1');
  await until('web has 2 buckets', async () => (await buckets(node, '10.96.100.10')) === 2);
  const after = await h.connect(client.netns, '10.96.100.10', 80, 100);
  t.same(Object.keys(after).sort(), ['a', 'b'], `after removing c: ${JSON.stringify(after)}`);

  // No Endpoints: the agent answers with a RST at once.
  await h.apply(SVC, serviceObject('empty', '10.96.100.11'));
  await until('empty has its reject group', async () => (await buckets(node, '10.96.100.11')) === 1);
  const t0 = Date.now();
  const rejected = await h.connect(client.netns, '10.96.100.11', 80, 3, 5000);
  t.same(rejected, { ECONNREFUSED: 3 }, 'connection refused (TCP RST from the agent)');
  t.ok(Date.now() - t0 < 4000, 'without waiting for a timeout');

  // Hairpin: a reaches itself through its Service.
  await h.apply(SVC, serviceObject('self', '10.96.100.12'));
  await h.apply(SLICES, sliceObject('self', [a]));
  await until('self has 1 bucket', async () => (await buckets(node, '10.96.100.12')) === 1);
  t.same(await h.connect(a.netns, '10.96.100.12', 80, 5), { a: 5 }, 'hairpin: the Pod reaches itself');

  // Session affinity: one client, one Endpoint.
  await h.apply(
    SVC,
    serviceObject('sticky', '10.96.100.13', {
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } },
    }),
  );
  await h.apply(SLICES, sliceObject('sticky', pods));
  await until('sticky has 3 buckets', async () => (await buckets(node, '10.96.100.13')) === 3);
  const sticky = await h.connect(client.netns, '10.96.100.13', 80, 30);
  t.equal(Object.keys(sticky).length, 1, `affinity keeps the client on one Endpoint ${JSON.stringify(sticky)}`);
  t.ok(['a', 'b', 'c'].includes(Object.keys(sticky)[0] ?? ''));
  t.ok(
    (await ofctl(node, 'dump-flows')).some((f) => f.includes('hard_timeout=600') && f.includes(`nw_src=${client.ip}`)),
    'a learned flow for the client',
  );

  // NodePort on the Node's address, from the Node's namespace.
  await h.apply(
    SVC,
    serviceObject('np', '10.96.100.14', {
      type: 'NodePort',
      ports: [{ name: 'tcp', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30080 }],
    }),
  );
  await h.apply(SLICES, sliceObject('np', pods));
  await until('np has 3 buckets', async () => (await buckets(node, '10.96.100.14')) === 3);
  const { launcher } = await import('../helpers/env.ts');
  const caps = [];
  for (const [ns, dev, name] of [
    [b.netns.replace('/run/netns/', ''), 'eth0', 'b'],
    [node.ns, 'antrea-gw0', 'gw'],
    [c.netns.replace('/run/netns/', ''), 'eth0', 'c'],
  ]) {
    caps.push(
      await launcher.launch('ip', ['netns', 'exec', ns!, 'tcpdump', '-l', '-n', '-e', '-i', dev!, 'tcp or arp'], {
        logFile: `/tmp/cap-${name}.log`,
      }),
    );
  }
  await new Promise((r) => setTimeout(r, 1000));
  const np = await h.connect(node.ns, node.nodeIP, 30080, 30);
  await new Promise((r) => setTimeout(r, 500));
  for (const p of caps) process.kill(p.pid, 'SIGTERM');
  const ctd = await runner
    .run('ip', ['netns', 'exec', node.ns, 'conntrack', '-L'], { okExitCodes: [1, 2, 127] })
    .catch(() => ({ stdout: '' }));
  console.error('CONNTRACK', ctd.stdout);
  t.ok(
    Object.keys(np).every((k) => ['a', 'b', 'c'].includes(k)),
    `NodePort reaches the Endpoints ${JSON.stringify(np)}`,
  );
  t.ok(Object.keys(np).length >= 2, 'and spreads');

  // Restart with a Service deleted meanwhile: its flows and group are gone, the rest works.
  const groupsBefore = (await ofctl(node, 'dump-groups')).length;
  await node.stop();
  await h.remove(`${SVC}/sticky`);
  await node.start();
  await until('sticky gone', async () => !(await ofctl(node, 'dump-flows')).some((f) => f.includes('10.96.100.13')));
  await until('the previous round gone', async () => {
    const flows = await ofctl(node, 'dump-flows');
    return flows.every((f) => /cookie=0x2/.test(f));
  });
  t.equal((await ofctl(node, 'dump-groups')).length, groupsBefore - 1, 'one group fewer: no stale group');
  const again = await h.connect(client.netns, '10.96.100.10', 80, 30);
  t.same(Object.keys(again).sort(), ['a', 'b'], 'web works after the restart');
  t.same(await h.connect(client.netns, '10.96.100.11', 80, 1, 5000), { ECONNREFUSED: 1 }, 'empty still rejects');
});
