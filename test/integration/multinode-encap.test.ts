/**
 * Three Nodes in encap mode (Node 3 in another underlay subnet, reached through the router): Pods
 * reach each other across Nodes over TCP and UDP through the tunnel (Geneve, VXLAN, GRE; the
 * router knows no Pod CIDR, so nothing but the tunnel can carry them), a 10 MB TCP transfer
 * succeeds with the Pod MTU derived for each tunnel type, Pods reach an external host as their
 * Node's address (masquerade), the userspace datapath's uplink bridge carries the Node address,
 * and a deleted Node leaves no flow, route or set entry behind and comes back when re-added.
 */
import t, { type Test } from 'tap';
import { integrationSkipReason } from '../helpers/env.ts';
import { Cluster, EXTERNAL_HOST, type ClusterPod } from '../helpers/multinode.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

const PORT = 8080;
const MB10 = 10 * 1024 * 1024;
const MTU: Record<string, number> = { geneve: 1450, vxlan: 1450, gre: 1458 };

async function podMtu(c: Cluster, pod: ClusterPod): Promise<number> {
  const out = await c.exec(pod.netns.replace('/run/netns/', ''), 'cat', ['/sys/class/net/eth0/mtu']);
  return Number(out.trim());
}

async function checkPair(t: Test, c: Cluster, from: ClusterPod, to: ClusterPod, big: boolean): Promise<void> {
  const ns = from.netns.replace('/run/netns/', '');
  const tcp = await c.reach(ns, 'tcp', to.ip, PORT);
  t.equal(tcp?.peer, from.ip, `${from.name} → ${to.name} over TCP, source kept`);
  const udp = await c.reach(ns, 'udp', to.ip, PORT, 1200);
  t.same(udp, { peer: from.ip, bytes: 1200 }, `${from.name} → ${to.name} over UDP`);
  if (big) {
    const r = await c.send(ns, 'tcp', to.ip, PORT, MB10);
    t.equal(r?.bytes, MB10, `${from.name} → ${to.name}: 10 MB over TCP`);
  }
}

t.test('geneve: three Nodes, two subnets, external traffic, Node removal', async (t) => {
  const c = await Cluster.create(t, {
    trafficEncapMode: 'encap',
    tunnelType: 'geneve',
    nodes: [{ subnet: 'a' }, { subnet: 'a' }, { subnet: 'b' }],
  });
  await c.startAgents();
  const [n1, n2, n3] = c.nodes;
  if (n1 === undefined || n2 === undefined || n3 === undefined) throw new Error('three nodes');
  const pods = [await c.addPod(n1, 'web-1'), await c.addPod(n2, 'web-2'), await c.addPod(n3, 'web-3')];
  for (const p of pods) await c.serve(p.netns.replace('/run/netns/', ''), PORT);
  const [p1, p2, p3] = pods as [ClusterPod, ClusterPod, ClusterPod];
  t.equal(await podMtu(c, p1), MTU['geneve'], 'Pod MTU = uplink MTU - 50 (Geneve)');

  // The uplink bridge: the Node address lives on br-phy, OVS routes and resolves tunnels there.
  const addr = await c.exec(n1.ns, 'ip', ['-br', 'addr', 'show', 'br-phy']);
  t.match(addr, n1.nodeIP, 'the Node IP moved to br-phy');
  t.match(await c.exec(n1.ns, 'ip', ['route', 'show', 'default']), /dev br-phy/, 'the default route moved too');
  const ovsRoutes = await c.exec(n1.ns, 'ovs-appctl', [`--target=${n1.ovs.runDir}/ovs-vswitchd.ctl`, 'ovs/route/show']);
  t.match(ovsRoutes, /192\.0\.2\.0\/24 dev br-phy/, 'OVS routes the underlay through br-phy');

  await Cluster.until('Node flows on node-1', async () => (await n1.flows()).some((f) => f.includes(`tun_dst`)));
  await checkPair(t, c, p1, p2, true);
  await checkPair(t, c, p2, p1, false);
  await checkPair(t, c, p1, p3, true);
  await checkPair(t, c, p3, p2, false);
  const arp = await c.exec(n1.ns, 'ovs-appctl', [`--target=${n1.ovs.runDir}/ovs-vswitchd.ctl`, 'tnl/arp/show']);
  t.match(arp, n2.nodeIP, 'OVS resolved the tunnel next hop to node-2');

  // Node flows and host routes on node-1 for node-3.
  const flows = (await n1.flows()).join('\n');
  t.match(flows, `nw_dst=10.10.3.0/24 actions=set_field:`, 'L3Forwarding to node-3 Pod CIDR');
  t.match(flows, `set_field:${n3.nodeIP}->tun_dst`, 'tunnel to node-3');
  t.match(flows, /arp_tpa=10\.10\.3\.1,arp_op=1/, 'ARP responder for node-3 gateway');
  t.match((await c.routes(n1)).join('\n'), /10\.10\.3\.0\/24 via 10\.10\.3\.1 dev antrea-gw0 proto 145 onlink/);
  t.match(await c.exec(n1.ns, 'ipset', ['list', 'ANTREA-POD-IP']), /10\.10\.3\.0\/24/);

  // External traffic: masqueraded to the Node address.
  await c.serve(c.external, PORT);
  const ext = await c.reach(p1.netns.replace('/run/netns/', ''), 'tcp', EXTERNAL_HOST, PORT);
  t.equal(ext?.peer, n1.nodeIP, 'the external host sees node-1 address');
  const ext3 = await c.reach(p3.netns.replace('/run/netns/', ''), 'udp', EXTERNAL_HOST, PORT);
  t.equal(ext3?.peer, n3.nodeIP, 'UDP from node-3 Pod seen as node-3');
  t.match(
    await c.exec(n1.ns, 'iptables', ['-t', 'nat', '-S', 'ANTREA-POSTROUTING']),
    /Antrea: masquerade Pod to external packets/,
  );

  // Node removal: nothing left on node-1, traffic to node-3 stops; re-added: works again.
  await c.deleteNodeObject(n3);
  await Cluster.until('node-3 flows gone', async () => !(await n1.flows()).some((f) => f.includes('10.10.3.')));
  t.notMatch((await c.routes(n1)).join('\n'), /10\.10\.3\.0/, 'no route left for node-3');
  t.notMatch(await c.exec(n1.ns, 'ipset', ['list', 'ANTREA-POD-IP']), /10\.10\.3\.0/, 'no set entry left');
  t.equal(await c.send(p1.netns.replace('/run/netns/', ''), 'udp', p3.ip, PORT, 4), undefined, 'node-3 unreachable');
  await c.createNodeObject(n3);
  await Cluster.until('node-3 flows back', async () => (await n1.flows()).some((f) => f.includes('10.10.3.0/24')));
  await checkPair(t, c, p1, p3, false);
  for (const n of c.nodes) t.same(await n.violations(), [], `${n.nodeName} consistent`);
});

for (const tunnel of ['vxlan', 'gre'] as const) {
  t.test(`${tunnel}: two Nodes in two subnets, TCP, UDP and 10 MB`, async (t) => {
    const c = await Cluster.create(t, {
      trafficEncapMode: 'encap',
      tunnelType: tunnel,
      nodes: [{ subnet: 'a' }, { subnet: 'b' }],
    });
    await c.startAgents();
    const [n1, n2] = c.nodes as [NonNullable<(typeof c.nodes)[0]>, NonNullable<(typeof c.nodes)[0]>];
    const p1 = await c.addPod(n1, 'web-1');
    const p2 = await c.addPod(n2, 'web-2');
    for (const p of [p1, p2]) await c.serve(p.netns.replace('/run/netns/', ''), PORT);
    t.equal(await podMtu(c, p1), MTU[tunnel], `Pod MTU for ${tunnel}`);
    t.match(
      await c.exec(n1.ns, 'ovs-vsctl', [`--db=${n1.ovs.dbEndpoint}`, 'get', 'Interface', 'antrea-tun0', 'type']),
      tunnel,
    );
    await Cluster.until('Node flows', async () => (await n1.flows()).some((f) => f.includes('tun_dst')));
    await checkPair(t, c, p1, p2, true);
    await checkPair(t, c, p2, p1, true);
  });
}
