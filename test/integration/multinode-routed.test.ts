/**
 * Three Nodes in noEncap and hybrid modes over two underlay subnets (node-1 and node-2 in
 * 192.0.2.0/24, node-3 in 198.51.100.0/24):
 * - noEncap: host routes to the same-subnet peer via its Node IP, nothing for the other subnet (the
 *   router plays an underlay that routes Pod CIDRs); no tunnel port; noSNAT on node-3 lets the
 *   external host see the Pod address, masquerade on node-1 shows the Node address.
 * - hybrid: node-1 ↔ node-2 routed directly (the router knows no Pod CIDR, so only the direct
 *   route can carry it), node-1 ↔ node-3 through the Geneve tunnel.
 * TCP and UDP between Pods in every case.
 */
import t, { type Test } from 'tap';
import { integrationSkipReason } from '../helpers/env.ts';
import { Cluster, EXTERNAL_HOST, type ClusterPod } from '../helpers/multinode.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

const PORT = 8080;
const ns = (p: ClusterPod): string => p.netns.replace('/run/netns/', '');

async function checkPair(t: Test, c: Cluster, from: ClusterPod, to: ClusterPod): Promise<void> {
  const tcp = await c.reach(ns(from), 'tcp', to.ip, PORT);
  t.equal(tcp?.peer, from.ip, `${from.name} → ${to.name} over TCP, source kept`);
  const udp = await c.reach(ns(from), 'udp', to.ip, PORT, 1000);
  t.same(udp, { peer: from.ip, bytes: 1000 }, `${from.name} → ${to.name} over UDP`);
}

async function setup(c: Cluster): Promise<ClusterPod[]> {
  await c.startAgents();
  const pods: ClusterPod[] = [];
  for (const [i, n] of c.nodes.entries()) pods.push(await c.addPod(n, `web-${i + 1}`));
  for (const p of pods) await c.serve(ns(p), PORT);
  return pods;
}

t.test('noEncap: direct routes, underlay routing, noSNAT', async (t) => {
  const c = await Cluster.create(t, {
    trafficEncapMode: 'noEncap',
    nodes: [{ subnet: 'a' }, { subnet: 'a' }, { subnet: 'b', extraConfig: 'noSNAT: true' }],
    routerRoutesPods: true,
  });
  const [p1, p2, p3] = (await setup(c)) as [ClusterPod, ClusterPod, ClusterPod];
  const [n1, n2, n3] = c.nodes as [ClusterPod['node'], ClusterPod['node'], ClusterPod['node']];
  await Cluster.until('routes on node-1', async () => (await c.routes(n1)).some((r) => r.startsWith('10.10.2.0/24')));
  const routes = (await c.routes(n1)).join('\n');
  t.match(routes, `10.10.2.0/24 via ${n2.nodeIP} dev uplink proto 145`, 'node-2 routed via its Node IP');
  t.notMatch(routes, /10\.10\.3\.0/, 'node-3 (other subnet) left to the underlay');
  t.notOk((await n1.ports()).includes('antrea-tun0'), 'no tunnel port');
  t.notMatch((await n1.flows()).join('\n'), /tun_dst/, 'no tunnel flows');
  t.equal(await podMtuOf(c, p1), 1500, 'Pod MTU = uplink MTU');
  await checkPair(t, c, p1, p2);
  await checkPair(t, c, p2, p1);
  await checkPair(t, c, p1, p3);
  await checkPair(t, c, p3, p2);

  await c.serve(c.external, PORT);
  t.equal((await c.reach(ns(p1), 'tcp', EXTERNAL_HOST, PORT))?.peer, n1.nodeIP, 'node-1 masquerades');
  t.equal((await c.reach(ns(p3), 'tcp', EXTERNAL_HOST, PORT))?.peer, p3.ip, 'noSNAT on node-3: the Pod address');
  t.notMatch(
    await c.exec(n3.ns, 'iptables', ['-t', 'nat', '-S', 'ANTREA-POSTROUTING']),
    /masquerade Pod to external/,
    'no masquerade rule with noSNAT',
  );
});

t.test('hybrid: direct in the subnet, tunnel across subnets', async (t) => {
  const c = await Cluster.create(t, {
    trafficEncapMode: 'hybrid',
    tunnelType: 'geneve',
    nodes: [{ subnet: 'a' }, { subnet: 'a' }, { subnet: 'b' }],
  });
  const [p1, p2, p3] = (await setup(c)) as [ClusterPod, ClusterPod, ClusterPod];
  const [n1, n2, n3] = c.nodes as [ClusterPod['node'], ClusterPod['node'], ClusterPod['node']];
  await Cluster.until('Node flows on node-1', async () => (await n1.flows()).some((f) => f.includes('tun_dst')));
  const routes = (await c.routes(n1)).join('\n');
  t.match(routes, `10.10.2.0/24 via ${n2.nodeIP} dev br-phy proto 145`, 'node-2: direct route');
  t.match(routes, '10.10.3.0/24 via 10.10.3.1 dev antrea-gw0 proto 145 onlink', 'node-3: through the gateway');
  const flows = (await n1.flows()).join('\n');
  t.match(flows, `set_field:${n3.nodeIP}->tun_dst`, 'node-3 tunneled');
  t.notMatch(flows, `set_field:${n2.nodeIP}->tun_dst`, 'node-2 not tunneled');
  await checkPair(t, c, p1, p2);
  await checkPair(t, c, p2, p1);
  await checkPair(t, c, p1, p3);
  await checkPair(t, c, p3, p1);
  await checkPair(t, c, p3, p2);
});

async function podMtuOf(c: Cluster, p: ClusterPod): Promise<number> {
  return Number((await c.exec(ns(p), 'cat', ['/sys/class/net/eth0/mtu'])).trim());
}
