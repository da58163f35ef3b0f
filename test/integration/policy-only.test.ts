/**
 * networkPolicyOnly mode for real: two Nodes (namespaces with their own OVS and antrea-agent), Pods
 * get their network from the real `ptp` plugin with host-local IPAM and antrea chained after it in
 * the conflist the install step writes, run by the lab's CNI runtime exactly as containerd does
 * (ADD in order with prevResult, DEL in reverse). The router namespace plays the cloud fabric: it
 * routes each Node's Pod subnet to that Node; antrea installs no route, tunnel or SNAT.
 *
 * Shown: antrea answers ptp's result unchanged, moved the Pod's host route to antrea-gw0 (which
 * holds the Node IP /32); Pods reach each other on a Node and across Nodes, and the Node reaches its
 * Pod, all through OVS; a NetworkPolicy from the agent's policy file denies and allows real TCP
 * connections; DEL leaves no port, flow or route behind (ptp's DEL removes the veth and the IP); an
 * ADD without prevResult is a clear CNI error that touches nothing.
 */
import t, { type Test } from 'tap';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NetworkPolicy } from '../../src/common/apis/controlplane/types.ts';
import { CONFLIST_NAME, installCni } from '../../src/common/cni/install.ts';
import { CniRuntime, resultIPs, type CniResult } from '../../src/lab/cni-runtime.ts';
import { type AgentNode, CNI_PLUGIN_DIR, PLUGIN_ENTRY } from '../helpers/agent-node.ts';
import { Cluster, nsName } from '../helpers/multinode.ts';
import { integrationSkipReason, launcher, runner, shortTempDir, uniqueName } from '../helpers/env.ts';
import { until } from '../helpers/wait.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

const PROBE = join(import.meta.dirname, '..', 'helpers', 'netpol-probe.ts');

interface Pod {
  readonly node: AgentNode;
  readonly name: string;
  readonly containerId: string;
  readonly netns: string;
  readonly ip: string;
  readonly result: CniResult;
}

/** The primary plugin: ptp with host-local IPAM on the Node's Pod subnet (no masquerade). */
function ptpPlugin(node: AgentNode): Record<string, unknown> {
  return {
    type: 'ptp',
    ipMasq: false,
    ipam: {
      type: 'host-local',
      dataDir: join(node.dir, 'ptp-ipam'),
      ranges: [[{ subnet: node.podCIDR }]],
      routes: [{ dst: '0.0.0.0/0' }],
    },
  };
}

function runtimeOf(node: AgentNode): CniRuntime {
  return new CniRuntime({
    confDir: node.confDir,
    binDirs: [node.binDir, CNI_PLUGIN_DIR],
    cacheDir: join(node.dir, 'cni-results'),
    runner,
    netns: node.ns,
    timeoutMs: 60_000,
  });
}

async function addPod(t: Test, node: AgentNode, name: string): Promise<Pod> {
  const netns = await node.podNetns(t);
  const containerId = uniqueName('ctr');
  const result = await runtimeOf(node).add({
    containerId,
    netnsPath: netns,
    ifName: 'eth0',
    podNamespace: 'x',
    podName: name,
    podUid: containerId,
  });
  const ip = resultIPs(result)[0];
  if (ip === undefined) throw new Error(`no IP for ${name}: ${JSON.stringify(result)}`);
  return { node, name, containerId, netns, ip, result };
}

async function delPod(p: Pod): Promise<void> {
  await runtimeOf(p.node).del({
    containerId: p.containerId,
    netnsPath: p.netns,
    ifName: 'eth0',
    podNamespace: 'x',
    podName: p.name,
    podUid: p.containerId,
  });
}

async function serve(t: Test, p: Pod, ports: number[]): Promise<void> {
  const logFile = join(shortTempDir(t, 'srv'), 'serve.log');
  const h = await launcher.launch(
    'ip',
    ['netns', 'exec', nsName(p.netns), process.execPath, PROBE, 'serve', ports.join(','), '-'],
    { logFile },
  );
  t.teardown(async () => {
    if (h.running()) process.kill(h.pid, 'SIGKILL');
    await h.exited;
  });
  await until('the probe server', () => readFileSync(logFile, 'utf8').includes('serving'), 10_000);
}

/** One TCP connection from namespace `ns` (a Pod's or a Node's) to ip:port. */
async function tcp(ns: string, ip: string, port: number): Promise<boolean> {
  const r = await runner.run('ip', ['netns', 'exec', ns, process.execPath, PROBE, 'tcp', ip, String(port), '1500'], {
    okExitCodes: [1],
    timeoutMs: 20_000,
  });
  return r.exitCode === 0;
}

/** Probes until the result is `want` (policies apply asynchronously); returns the last result. */
async function settle(ns: string, ip: string, port: number, want: boolean): Promise<boolean> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const got = await tcp(ns, ip, port);
    if (got === want || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 300));
  }
}

function writePolicies(path: string, policies: NetworkPolicy[], groups: Record<string, Pod[]>): void {
  const g = Object.entries(groups).map(([name, pods]) => ({
    metadata: { name },
    groupMembers: pods.map((p) => ({ pod: { namespace: 'x', name: p.name }, ips: [p.ip] })),
  }));
  writeFileSync(`${path}.tmp`, JSON.stringify({ networkpolicies: policies, addressgroups: g, appliedtogroups: g }));
  renameSync(`${path}.tmp`, path);
}

t.test('Pods from ptp with antrea chained: routing, policy with real packets, clean DEL', async (t) => {
  const dir = shortTempDir(t, 'po');
  const policyFile = join(dir, 'policies.json');
  writePolicies(policyFile, [], {});
  const cluster = await Cluster.create(t, {
    trafficEncapMode: 'networkPolicyOnly',
    nodes: [{ subnet: 'a' }, { subnet: 'a' }],
    routerRoutesPods: true, // the cloud fabric routes each Node's Pod subnet
    agentArgs: () => ['--policy-file', policyFile],
  });
  const [n1, n2] = cluster.nodes as [AgentNode, AgentNode];
  for (const node of cluster.nodes) {
    const r = await installCni({
      binDir: node.binDir,
      confDir: node.confDir,
      nodePath: process.execPath,
      pluginEntry: PLUGIN_ENTRY,
      cniSocket: node.socket,
      compileCacheDir: join(node.dir, 'cache'),
      primaryPlugin: ptpPlugin(node),
    });
    const list = JSON.parse(readFileSync(r.conflistPath, 'utf8')) as { plugins: { type: string }[] };
    t.same(
      list.plugins.map((p) => p.type),
      ['ptp', 'antrea'],
      `${node.nodeName}: ${CONFLIST_NAME} chains antrea after ptp`,
    );
  }
  await cluster.startAgents();
  t.teardown(() => {
    if (t.passing()) return;
    for (const n of cluster.nodes)
      t.comment(`${n.nodeName} agent log tail:\n${n.log().split('\n').slice(-30).join('\n')}`);
  });

  const server = await addPod(t, n1, 'server');
  const near = await addPod(t, n1, 'near');
  const far = await addPod(t, n2, 'far');

  // The result is ptp's, passed through unchanged.
  const hostVeth = server.result.interfaces?.[0]?.name ?? '';
  t.match(hostVeth, /^veth/, "the result is ptp's (host veth first)");
  t.equal(server.result.ips?.[0]?.gateway, '10.10.1.1');
  t.ok(server.ip.startsWith('10.10.1.'), `server got ${server.ip} from ptp's host-local`);

  // The host side is on br-int, the Pod's route on antrea-gw0, the Node IP /32 on the gateway.
  t.ok((await n1.ports()).includes(hostVeth), `${hostVeth} is an OVS port`);
  t.match(await n1.portExternalIds(hostVeth), { 'antrea-type': 'container', 'container-id': server.containerId });
  const routes = await cluster.routes(n1);
  t.ok(
    routes.some((l) => l.startsWith(`${server.ip} dev antrea-gw0`)),
    `the route to ${server.ip} moved to antrea-gw0: ${routes.join(' | ')}`,
  );
  t.notOk(
    routes.some((l) => l.includes(`dev ${hostVeth}`)),
    'no route through the veth',
  );
  const gwAddrs = await cluster.exec(n1.ns, 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'antrea-gw0']);
  t.match(gwAddrs, new RegExp(`inet ${n1.nodeIP.replaceAll('.', '\\.')}/32 `), 'the gateway holds the Node IP /32');
  t.match(gwAddrs, /inet 10\.10\.1\.1\/32 /, "and ptp's Pod gateway address, moved from the veth");
  t.notOk(
    routes.some((l) => l.startsWith('10.10.2.')),
    'antrea installed no route to the other Node',
  );
  const nat = await cluster.exec(n1.ns, 'iptables-save', ['-t', 'nat']);
  t.notMatch(nat, /MASQUERADE/, 'no SNAT');
  t.notOk((await n1.links()).has('antrea-tun0'), 'no tunnel');

  // Connectivity through OVS.
  await serve(t, server, [80, 8080]);
  await serve(t, far, [80]);
  t.ok(await settle(nsName(near.netns), server.ip, 80, true), 'Pod → Pod on one Node');
  t.ok(await settle(nsName(far.netns), server.ip, 80, true), 'Pod → Pod across Nodes (the fabric routes)');
  t.ok(await settle(nsName(server.netns), far.ip, 80, true), 'and back');
  t.ok(await settle(n1.ns, server.ip, 80, true), 'the Node reaches its Pod through antrea-gw0');

  // A NetworkPolicy: only `far` may reach the server, on port 80.
  const policy: NetworkPolicy = {
    metadata: { name: 'server-ingress', uid: 'server-ingress', generation: 1 },
    rules: [
      {
        direction: 'In',
        from: { addressGroups: ['far'], ipBlocks: [] },
        to: { addressGroups: [], ipBlocks: [] },
        services: [{ protocol: 'TCP', port: 80 }],
        priority: -1,
        action: 'Allow',
      },
    ],
    appliedToGroups: ['server'],
    sourceRef: { type: 'K8sNetworkPolicy', namespace: 'x', name: 'server-ingress', uid: 'server-ingress' },
  };
  writePolicies(policyFile, [policy], { server: [server], far: [far] });
  t.notOk(await settle(nsName(near.netns), server.ip, 80, false), 'near → server:80 denied (not a peer)');
  t.ok(await tcp(nsName(far.netns), server.ip, 80), 'far → server:80 allowed across Nodes');
  t.notOk(await tcp(nsName(far.netns), server.ip, 8080), 'far → server:8080 denied (port not in the rule)');
  writePolicies(policyFile, [], {});
  t.ok(await settle(nsName(near.netns), server.ip, 80, true), 'policy removed: near → server allowed again');

  // DEL (antrea's, then ptp's) leaves nothing of the Pod behind.
  const nearVeth = near.result.interfaces?.[0]?.name ?? '';
  const nearOfport = await n1.ofport(nearVeth);
  await delPod(near);
  t.notOk((await n1.ports()).includes(nearVeth), 'no OVS port');
  t.notOk(
    (await n1.flows()).some((f) => f.includes(`in_port=${nearOfport} `) || f.includes(`nw_dst=${near.ip} `)),
    'no flow for the Pod',
  );
  t.notOk(
    (await cluster.routes(n1)).some((l) => l.startsWith(`${near.ip} `)),
    'no route to the Pod',
  );
  t.notOk((await n1.links()).has(nearVeth), "the veth is gone (ptp's DEL)");
  await delPod(near); // DEL again: idempotent along the whole chain
  t.ok(await tcp(nsName(far.netns), server.ip, 80), 'the other Pods are untouched');

  // ADD without prevResult (antrea listed alone): a clear error, nothing attached.
  const lonely = { containerId: uniqueName('ctr'), netns: await n2.podNetns(t), name: 'lonely', namespace: 'x' };
  const before = await n2.ports();
  const r = await n2.cni('ADD', lonely, {
    stdin: JSON.stringify({ cniVersion: '1.0.0', name: 'chained', type: 'antrea' }),
  });
  t.equal(r.exitCode, 1);
  t.match(r.json, { msg: /prevResult is required.*networkPolicyOnly/ });
  t.same(await n2.ports(), before, 'nothing attached');
});
