/**
 * `npm run bench -- policy-realization [--peers N] [--rounds N] [--policies N] [--no-api] [--no-lab | --lab-only]`
 *
 * On a real OVS (userspace datapath) with the agent's pipeline and NetworkPolicy controller in this
 * process (test/helpers/policy-bridge.ts):
 *
 *  - `peers-N` (default 1,000): a policy selecting one local Pod with an ingress rule whose
 *    AddressGroup holds N peers (TCP 80 and UDP 53), from the handler call that completes the set to
 *    the bundle acknowledged by OVS: the whole agent path (rule cache, reconciler, flow store, bundle)
 *    in flows/s, against installing the very same flows with the OpenFlow client directly (one
 *    bundle on the same bridge) in the same run. `ratio` = ours / direct (< 1: the path's overhead).
 *  - `peers-N-add-one`: one member added to that AddressGroup (a patch): latency of the incremental
 *    update, against adding that one flow directly.
 *  - `handler-to-probe-1node` (default 50 policies): time from the handler call that allows a peer of
 *    an isolated Pod to the first answered probe (a fresh `ping -i 0.005` started before the call),
 *    p50/p99; baseline: the same flows installed directly, seen by the same probe.
 *
 *  - `api-to-probe-1node` (skip with --no-api): from creating a NetworkPolicy in the embedded
 *    Kubernetes API to the first answered probe, through the real antrea-controller and the
 *    antrea-agent process (test/helpers/controlplane-node.ts); baseline: the agent's part alone.
 *
 *  - `api-to-probe-3node` (skip with --no-lab; only this case with --lab-only): in a 3-Node lab
 *    (`antrea-lab up --nodes 3 --cni antrea`: the real API server, antrea-controller and one
 *    antrea-agent per Node), one server and one client Pod pinned on each Node, the servers isolated
 *    (deny-all ingress), and a continuous prober (a fresh TCP connection every 20 ms, 250 ms timeout,
 *    through the Pods' own sockets) from the client on each Node to the server on the next Node, so
 *    the probes start on every Node and the change must be realized on every Node. 50 times: create
 *    a NetworkPolicy allowing the clients, measure from the create call until the probes of every
 *    Node connect (the first connected probe of the slowest pair), then delete it and wait until
 *    every pair is denied again. p50/p99 over the policies.
 *    Baseline, same lab and same prober: the very flows the agents installed for such a policy
 *    (dumped from each Node's br-int with the policy in force, minus those without it) installed
 *    directly with the OpenFlow client, one bundle per Node, all Nodes at once; measured the same
 *    way. This is the floor of the probes in the lab (the datapath and the prober's resolution), so
 *    ratio = baseline p50 / ours p50 is the share of the time that is not the whole path from the
 *    API (API server, controller, watch, agents) — the overhead of the path is 1/ratio.
 */
import type {
  AddressGroup,
  AppliedToGroup,
  GroupMember,
  NetworkPolicy,
} from '../../src/common/apis/controlplane/types.ts';
import type { Flow } from '../../src/common/ovs/openflow/flow.ts';
import { OpenFlowConnection } from '../../src/common/ovs/openflow/connection.ts';
import { applyBundle, op } from '../../src/common/ovs/openflow/ops.ts';
import { decodeCookie } from '../../src/common/agent/openflow/cookie.ts';
import { ControlplaneNode, until } from '../helpers/controlplane-node.ts';
import { integrationSkipReason, launcher, runner, shortTempDir } from '../helpers/env.ts';
import { labCli, labDataDir } from '../helpers/lab.ts';
import { probePods } from '../../src/lab/control.ts';
import { KubeClient } from '../../src/lab/kube-client.ts';
import { ContinuousProber, firstVerdict, holdsVerdict, pairKey, type ProbePair } from '../../src/lab/probe.ts';
import { LabPaths } from '../../src/lab/state.ts';
import { dumpFlows } from '../../src/common/ovs/openflow/ops.ts';
import { Cleanup } from '../helpers/agent-node.ts';
import { type LocalPod, PolicyBridge } from '../helpers/policy-bridge.ts';
import { emit, percentile, round } from './lib.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';

const EMPTY = { addressGroups: [], ipBlocks: [] };

function arg(args: string[], name: string, def: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name}: expected a positive integer, got ${args[i + 1]}`);
  return v;
}

function peers(n: number, offset = 0): GroupMember[] {
  return Array.from({ length: n }, (_, i) => {
    const k = i + offset;
    return { pod: { namespace: 'peers', name: `p${k}` }, ips: [`10.30.${Math.floor(k / 250)}.${(k % 250) + 1}`] };
  });
}

function ingressPolicy(
  name: string,
  ag: string,
  atg: string,
  services: NetworkPolicy['rules'][number]['services'],
): NetworkPolicy {
  return {
    metadata: { name, uid: name, generation: 1 },
    appliedToGroups: [atg],
    rules: [
      { direction: 'In', from: { ...EMPTY, addressGroups: [ag] }, to: EMPTY, services, priority: -1, action: 'Allow' },
    ],
  };
}

const group = (name: string, members: GroupMember[]): AddressGroup & AppliedToGroup => ({
  metadata: { name },
  groupMembers: members,
});

async function setAll(
  pb: PolicyBridge,
  nps: NetworkPolicy[],
  ags: AddressGroup[],
  atgs: AppliedToGroup[],
): Promise<void> {
  await pb.controller.replace('networkpolicies', nps, 'controller');
  await pb.controller.replace('addressgroups', ags, 'controller');
  await pb.controller.replace('appliedtogroups', atgs, 'controller');
}

function npFlows(pb: PolicyBridge): Flow[] {
  return pb.bridge
    .recordedFlows()
    .filter(
      (f) =>
        decodeCookie(f.cookie).category === 2 && !/priority=210|IngressSecurity/.test(f.toString()) && f.priority !== 0,
    );
}

/** Time from `action` to the first reply of a ping started before it (ms), or NaN after 5 s. */
async function probeLatency(
  from: Pick<LocalPod, 'ns'>,
  to: Pick<LocalPod, 'ip'>,
  dir: string,
  action: () => Promise<void>,
): Promise<number> {
  const log = join(dir, `ping-${Math.random().toString(36).slice(2)}.log`);
  const p = await launcher.launch(
    'ip',
    ['netns', 'exec', from.ns, 'ping', '-D', '-n', '-i', '0.005', '-W', '1', to.ip],
    { logFile: log },
  );
  try {
    await new Promise((r) => setTimeout(r, 60));
    if (/bytes from/.test(readFileSync(log, 'utf8'))) throw new Error('the probe got through before the change');
    const t0 = Date.now();
    await action();
    for (let i = 0; i < 500; i++) {
      const m = /\[(\d+\.\d+)\] \d+ bytes from/.exec(readFileSync(log, 'utf8'));
      if (m !== null) return Math.max(0, Number(m[1]) * 1000 - t0);
      await new Promise((r) => setTimeout(r, 10));
    }
    return Number.NaN;
  } finally {
    if (p.running()) process.kill(p.pid, 'SIGKILL');
    await p.exited;
  }
}

export async function run(args: string[]): Promise<void> {
  const nPeers = arg(args, 'peers', 1000);
  const rounds = arg(args, 'rounds', 5);
  const nPolicies = arg(args, 'policies', 50);
  const labOnly = args.includes('--lab-only');
  if (labOnly && args.includes('--no-lab')) throw new Error('--lab-only and --no-lab exclude each other');
  if (!labOnly) {
    const handlerP50 = await inProcess(nPeers, rounds, nPolicies);
    if (!args.includes('--no-api')) await apiToProbe(nPolicies, handlerP50);
  }
  if (!args.includes('--no-lab')) await apiToProbeLab(nPolicies);
}

/** The in-process cases; returns the handler-to-probe p50. */
async function inProcess(nPeers: number, rounds: number, nPolicies: number): Promise<number> {
  const cleanup = new Cleanup();
  try {
    const pb = await PolicyBridge.create(cleanup);
    const server = await pb.addPod('server');
    const client = await pb.addPod('client');
    const services = [
      { protocol: 'TCP' as const, port: 80 },
      { protocol: 'UDP' as const, port: 53 },
    ];
    const pol = ingressPolicy('big', 'ag', 'atg', services);
    const atg = group('atg', [{ pod: { namespace: 'x', name: 'server' } }]);
    const conn = await OpenFlowConnection.connect({ endpoint: pb.endpoint, requestTimeoutMs: 120_000 });
    cleanup.teardown(() => conn.close());

    // ---- peers-N: the whole path vs the same flows installed directly ----------------------------
    const ours: number[] = [];
    const direct: number[] = [];
    let flows: Flow[] = [];
    await setAll(pb, [], [], []);
    for (let r = 0; r < rounds; r++) {
      await setAll(pb, [], [], [atg]);
      await pb.controller.replace('addressgroups', [group('ag', peers(nPeers))], 'controller');
      const t0 = performance.now();
      await pb.controller.replace('networkpolicies', [pol], 'controller');
      ours.push(performance.now() - t0);
      flows = npFlows(pb);
      await pb.controller.replace('networkpolicies', [], 'controller');
      const t1 = performance.now();
      await applyBundle(
        conn,
        flows.map((f) => op.addFlow(f)),
      );
      direct.push(performance.now() - t1);
      await applyBundle(
        conn,
        flows.map((f) => op.deleteFlow(f)),
      );
    }
    const best = (xs: number[]): number => Math.min(...xs);
    const oursFps = (flows.length / best(ours)) * 1000;
    const directFps = (flows.length / best(direct)) * 1000;
    emit({
      bench: 'policy-realization',
      case: `peers-${nPeers}`,
      flows: flows.length,
      realize_ms: round(best(ours)),
      flows_per_s: round(oursFps, 0),
      baseline: {
        what: 'the same flows in one bundle with the OpenFlow client',
        install_ms: round(best(direct)),
        flows_per_s: round(directFps, 0),
      },
      ratio: round(oursFps / directFps, 3),
    });

    // ---- peers-N-add-one: an AddressGroup patch --------------------------------------------------
    await pb.controller.replace('networkpolicies', [pol], 'controller');
    const patchMs: number[] = [];
    const oneMs: number[] = [];
    for (let r = 0; r < 20; r++) {
      const m = peers(1, nPeers + r)[0]!;
      const t0 = performance.now();
      await pb.controller.event({
        resource: 'addressgroups',
        type: 'MODIFIED',
        object: { metadata: { name: 'ag' }, addedGroupMembers: [m], removedGroupMembers: [] },
      });
      patchMs.push(performance.now() - t0);
      const f = pb.bridge.recordedFlows().find((x) => x.toString().includes(`nw_src=${m.ips?.[0] ?? ''} `));
      if (f === undefined) throw new Error('the added member has no flow');
      await pb.controller.event({
        resource: 'addressgroups',
        type: 'MODIFIED',
        object: { metadata: { name: 'ag' }, addedGroupMembers: [], removedGroupMembers: [m] },
      });
      const t1 = performance.now();
      await applyBundle(conn, [op.addFlow(f)]);
      oneMs.push(performance.now() - t1);
      await applyBundle(conn, [op.deleteFlow(f)]);
    }
    emit({
      bench: 'policy-realization',
      case: `peers-${nPeers}-add-one`,
      p50_ms: round(percentile(patchMs, 50), 3),
      p99_ms: round(percentile(patchMs, 99), 3),
      baseline: { what: 'the one flow added directly', p50_ms: round(percentile(oneMs, 50), 3) },
      ratio: round(percentile(oneMs, 50) / percentile(patchMs, 50), 3),
    });
    await setAll(pb, [], [], []);

    // ---- handler-to-probe-1node ------------------------------------------------------------------
    const dir = shortTempDir(cleanup as unknown as Test, 'pr');
    const isolate: NetworkPolicy = {
      metadata: { name: 'isolate', uid: 'isolate', generation: 1 },
      appliedToGroups: ['atg'],
      rules: [{ direction: 'In', from: EMPTY, to: EMPTY, services: [], priority: 0 }],
    };
    const latOurs: number[] = [];
    const latDirect: number[] = [];
    for (let i = 0; i < nPolicies; i++) {
      const allow = ingressPolicy(`allow-${i}`, `ag-${i}`, 'atg', [{ protocol: 'ICMP' }]);
      const ag = group(`ag-${i}`, [{ pod: { namespace: 'x', name: 'client' }, ips: [client.ip] }]);
      await setAll(pb, [isolate], [ag], [atg]);
      latOurs.push(
        await probeLatency(client, server, dir, async () => {
          await pb.controller.event({ resource: 'networkpolicies', type: 'ADDED', object: allow });
        }),
      );
      // The same flows, installed directly, seen by the same probe.
      const allowFlows = pb.bridge.recordedFlows().filter((f) => /conjunction|conj_id|ct_label=/.test(f.toString()));
      await pb.controller.event({ resource: 'networkpolicies', type: 'DELETED', object: allow });
      latDirect.push(
        await probeLatency(client, server, dir, async () => {
          await applyBundle(
            conn,
            allowFlows.map((f) => op.addFlow(f)),
          );
        }),
      );
      await applyBundle(
        conn,
        allowFlows.map((f) => op.deleteFlow(f)),
      );
    }
    const ok = latOurs.filter((x) => !Number.isNaN(x));
    const okD = latDirect.filter((x) => !Number.isNaN(x));
    emit({
      bench: 'policy-realization',
      case: 'handler-to-probe-1node',
      policies: nPolicies,
      failed: nPolicies - ok.length,
      p50_ms: round(percentile(ok, 50), 2),
      p99_ms: round(percentile(ok, 99), 2),
      baseline: {
        what: 'the same flows installed directly, same probe',
        p50_ms: round(percentile(okD, 50), 2),
        p99_ms: round(percentile(okD, 99), 2),
      },
      ratio: round(percentile(okD, 50) / percentile(ok, 50), 3),
    });
    return percentile(ok, 50);
  } finally {
    await cleanup.run();
  }
}

/**
 * `api-to-probe-1node`: from creating a NetworkPolicy in the Kubernetes API to the first answered
 * probe, through antrea-controller (informers, computation, watch) and the antrea-agent process
 * (watch, realization) on one Node. Baseline: the agent's part alone (handler-to-probe, same run).
 */
async function apiToProbe(nPolicies: number, handlerP50: number): Promise<void> {
  const cleanup = new Cleanup();
  try {
    const cp = await ControlplaneNode.create(cleanup, '10.10.31.0/24');
    cp.namespace('x');
    await cp.node.start();
    const server = await cp.addPod('x', 'server', { app: 'server' });
    const client = await cp.addPod('x', 'client', { app: 'client' });
    const npType = cp.type('networkpolicies', 'networking.k8s.io');
    const reg = cp.api.registry;
    reg.create(npType, 'x', {
      metadata: { name: 'isolate', namespace: 'x' },
      spec: { podSelector: { matchLabels: { app: 'server' } }, policyTypes: ['Ingress'] },
    });
    const ping = async (): Promise<boolean> =>
      (
        await runner.run('ip', ['netns', 'exec', client.ns, 'ping', '-c1', '-W', '0.3', '-q', server.ip], {
          okExitCodes: [1],
        })
      ).exitCode === 0;
    await until('the isolation', async () => !(await ping()));
    const lat: number[] = [];
    for (let i = 0; i < nPolicies; i++) {
      lat.push(
        await probeLatency(client, server, cp.dir, () => {
          reg.create(npType, 'x', {
            metadata: { name: `allow-${i}`, namespace: 'x' },
            spec: {
              podSelector: { matchLabels: { app: 'server' } },
              policyTypes: ['Ingress'],
              ingress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }] }],
            },
          });
          return Promise.resolve();
        }),
      );
      reg.delete(npType, 'x', `allow-${i}`);
      await until('the allow policy to be gone', async () => !(await ping()));
    }
    const ok = lat.filter((x) => !Number.isNaN(x));
    emit({
      bench: 'policy-realization',
      case: 'api-to-probe-1node',
      policies: nPolicies,
      failed: nPolicies - ok.length,
      p50_ms: round(percentile(ok, 50), 2),
      p99_ms: round(percentile(ok, 99), 2),
      baseline: { what: "the agent's part alone (handler-to-probe-1node)", p50_ms: round(handlerP50, 2) },
      ratio: round(handlerP50 / percentile(ok, 50), 3),
    });
  } finally {
    await cleanup.run();
  }
}

const LAB_NODES = 3;
const NP = { apiVersion: 'networking.k8s.io/v1', resource: 'networkpolicies', namespace: 'bench' } as const;

/** A NetworkPolicy in Namespace bench selecting the servers: deny-all ingress, or allow the clients. */
function benchPolicy(name: string, allowClients: boolean): Record<string, unknown> {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: 'bench' },
    spec: {
      podSelector: { matchLabels: { app: 'server' } },
      policyTypes: ['Ingress'],
      ...(allowClients ? { ingress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }] }] } : {}),
    },
  };
}

function pinnedPod(name: string, app: string, node: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'bench', labels: { app } },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'serve', image: 'agnhost', ports: [{ containerPort: 80, protocol: 'TCP' }] }],
    },
  };
}

/** Polls `cond` every 5 ms; the time (performance.now) it first held, or throws after `ms`. */
async function waitUntil(what: string, cond: () => boolean, ms = 20_000): Promise<number> {
  const deadline = performance.now() + ms;
  for (;;) {
    if (cond()) return performance.now();
    if (performance.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A flow's identity for strict modify/delete: table, priority and match. */
const flowId = (f: Flow): string => `${f.table}/${f.priority}/${f.match.toString()}`;

/** `api-to-probe-3node`; see the header. */
async function apiToProbeLab(nPolicies: number): Promise<void> {
  const skip = integrationSkipReason();
  if (skip !== undefined) {
    console.error(`api-to-probe-3node skipped: ${skip}`);
    return;
  }
  const dataDir = labDataDir('bench');
  const cleanup = new Cleanup();
  try {
    cleanup.teardown(async () => {
      await labCli(['down', '--data-dir', dataDir]);
    });
    const up = await labCli(['up', '--data-dir', dataDir, '--nodes', String(LAB_NODES), '--cni', 'antrea']);
    if (up.exitCode !== 0) throw new Error(`antrea-lab up failed:\n${up.stdout}\n${up.stderr}`);
    const paths = new LabPaths(dataDir);
    const client = KubeClient.fromKubeconfig(paths.adminKubeconfig);
    cleanup.teardown(() => client.close());
    const nodes = (await client.list<{ metadata?: { name?: string } }>({ apiVersion: 'v1', resource: 'nodes' })).items
      .map((n) => n.metadata?.name ?? '')
      .sort();
    await client.create(
      { apiVersion: 'v1', resource: 'namespaces' },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } },
    );
    for (const [i, node] of nodes.entries()) {
      await client.create(
        { apiVersion: 'v1', resource: 'pods', namespace: 'bench' },
        pinnedPod(`server-${i}`, 'server', node),
      );
      await client.create(
        { apiVersion: 'v1', resource: 'pods', namespace: 'bench' },
        pinnedPod(`client-${i}`, 'client', node),
      );
    }
    let pods = await probePods(paths, client, ['bench']);
    const podsDeadline = performance.now() + 120_000;
    while (pods.length < 2 * nodes.length) {
      if (performance.now() > podsDeadline) throw new Error(`only ${pods.length} bench Pods run`);
      await new Promise((r) => setTimeout(r, 200));
      pods = await probePods(paths, client, ['bench']);
    }
    const byKey = new Map(pods.map((p) => [p.key, p]));
    // The client on Node i probes the server on Node i+1: a source and an enforcing Node each.
    const pairs: ProbePair[] = nodes.map((_, i) => ({
      from: byKey.get(`bench/client-${i}`)!,
      to: byKey.get(`bench/server-${(i + 1) % nodes.length}`)!,
    }));
    await client.create(NP, benchPolicy('isolate', false));
    const prober = new ContinuousProber({
      pairs,
      port: 80,
      protocol: 'TCP',
      intervalMs: 20,
      timeoutMs: 250,
      maxInFlight: 20,
    });
    const stop = new AbortController();
    const probing = prober.run(stop.signal);
    cleanup.teardown(async () => {
      stop.abort();
      await probing;
    });
    const samples = (p: ProbePair): Parameters<typeof firstVerdict>[0] => prober.samples(pairKey(p));
    const allDenied = (since: number): boolean => pairs.every((p) => holdsVerdict(samples(p), since, false, 3));
    /** From `t0` until every pair connected (the slowest pair's first connected probe). */
    const allowedAfter = async (t0: number): Promise<number> => {
      await waitUntil('every pair to connect', () =>
        pairs.every((p) => firstVerdict(samples(p), t0, true) !== undefined),
      );
      return Math.max(...pairs.map((p) => firstVerdict(samples(p), t0, true)!.end - t0));
    };
    await waitUntil('the isolation', () => allDenied(performance.now() - 2000) && allDenied(0), 30_000);

    // The whole path: a NetworkPolicy created in the API.
    const ours: number[] = [];
    let failed = 0;
    for (let i = 0; i < nPolicies; i++) {
      const t0 = performance.now();
      await client.create(NP, benchPolicy(`allow-${i}`, true));
      try {
        ours.push(await allowedAfter(t0));
      } catch {
        failed++;
      }
      await client.delete({ ...NP, name: `allow-${i}` });
      const td = performance.now();
      await waitUntil('the pairs to be denied again', () => allDenied(td));
    }

    // The baseline: the same flows, installed directly on each Node's br-int.
    const conns = await Promise.all(
      nodes.map((n) =>
        OpenFlowConnection.connect({
          endpoint: `unix:${join(paths.ovsRunDir(n), 'br-int.mgmt')}`,
          requestTimeoutMs: 30_000,
        }),
      ),
    );
    cleanup.teardown(() => {
      for (const c of conns) c.close();
    });
    const dump = (): Promise<Flow[][]> => Promise.all(conns.map(async (c) => (await dumpFlows(c)).map((s) => s.flow)));
    const without = await dump();
    const t1 = performance.now();
    await client.create(NP, benchPolicy('allow-direct', true));
    await allowedAfter(t1);
    const withPolicy = await dump();
    await client.delete({ ...NP, name: 'allow-direct' });
    const t2 = performance.now();
    await waitUntil('the pairs to be denied again', () => allDenied(t2));
    const text = (fs: Flow[]): Set<string> => new Set(fs.map((f) => f.toString()));
    const install = withPolicy.map((fs, i) => fs.filter((f) => !text(without[i] ?? []).has(f.toString())));
    const restore = without.map((fs, i) => fs.filter((f) => !text(withPolicy[i] ?? []).has(f.toString())));
    const kept = without.map((fs) => new Set(fs.map(flowId)));
    const direct: number[] = [];
    for (let i = 0; i < nPolicies; i++) {
      const t0 = performance.now();
      await Promise.all(
        conns.map((c, n) =>
          applyBundle(
            c,
            (install[n] ?? []).map((f) => op.addFlow(f)),
          ),
        ),
      );
      direct.push(await allowedAfter(t0));
      await Promise.all(
        conns.map((c, n) =>
          applyBundle(c, [
            ...(install[n] ?? []).filter((f) => !kept[n]?.has(flowId(f))).map((f) => op.deleteFlow(f)),
            ...(restore[n] ?? []).map((f) => op.addFlow(f)),
          ]),
        ),
      );
      const td = performance.now();
      await waitUntil('the pairs to be denied again', () => allDenied(td));
    }
    emit({
      bench: 'policy-realization',
      case: `api-to-probe-${LAB_NODES}node`,
      policies: nPolicies,
      failed,
      p50_ms: round(percentile(ours, 50), 2),
      p99_ms: round(percentile(ours, 99), 2),
      baseline: {
        what: "the agents' flows for the policy installed directly on every Node's br-int, same probes",
        flows: install.map((f) => f.length),
        p50_ms: round(percentile(direct, 50), 2),
        p99_ms: round(percentile(direct, 99), 2),
      },
      ratio: round(percentile(direct, 50) / percentile(ours, 50), 3),
    });
  } finally {
    await cleanup.run();
  }
}
