/**
 * The multi-node logic without a kernel: the iptables-restore and ipset texts (golden), the
 * traffic-mode decisions, the remote Node flows (golden), the NodeRoute controller over a static
 * Node source with recording flow and route clients (install, update, delete, local Node, retry,
 * networkPolicyOnly) and the periodic resync on an injected clock.
 */
import t from 'tap';
import { NodeRouteController, runRouteSync, type NodeFlowClient } from '../../src/common/agent/noderoute/controller.ts';
import { peerNodeOf, StaticNodeSource } from '../../src/common/agent/noderoute/node-source.ts';
import { CookieAllocator } from '../../src/common/agent/openflow/cookie.ts';
import { RealizedPipeline } from '../../src/common/agent/openflow/framework.ts';
import { PodConnectivityFeature, type PeerNodeFlowTarget } from '../../src/common/agent/openflow/pod-connectivity.ts';
import {
  needsTunnelToPeer,
  peerRouteKind,
  type PeerRoute,
  type RouteClient,
  type RouteConfig,
} from '../../src/common/host/routes.ts';
import { Backoff } from '../../src/common/util/backoff.ts';
import { ipsetRestoreInput, iptablesRestoreInput } from '../../src/platform/linux/routes.ts';
import { FakeClock, flushMicrotasks } from '../helpers/fake-clock.ts';

const cfg: RouteConfig = {
  trafficEncapMode: 'encap',
  noSNAT: false,
  snatFullyRandomPorts: false,
  gatewayName: 'antrea-gw0',
  localPodCIDRs: ['10.10.1.0/24'],
  tunnelType: 'geneve',
  tunnelPort: 6081,
};

t.test('iptables-restore input (golden)', (t) => {
  t.equal(
    iptablesRestoreInput(cfg, 4),
    `*raw
:ANTREA-PREROUTING - [0:0]
:ANTREA-OUTPUT - [0:0]
-A ANTREA-PREROUTING -m comment --comment "Antrea: do not track incoming encapsulation packets" -p udp -m udp --dport 6081 -m addrtype --dst-type LOCAL -j NOTRACK
-A ANTREA-OUTPUT -m comment --comment "Antrea: do not track outgoing encapsulation packets" -p udp -m udp --dport 6081 -m addrtype --src-type LOCAL -j NOTRACK
COMMIT
*mangle
:ANTREA-PREROUTING - [0:0]
:ANTREA-OUTPUT - [0:0]
-A ANTREA-OUTPUT -m comment --comment "Antrea: mark LOCAL output packets" -m addrtype --src-type LOCAL -o antrea-gw0 -j MARK --or-mark 0x80000000
COMMIT
*filter
:ANTREA-FORWARD - [0:0]
-A ANTREA-FORWARD -m comment --comment "Antrea: accept packets from local Pods" -i antrea-gw0 -j ACCEPT
-A ANTREA-FORWARD -m comment --comment "Antrea: accept packets to local Pods" -o antrea-gw0 -j ACCEPT
COMMIT
*nat
:ANTREA-POSTROUTING - [0:0]
-A ANTREA-POSTROUTING -m comment --comment "Antrea: masquerade Pod to external packets" -s 10.10.1.0/24 -m set ! --match-set ANTREA-POD-IP dst ! -o antrea-gw0 -j MASQUERADE
-A ANTREA-POSTROUTING -m comment --comment "Antrea: masquerade LOCAL traffic" -o antrea-gw0 -m addrtype ! --src-type LOCAL --limit-iface-out -m addrtype --src-type LOCAL -j MASQUERADE
COMMIT
`,
  );
  const noSnat = iptablesRestoreInput({ ...cfg, trafficEncapMode: 'noEncap', noSNAT: true }, 4);
  t.notMatch(noSnat, /masquerade Pod to external/, 'noSNAT: no Pod masquerade');
  t.notMatch(noSnat, /NOTRACK/, 'noEncap: no tunnel rules');
  t.match(
    iptablesRestoreInput({ ...cfg, snatFullyRandomPorts: true }, 4),
    /MASQUERADE --random-fully\n/,
    'random-fully',
  );
  t.notMatch(iptablesRestoreInput({ ...cfg, tunnelType: 'gre', tunnelPort: 0 }, 4), /NOTRACK/, 'gre: no port rule');
  t.match(
    iptablesRestoreInput({ ...cfg, localPodCIDRs: ['fd00:10:1::/64'] }, 6),
    /-s fd00:10:1::\/64 -m set ! --match-set ANTREA-POD-IP6 dst/,
  );
  t.equal(
    ipsetRestoreInput(4, ['10.10.1.0/24', '10.10.2.0/24']),
    'create ANTREA-POD-IP hash:net family inet hashsize 1024 maxelem 65536\nadd ANTREA-POD-IP 10.10.1.0/24\nadd ANTREA-POD-IP 10.10.2.0/24\n',
  );
  t.end();
});

t.test('traffic modes decide tunnel, direct or underlay', (t) => {
  const local = ['192.0.2.11/24'];
  t.ok(needsTunnelToPeer('encap', '192.0.2.12', local));
  t.notOk(needsTunnelToPeer('noEncap', '198.51.100.13', local));
  t.notOk(needsTunnelToPeer('hybrid', '192.0.2.12', local));
  t.ok(needsTunnelToPeer('hybrid', '198.51.100.13', local));
  t.equal(peerRouteKind('encap', '192.0.2.12', local), 'tunnel');
  t.equal(peerRouteKind('noEncap', '192.0.2.12', local), 'direct');
  t.equal(peerRouteKind('noEncap', '198.51.100.13', local), 'none');
  t.equal(peerRouteKind('hybrid', '192.0.2.12', local), 'direct');
  t.equal(peerRouteKind('hybrid', '198.51.100.13', local), 'tunnel');
  t.equal(peerRouteKind('networkPolicyOnly', '192.0.2.12', local), 'none');
  t.end();
});

t.test('remote Node flows (golden)', (t) => {
  const cookies = new CookieAllocator(3);
  const gateway = { ofport: 32769, mac: '0a:00:00:00:00:01', ips: ['10.10.1.1'] };
  const f = new PodConnectivityFeature({ cookies, gateway, tunnel: { ofport: 32768 }, podCIDRs: ['10.10.1.0/24'] });
  const p = new RealizedPipeline([f]);
  const peer: PeerNodeFlowTarget = { name: 'node-2', podCIDRs: ['10.10.2.0/24'], nodeIP: '192.0.2.12', tunnel: true };
  t.equal(
    f.nodeFlows(p, peer).map(String).join('\n'),
    [
      'cookie=0x3010000000000, table=2, priority=200,arp,arp_tpa=10.10.2.1,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:aa:bb:cc:dd:ee:ff->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:aa:bb:cc:dd:ee:ff->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.10.2.1->arp_spa,IN_PORT',
      'cookie=0x3010000000000, table=7, priority=200,ip,nw_dst=10.10.2.0/24 actions=set_field:0a:00:00:00:00:01->eth_src,set_field:aa:bb:cc:dd:ee:ff->eth_dst,set_field:192.0.2.12->tun_dst,set_field:0x10/0xf0->reg0,goto_table:8',
    ].join('\n'),
  );
  t.match(
    f
      .nodeFlows(p, { ...peer, tunnel: false })
      .map(String)
      .join('\n'),
    'nw_dst=10.10.2.0/24 actions=set_field:0a:00:00:00:00:01->eth_dst,set_field:0x20/0xf0->reg0,goto_table:8',
    'routed: to the gateway',
  );
  const noTunnel = new PodConnectivityFeature({ cookies, gateway, podCIDRs: ['10.10.1.0/24'] });
  t.throws(() => noTunnel.nodeFlows(new RealizedPipeline([noTunnel]), peer), { name: 'ValidationError' });
  t.end();
});

class RecordingFlows implements NodeFlowClient {
  readonly calls: string[] = [];
  failNext = 0;
  installNodeFlows(peer: PeerNodeFlowTarget): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      return Promise.reject(new Error('bundle failed'));
    }
    this.calls.push(`flows ${peer.name} ${peer.podCIDRs.join(',')} ${peer.tunnel ? `tun_dst=${peer.nodeIP}` : 'gw'}`);
    return Promise.resolve();
  }
  uninstallNodeFlows(name: string): Promise<void> {
    this.calls.push(`unflows ${name}`);
    return Promise.resolve();
  }
}

class RecordingRoutes implements RouteClient {
  readonly calls: string[];
  constructor(calls: string[]) {
    this.calls = calls;
  }
  initialize(): Promise<void> {
    return Promise.resolve();
  }
  addRoutes(p: PeerRoute): Promise<void> {
    this.calls.push(`route ${p.podCIDR} ${p.via} ${p.nodeIP} gw=${p.peerGatewayIP}`);
    return Promise.resolve();
  }
  deleteRoutes(c: string): Promise<void> {
    this.calls.push(`unroute ${c}`);
    return Promise.resolve();
  }
  reconcile(d: readonly string[]): Promise<void> {
    this.calls.push(`reconcile ${d.join(',')}`);
    return Promise.resolve();
  }
  syncs = 0;
  sync(): Promise<void> {
    this.syncs++;
    return Promise.resolve();
  }
}

const node = (name: string, cidr: string, ip: string) => ({ name, podCIDRs: [cidr], nodeIPs: [ip] });

async function settle(c: NodeRouteController): Promise<void> {
  for (let i = 0; i < 50 && !c.idle; i++) await flushMicrotasks();
  await flushMicrotasks();
}

t.test('the controller installs, updates and removes remote Nodes (hybrid)', async (t) => {
  const source = new StaticNodeSource(
    [node('node-1', '10.10.1.0/24', '192.0.2.11'), node('node-2', '10.10.2.0/24', '192.0.2.12')],
    { synced: false },
  );
  const flows = new RecordingFlows();
  const routes = new RecordingRoutes(flows.calls);
  const clock = new FakeClock();
  const c = new NodeRouteController({
    localNodeName: 'node-1',
    trafficEncapMode: 'hybrid',
    localTransportCIDRs: ['192.0.2.11/24'],
    source,
    flows,
    routes,
    clock,
    backoff: new Backoff({ initialMs: 2000, maxMs: 4000, jitter: 0 }),
  });
  const ac = new AbortController();
  const done = c.run(ac.signal);
  source.markSynced();
  await c.waitInitialSync();
  t.same(flows.calls.splice(0), [
    'reconcile 10.10.2.0/24',
    'flows node-2 10.10.2.0/24 gw',
    'route 10.10.2.0/24 direct 192.0.2.12 gw=10.10.2.1',
  ]);
  source.set(node('node-3', '10.10.3.0/24', '198.51.100.13'));
  await settle(c);
  t.same(flows.calls.splice(0), [
    'flows node-3 10.10.3.0/24 tun_dst=198.51.100.13',
    'route 10.10.3.0/24 tunnel 198.51.100.13 gw=10.10.3.1',
  ]);
  source.set(node('node-3', '10.10.3.0/24', '198.51.100.13'));
  await settle(c);
  t.same(flows.calls.splice(0), [], 'unchanged Node: nothing');
  source.set(node('node-3', '10.10.30.0/24', '198.51.100.13'));
  await settle(c);
  t.same(flows.calls.splice(0), [
    'flows node-3 10.10.30.0/24 tun_dst=198.51.100.13',
    'unroute 10.10.3.0/24',
    'route 10.10.30.0/24 tunnel 198.51.100.13 gw=10.10.30.1',
  ]);
  source.delete('node-3');
  await settle(c);
  t.same(flows.calls.splice(0), ['unroute 10.10.30.0/24', 'unflows node-3']);
  source.set(node('node-1', '10.10.9.0/24', '192.0.2.11'));
  source.set({ name: 'node-4', podCIDRs: [], nodeIPs: ['192.0.2.14'] });
  await settle(c);
  t.same(flows.calls.splice(0), [], 'the local Node and a Node without a Pod CIDR: nothing');
  t.same(c.installedNodes(), ['node-2']);

  // A failure is retried after the backoff delay.
  flows.failNext = 1;
  source.set(node('node-5', '10.10.5.0/24', '192.0.2.15'));
  await settle(c);
  t.same(flows.calls.splice(0), [], 'first attempt failed');
  await clock.advance(2000);
  await settle(c);
  t.same(flows.calls.splice(0), ['flows node-5 10.10.5.0/24 gw', 'route 10.10.5.0/24 direct 192.0.2.15 gw=10.10.5.1']);
  ac.abort();
  await done;
});

t.test('a duplicate Pod CIDR waits until the old Node is gone', async (t) => {
  const source = new StaticNodeSource([node('a', '10.10.2.0/24', '192.0.2.12')]);
  const flows = new RecordingFlows();
  const c = new NodeRouteController({
    localNodeName: 'me',
    trafficEncapMode: 'encap',
    localTransportCIDRs: [],
    source,
    flows,
    clock: new FakeClock(),
  });
  const ac = new AbortController();
  const done = c.run(ac.signal);
  await c.waitInitialSync();
  source.set(node('b', '10.10.2.0/24', '192.0.2.13'));
  await settle(c);
  t.same(c.installedNodes(), ['a'], 'b refused while a holds the CIDR');
  source.delete('a');
  await settle(c);
  t.same(c.installedNodes(), ['b'], 'b installed once a is gone');
  ac.abort();
  await done;
});

t.test('networkPolicyOnly: no routes at all', async (t) => {
  const flows = new RecordingFlows();
  const c = new NodeRouteController({
    localNodeName: 'me',
    trafficEncapMode: 'networkPolicyOnly',
    localTransportCIDRs: [],
    source: new StaticNodeSource([node('a', '10.10.2.0/24', '192.0.2.12')]),
    flows,
    routes: new RecordingRoutes(flows.calls),
  });
  await c.run(new AbortController().signal);
  await c.waitInitialSync();
  t.same(flows.calls, []);
});

t.test('the periodic resync runs every 60 s on the injected clock', async (t) => {
  const clock = new FakeClock();
  const routes = new RecordingRoutes([]);
  const ac = new AbortController();
  const done = runRouteSync(routes, ac.signal, { clock });
  await clock.advance(59_000);
  t.equal(routes.syncs, 0);
  await clock.advance(1_000);
  t.equal(routes.syncs, 1);
  await clock.advance(120_000);
  t.equal(routes.syncs, 3);
  ac.abort();
  await done;
});

t.test('Node objects become peers', (t) => {
  t.same(
    peerNodeOf({
      metadata: { name: 'n', annotations: { 'node.antrea.io/transport-addresses': '10.0.0.5, bad' } },
      spec: { podCIDR: '10.10.2.0/24' },
      status: { addresses: [{ type: 'InternalIP', address: '192.0.2.12' }] },
    }),
    { name: 'n', podCIDRs: ['10.10.2.0/24'], nodeIPs: ['10.0.0.5'] },
    'the transport-addresses annotation wins',
  );
  t.same(
    peerNodeOf({
      metadata: { name: 'n' },
      spec: { podCIDRs: ['10.10.2.0/24', 'fd00:2::/64'] },
      status: {
        addresses: [
          { type: 'Hostname', address: 'n' },
          { type: 'InternalIP', address: '192.0.2.12' },
        ],
      },
    }),
    { name: 'n', podCIDRs: ['10.10.2.0/24', 'fd00:2::/64'], nodeIPs: ['192.0.2.12'] },
  );
  t.end();
});
