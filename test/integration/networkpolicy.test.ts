/**
 * NetworkPolicy enforced by the agent, with real packets: antrea-agent runs as a process in a Node
 * namespace with its own OVS, Pods are added through the installed CNI plugin, the policies come
 * from the agent's policy file (the controlplane objects a controller would send), and TCP and UDP
 * probes run between Pod namespaces.
 *
 * 1. Ingress rules: an AddressGroup peer on TCP and UDP ports, an ipBlock with an except on a port
 *    range, a named port resolved on the target Pod; isolation of the target; a changed policy set
 *    takes effect; egress isolation on the client side; removing every policy allows everything.
 * 2. Restart safety: with no policies available CNI ADD waits and answers error 11; once they are,
 *    the Pod is created already isolated. A continuous prober on a must-deny pair records no
 *    success while the agent is SIGKILLed and restarted (new flow round, previous round removed)
 *    and while ovs-vswitchd restarts (everything replayed); the allowed pair recovers within 10 s.
 */
import t, { type Test } from 'tap';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  AddressGroup,
  AppliedToGroup,
  GroupMember,
  NetworkPolicy,
  NetworkPolicyPeer,
  NetworkPolicyRule,
} from '../../src/common/apis/controlplane/types.ts';
import type { ProcessHandle } from '../../src/common/util/exec.ts';
import { AgentNode, type PodRef } from '../helpers/agent-node.ts';
import { integrationSkipReason, launcher, runner, shortTempDir, uniqueName } from '../helpers/env.ts';
import { until } from '../helpers/wait.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

const PROBE = join(import.meta.dirname, '..', 'helpers', 'netpol-probe.ts');

interface Pod extends PodRef {
  readonly ip: string;
  readonly ns: string;
}

async function addPod(t: Test, node: AgentNode, name: string): Promise<Pod> {
  const pod: PodRef = { containerId: uniqueName('ctr'), netns: await node.podNetns(t), name, namespace: 'x' };
  const r = await node.cni('ADD', pod);
  if (r.exitCode !== 0) throw new Error(`ADD ${name} failed: ${r.stdout}`);
  const ips = r.json?.['ips'] as { address: string }[];
  return { ...pod, ip: ips[0]?.address.split('/')[0] ?? '', ns: pod.netns.replace(/^\/run\/netns\//, '') };
}

/** Starts the probe servers in a Pod (killed at teardown). */
async function serve(t: Test, pod: Pod, tcp: number[], udp: number[]): Promise<void> {
  const dir = shortTempDir(t, 'srv');
  const logFile = join(dir, 'serve.log');
  const p: ProcessHandle = await launcher.launch(
    'ip',
    ['netns', 'exec', pod.ns, process.execPath, PROBE, 'serve', tcp.join(',') || '-', udp.join(',') || '-'],
    { logFile },
  );
  t.teardown(async () => {
    if (p.running()) process.kill(p.pid, 'SIGKILL');
    await p.exited;
  });
  for (let i = 0; i < 100 && !readFileSync(logFile, 'utf8').includes('serving'); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function probe(from: Pod, proto: 'tcp' | 'udp', to: Pod, port: number): Promise<boolean> {
  const r = await runner.run(
    'ip',
    ['netns', 'exec', from.ns, process.execPath, PROBE, proto, to.ip, String(port), '1000'],
    {
      okExitCodes: [1],
      timeoutMs: 20_000,
    },
  );
  return r.exitCode === 0;
}

/** Probes until the expectation holds (policy changes are asynchronous), then returns the result. */
async function eventually(
  from: Pod,
  proto: 'tcp' | 'udp',
  to: Pod,
  port: number,
  want: boolean,
  ms = 10_000,
): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await probe(from, proto, to, port);
    if (got === want || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 200));
  }
}

// ---- the objects a controller would send -------------------------------------------------------

const EMPTY: NetworkPolicyPeer = { addressGroups: [], ipBlocks: [] };
const member = (p: Pod, ports?: GroupMember['ports']): GroupMember => ({
  pod: { namespace: 'x', name: p.name },
  ips: [p.ip],
  ...(ports === undefined ? {} : { ports }),
});
const group = (name: string, members: GroupMember[]): AddressGroup & AppliedToGroup => ({
  metadata: { name },
  groupMembers: members,
});
const policy = (name: string, rules: NetworkPolicyRule[], appliedTo: string[], generation = 1): NetworkPolicy => ({
  metadata: { name, uid: name, generation },
  rules,
  appliedToGroups: appliedTo,
  sourceRef: { type: 'K8sNetworkPolicy', namespace: 'x', name, uid: name },
});
const rule = (
  direction: 'In' | 'Out',
  peer: Partial<NetworkPolicyPeer>,
  services: NetworkPolicyRule['services'],
): NetworkPolicyRule => ({
  direction,
  from: direction === 'In' ? { ...EMPTY, ...peer } : EMPTY,
  to: direction === 'Out' ? { ...EMPTY, ...peer } : EMPTY,
  services,
  priority: -1,
  action: 'Allow',
});

/** Writes the policy file atomically (the agent polls it). */
function writePolicies(
  path: string,
  o: { networkpolicies: NetworkPolicy[]; addressgroups: AddressGroup[]; appliedtogroups: AppliedToGroup[] },
): void {
  writeFileSync(`${path}.tmp`, JSON.stringify(o));
  renameSync(`${path}.tmp`, path);
}

t.test('ingress and egress rules with real TCP and UDP packets', async (t) => {
  const dir = shortTempDir(t, 'np');
  const file = join(dir, 'policies.json');
  writePolicies(file, { networkpolicies: [], addressgroups: [], appliedtogroups: [] });
  const node = await AgentNode.create(t, { podCIDR: '10.10.8.0/24', extraArgs: ['--policy-file', file] });
  await node.start();
  const server = await addPod(t, node, 'server');
  const a = await addPod(t, node, 'a');
  const b = await addPod(t, node, 'b');
  await serve(t, server, [80, 81, 8080], [53]);
  await serve(t, a, [80], []);
  t.ok(await eventually(b, 'tcp', server, 80, true), 'no policy: b reaches the server');

  const ingressSet = {
    networkpolicies: [
      policy(
        'server-ingress',
        [
          rule('In', { addressGroups: ['ag-a'] }, [
            { protocol: 'TCP', port: 80 },
            { protocol: 'UDP', port: 53 },
          ]),
          rule(
            'In',
            { ipBlocks: [{ cidr: { ip: '10.10.8.0', prefixLength: 24 }, except: [{ ip: b.ip, prefixLength: 32 }] }] },
            [{ protocol: 'TCP', port: 8000, endPort: 8100 }],
          ),
          rule('In', { addressGroups: ['ag-b'] }, [{ protocol: 'TCP', port: 'web' }]),
        ],
        ['atg-server'],
      ),
    ],
    addressgroups: [group('ag-a', [member(a)]), group('ag-b', [member(b)])],
    appliedtogroups: [group('atg-server', [member(server, [{ name: 'web', port: 81, protocol: 'TCP' }])])],
  };
  writePolicies(file, ingressSet);
  t.notOk(await eventually(b, 'tcp', server, 80, false), 'b → server:80 denied (not a peer of the port-80 rule)');
  t.ok(await probe(a, 'tcp', server, 80), 'a → server:80 TCP allowed (AddressGroup peer)');
  t.ok(await probe(a, 'udp', server, 53), 'a → server:53 UDP allowed');
  t.notOk(await probe(b, 'udp', server, 53), 'b → server:53 UDP denied');
  t.ok(await probe(a, 'tcp', server, 8080), 'a → server:8080 allowed (ipBlock, port range)');
  t.notOk(await probe(b, 'tcp', server, 8080), 'b → server:8080 denied (ipBlock except)');
  t.ok(await probe(b, 'tcp', server, 81), 'b → server:81 allowed (named port "web" resolved on the server)');
  t.notOk(await probe(a, 'tcp', server, 81), 'a → server:81 denied (the named-port rule is for b)');
  t.ok(await probe(server, 'tcp', a, 80), 'the server can still open connections (only ingress is isolated)');

  // Egress isolation of a: only the server's port 80.
  writePolicies(file, {
    networkpolicies: [
      policy('a-egress', [rule('Out', { addressGroups: ['ag-server'] }, [{ protocol: 'TCP', port: 80 }])], ['atg-a']),
    ],
    addressgroups: [group('ag-server', [member(server)])],
    appliedtogroups: [group('atg-a', [member(a)])],
  });
  t.ok(await eventually(b, 'tcp', server, 8080, true), 'server-ingress removed: b → server:8080 allowed');
  t.notOk(await eventually(a, 'tcp', server, 8080, false), "a → server:8080 denied by a's egress isolation");
  t.ok(await probe(a, 'tcp', server, 80), 'a → server:80 allowed by the egress rule');
  t.notOk(await probe(a, 'udp', server, 53), 'a → server:53 UDP denied');
  t.ok(await probe(b, 'tcp', a, 80), 'replies of connections to a still leave a (not egress-evaluated)');

  // CNI DEL of an isolated Pod removes its policy flows with it.
  const aPort = (await node.ports()).find((p) => p.startsWith('a-'));
  const aOfport = await node.ofport(aPort ?? '');
  const aFlows = (): Promise<string[]> =>
    node.flows().then((fs) => fs.filter((f) => f.includes(`nw_src=${a.ip} `) || f.includes(`nw_src=${a.ip},`)));
  t.ok((await aFlows()).length > 0, 'a has egress policy flows');
  const del = await node.cni('DEL', a);
  t.equal(del.exitCode, 0);
  t.same(await aFlows(), [], "DEL removed the Pod's policy flows");
  t.notOk(
    (await node.flows()).some((f) => f.includes(`in_port=${aOfport} `)),
    'and its forwarding flows',
  );

  writePolicies(file, { networkpolicies: [], addressgroups: [], appliedtogroups: [] });
  t.ok(await eventually(b, 'tcp', server, 80, true), 'no policy: everything allowed again');
  const flows = await node.flows();
  t.ok(flows.length > 20, 'the pipeline is there');
  t.same(
    flows.filter((f) => /conjunction|conj_id|reg1=0x[0-9a-f]+ actions=drop|nw_src=10\.10\.8\.\d+ actions=drop/.test(f)),
    [],
    'no rule or isolation flow left',
  );
});

/** A continuous prober (a probe every 200 ms) writing "<ms> ok|fail" lines; stopped at teardown. */
async function prober(
  t: Test,
  from: Pod,
  proto: 'tcp' | 'udp',
  to: Pod,
  port: number,
): Promise<() => { at: number; ok: boolean }[]> {
  const dir = shortTempDir(t, 'prb');
  const logFile = join(dir, 'probe.log');
  const p = await launcher.launch(
    'ip',
    ['netns', 'exec', from.ns, process.execPath, PROBE, 'loop', proto, to.ip, String(port), '200'],
    { logFile },
  );
  t.teardown(async () => {
    if (p.running()) process.kill(p.pid, 'SIGKILL');
    await p.exited;
  });
  return () =>
    readFileSync(logFile, 'utf8')
      .split('\n')
      .map((l) => /^(\d+) (ok|fail)/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ at: Number(m[1]), ok: m[2] === 'ok' }));
}

/** Round numbers of the flows (cookie bits 63..48). */
function rounds(flows: readonly string[]): Set<number> {
  const out = new Set<number>();
  for (const f of flows) {
    const m = /cookie=0x([0-9a-f]+)/.exec(f);
    out.add(m === null ? 0 : Number(BigInt(`0x${m[1]}`) >> 48n));
  }
  return out;
}

t.test('restart safety: ADD waits for policies; no bypass across agent and ovs-vswitchd restarts', async (t) => {
  const dir = shortTempDir(t, 'np');
  const file = join(dir, 'policies.json');
  const node = await AgentNode.create(t, {
    podCIDR: '10.10.9.0/24',
    podNetworkWaitTimeoutMs: 3000,
    extraArgs: ['--policy-file', file],
  });
  // No policies yet (the controller is unreachable and nothing is persisted): ADD waits, then 11.
  await node.start({ waitReady: false });
  await waitFor('the CNI socket', () => existsSync(node.socket));
  const early: PodRef = {
    containerId: uniqueName('ctr'),
    netns: await node.podNetns(t),
    name: 'early',
    namespace: 'x',
  };
  const r = await node.cni('ADD', early);
  t.equal(r.exitCode, 1);
  t.equal(r.json?.['code'], 11, 'CNI error 11 (try again later) while the initial policies are not realized');
  t.ok(r.ms >= 2900, `ADD waited for the timeout (${Math.round(r.ms)} ms)`);
  t.same(
    (await node.ports()).filter((p) => p !== 'antrea-gw0' && p !== 'antrea-tun0'),
    [],
    'no Pod port was created',
  );

  // The policies arrive: the server only accepts a on TCP 80.
  const serverMember: GroupMember = { pod: { namespace: 'x', name: 'server' } };
  const set = (a: Pod | undefined): Parameters<typeof writePolicies>[1] => ({
    networkpolicies: [
      policy(
        'server-ingress',
        [rule('In', { addressGroups: ['ag-a'] }, [{ protocol: 'TCP', port: 80 }])],
        ['atg-server'],
      ),
    ],
    addressgroups: [group('ag-a', a === undefined ? [] : [member(a)])],
    appliedtogroups: [group('atg-server', [serverMember])],
  });
  writePolicies(file, set(undefined));
  await node.waitReady();
  const server = await addPod(t, node, 'server');
  const hostName = (await node.ports()).find((p) => p.startsWith('server'));
  const ofport = await node.ofport(hostName ?? '');
  t.ok(
    (await node.flows()).some((f) => f.includes(`reg1=0x${ofport.toString(16)} actions=drop`)),
    'the new Pod is isolated by the time ADD answers',
  );
  const a = await addPod(t, node, 'a');
  const b = await addPod(t, node, 'b');
  writePolicies(file, set(a));
  await serve(t, server, [80], []);
  t.ok(await eventually(a, 'tcp', server, 80, true), 'a → server allowed');
  t.notOk(await probe(b, 'tcp', server, 80), 'b → server denied');
  t.same(rounds(await node.flows()), new Set([1]), 'round 1');

  const denied = await prober(t, b, 'tcp', server, 80);
  const allowed = await prober(t, a, 'tcp', server, 80);
  await waitFor('the probers', () => denied().length > 3 && allowed().length > 3);

  // Agent killed; restarted while no policy source is available (the last enforced set must hold).
  const killAt = Date.now();
  await node.kill('SIGKILL');
  renameSync(file, `${file}.away`);
  await node.start({ waitReady: false });
  await new Promise((res) => setTimeout(res, 3000));
  const whileDown = Date.now();
  t.equal(
    (await node.cni('STATUS', undefined, { version: '1.1.0' })).exitCode,
    1,
    'the restarted agent is not ready without its policies',
  );
  const podFlowRounds = rounds((await node.flows()).filter((f) => /priority=190,in_port=\d+ /.test(f)));
  t.same(podFlowRounds, new Set([1]), 'no Pod forwarding flow of the new round before its policies are realized');
  // The source returns: the agent converges in round 2 and removes round 1.
  const sourceBackAt = Date.now();
  renameSync(`${file}.away`, file);
  await node.waitReady();
  const readyAt = Date.now();
  await waitFor('round 1 to be removed', async () => {
    const r = rounds(await node.flows());
    return r.size === 1 && r.has(2);
  });
  t.pass('all flows carry round 2; round 1 is gone');
  const backAt = Date.now();
  await waitFor('probes after the restart', () => allowed().some((p) => p.at > backAt + 500));
  t.same(
    allowed().filter((p) => !p.ok && p.at < whileDown),
    [],
    'the allowed pair kept working while the agent was down',
  );

  // ovs-vswitchd restarts: it forwards nothing until the agent replayed every flow.
  const failMode = (
    await runner.run('ovs-vsctl', [`--db=${node.ovs.dbEndpoint}`, 'get', 'Bridge', 'br-int', 'fail_mode'])
  ).stdout.trim();
  t.equal(failMode, 'secure', 'br-int is in secure fail mode (no NORMAL flow before the replay)');
  const before = (await node.flows()).sort();
  const syncs = (): number => node.log().split('switch synchronized').length - 1;
  const syncsBefore = syncs();
  await node.ovs.restart('ovs-vswitchd');
  const upAt = Date.now();
  await waitFor('the flows to be replayed', async () => {
    try {
      return (await node.flows()).length >= before.length;
    } catch {
      return false;
    }
  });
  t.same((await node.flows()).sort(), before, 'the same flows after the replay');
  t.ok(syncs() > syncsBefore, 'the agent replayed its flows on the new connection');
  await waitFor('allowed traffic after the vswitchd restart', () => allowed().some((p) => p.ok && p.at > upAt), 10_000);
  const firstOk = allowed().find((p) => p.ok && p.at > upAt);
  t.ok(
    firstOk !== undefined && firstOk.at - upAt <= 10_000,
    `allowed pair back ${firstOk === undefined ? '?' : firstOk.at - upAt} ms after ovs-vswitchd`,
  );
  await new Promise((res) => setTimeout(res, 1000));
  const d = denied();
  t.comment(
    `events: kill ${killAt}, source back ${sourceBackAt}, ready ${readyAt}, vswitchd up ${upAt}; denied ok at ${d
      .filter((p) => p.ok)
      .map((p) => p.at)
      .join(',')}`,
  );
  t.ok(d.length > 20, `the denied pair was probed throughout (${d.length} probes)`);
  t.same(
    d.filter((p) => p.ok),
    [],
    'no probe of the denied pair ever succeeded (agent kill, restart without policies, ovs-vswitchd restart)',
  );
});

function waitFor(what: string, fn: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  return until(what, fn, ms, 100);
}
