/**
 * AntreaProxy on one real Node (real OVS, real Pods through the real CNI plugin, the agent process
 * watching an embedded API server): a ClusterIP Service spreads 300 connections over its three
 * Endpoints; a removed Endpoint gets no new connection; a Service without Endpoints rejects at once;
 * a Pod reaches itself through its Service (hairpin); session affinity keeps a client on one
 * Endpoint; a NodePort answers on the Node's address from the Node's namespace and from an external
 * namespace on its uplink; traffic policies Local keep to local Endpoints (internal: ClusterIP;
 * external: NodePort from outside); the lab's EndpointSlice controller drops a Pod that is not
 * ready; after an agent restart, a Service deleted meanwhile leaves no flow or group behind and the others still work.
 */
import t from 'tap';
import { appendFileSync } from 'node:fs';
import { AgentNode } from '../helpers/agent-node.ts';
import { integrationSkipReason, runner, tempNetns } from '../helpers/env.ts';
import { ServiceHarness, serviceObject, sliceObject } from '../helpers/service-harness.ts';
import { until } from '../helpers/wait.ts';

/** Writes a Pod's status as a kubelet would: its IP and Ready condition. */
async function setReady(h: ServiceHarness, name: string, ip: string, ready: boolean): Promise<void> {
  const cur = await h.get(`/api/v1/namespaces/default/pods/${name}`);
  await h.apply(
    '/api/v1/namespaces/default/pods',
    {
      ...cur,
      status: {
        phase: 'Running',
        podIP: ip,
        podIPs: [{ ip }],
        conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
      },
    },
    `${name}/status`,
  );
}

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

/** The number of buckets of the group ServiceLB uses for `ip`. */
/** The buckets of the select group the Service IP's flow points to (undefined: no flow or group yet). */
async function groupBuckets(node: AgentNode, ip: string): Promise<string[] | undefined> {
  const flow = (await ofctl(node, 'dump-flows')).find((f) => f.includes(`nw_dst=${ip},`) && f.includes('group:'));
  const id = /group:(\d+)/.exec(flow ?? '')?.[1];
  if (id === undefined) return undefined;
  const g = (await ofctl(node, 'dump-groups')).find((l) => l.startsWith(`group_id=${id},`));
  return g?.split('bucket=').slice(1);
}

/**
 * How many Endpoint buckets (those loading the Endpoint's IP into reg3) the Service's group has; a
 * Service without Endpoints has one reject bucket and counts 0, so waiting for N Endpoints cannot be
 * satisfied by the reject group of a Service whose EndpointSlice is not processed yet.
 */
async function buckets(node: AgentNode, ip: string): Promise<number | undefined> {
  return (await groupBuckets(node, ip))?.filter((b) => b.includes('->reg3')).length;
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
  await until('empty has its reject group', async () => {
    const b = await groupBuckets(node, '10.96.100.11');
    return b?.length === 1 && !b[0]!.includes('->reg3');
  });
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
  // The first connection selects an Endpoint and teaches OVS (learn); once the learned flow is
  // in place (OVS applies it to its datapath caches asynchronously), every connection sticks to it.
  const first = Object.keys(await h.connect(client.netns, '10.96.100.13', 80, 1))[0] ?? '';
  t.ok(['a', 'b', 'c'].includes(first), `first connection to ${first}`);
  await until('the learned flow', async () =>
    (await ofctl(node, 'dump-flows')).some((f) => f.includes('hard_timeout=600') && f.includes(`nw_src=${client.ip}`)),
  );
  await new Promise((r) => setTimeout(r, 200));
  const sticky = await h.connect(client.netns, '10.96.100.13', 80, 30);
  t.same(sticky, { [first]: 30 }, `affinity keeps the client on one Endpoint ${JSON.stringify(sticky)}`);

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

  // NodePort from outside: a namespace on the Node's uplink (the other end of its veth).
  const ext = await tempNetns(t, 'ext-');
  await runner.run('ip', ['-n', node.ns, 'link', 'set', 'uplink-peer', 'netns', ext]);
  await runner.run('ip', ['-n', ext, 'addr', 'add', '192.0.2.99/24', 'dev', 'uplink-peer']);
  await runner.run('ip', ['-n', ext, 'link', 'set', 'uplink-peer', 'up']);
  await runner.run('ip', ['-n', ext, 'link', 'set', 'lo', 'up']);
  const outside = await h.connect(ext, node.nodeIP, 30080, 30);
  t.ok(
    Object.keys(outside).every((k) => ['a', 'b', 'c'].includes(k)) && Object.keys(outside).length >= 2,
    `NodePort from the external namespace ${JSON.stringify(outside)}`,
  );

  // Traffic policies Local: c is listed on another Node (node-2), so only a and b are local.
  const split = (svc: string): Record<string, unknown> => {
    const slice = sliceObject(svc, pods);
    const eps = slice['endpoints'] as { nodeName: string }[];
    if (eps[2] !== undefined) eps[2].nodeName = 'node-2';
    return slice;
  };
  await h.apply(SVC, serviceObject('itp', '10.96.100.16', { internalTrafficPolicy: 'Local' }));
  await h.apply(SLICES, split('itp'));
  await until('itp has its local group', async () => (await buckets(node, '10.96.100.16')) === 2);
  const itp = await h.connect(client.netns, '10.96.100.16', 80, 60);
  t.same(
    Object.keys(itp).sort(),
    ['a', 'b'],
    `internalTrafficPolicy Local: local Endpoints only ${JSON.stringify(itp)}`,
  );
  await h.apply(
    SVC,
    serviceObject('etp', '10.96.100.17', {
      type: 'NodePort',
      externalTrafficPolicy: 'Local',
      ports: [{ name: 'tcp', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30081 }],
    }),
  );
  await h.apply(SLICES, split('etp'));
  await until('etp has 3 buckets', async () => (await buckets(node, '10.96.100.17')) === 3);
  const etpOut = await h.connect(ext, node.nodeIP, 30081, 60);
  t.same(
    Object.keys(etpOut).sort(),
    ['a', 'b'],
    `externalTrafficPolicy Local from outside: local Endpoints ${JSON.stringify(etpOut)}`,
  );
  const etpIn = await h.connect(client.netns, '10.96.100.17', 80, 60);
  t.same(
    Object.keys(etpIn).sort(),
    ['a', 'b', 'c'],
    `its ClusterIP still reaches every Endpoint ${JSON.stringify(etpIn)}`,
  );

  // Readiness through the lab's EndpointSlice controller: Pod objects with a selector Service.
  const PODS = '/api/v1/namespaces/default/pods';
  for (const p of pods) {
    await h.apply(PODS, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p.name, namespace: 'default', labels: { app: 'ready-test' } },
      spec: { nodeName: 'node-1', containers: [{ name: 'srv', image: 'none' }] },
    });
    await setReady(h, p.name, p.ip, true);
  }
  await h.apply(SVC, {
    ...serviceObject('sel', '10.96.100.15'),
    spec: {
      type: 'ClusterIP',
      clusterIP: '10.96.100.15',
      selector: { app: 'ready-test' },
      ports: [{ name: 'tcp', port: 80, targetPort: 8080 }],
    },
  });
  await until(
    'sel has 3 buckets (slices made by the controller)',
    async () => (await buckets(node, '10.96.100.15')) === 3,
  );
  await setReady(h, 'b', b.ip, false);
  await until('sel has 2 buckets once b is not ready', async () => (await buckets(node, '10.96.100.15')) === 2);
  const ready = await h.connect(client.netns, '10.96.100.15', 80, 60);
  t.same(Object.keys(ready).sort(), ['a', 'c'], `a Pod that is not ready gets no connection ${JSON.stringify(ready)}`);

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
