/**
 * `npm run bench -- lab [--nodes 2,4] [--pods 20]`: the lab as a user meets it.
 *
 * - `up-N-nodes`: wall time of `antrea-lab up --nodes N` (the CLI, as a user runs it, until it
 *   returns with every Node Ready) and of `down`. Baseline, measured in the same run: the floor of
 *   the Nodes' start-up done one after another by hand, that is, N network namespaces each with a
 *   private ovsdb-server + ovs-vswitchd (OvsDaemons) started in sequence. ratio = floor / up (the
 *   lab also runs the API server, registers Nodes and installs their CNI, so < 1 is expected; the
 *   closer to 1, the less the lab adds).
 * - `pods-to-running`: in the 2-Node lab, P Pods created at once (one container serving TCP/80 and
 *   UDP/80); time per Pod to Running (batch wall time / P) and the p50/p95 of each Pod's latency
 *   from creation to Running and Ready. Baseline: the same number of Pods created one at a time,
 *   each waited for before the next. ratio = serial per-Pod time / batch per-Pod time.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { OvsDaemons } from '../../src/platform/linux/ovs-daemons.ts';
import { KubeClient } from '../../src/lab/kube-client.ts';
import { LabPaths } from '../../src/lab/state.ts';
import { integrationSkipReason, launcher, netns, runner } from '../helpers/env.ts';
import { labCli, labDataDir } from '../helpers/lab.ts';
import { emit, percentile, round, timed } from './lib.ts';

interface PodObj {
  metadata?: { name?: string };
  status?: { phase?: string; conditions?: { type: string; status: string }[] };
}

function option(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
}

/** N namespaces with a private OVS each, started one after another; removed again. */
async function ovsFloor(nodes: number): Promise<number> {
  const tag = randomBytes(3).toString('hex');
  const started: { ns: string; ovs: OvsDaemons; dir: string }[] = [];
  try {
    const { ms } = await timed(async () => {
      for (let i = 0; i < nodes; i++) {
        const ns = `albench-${tag}-${i}`;
        const dir = `/tmp/albench-${tag}-${i}`;
        await netns.ensure(ns);
        const ovs = new OvsDaemons({ runDir: dir, netns: ns, runner, launcher });
        started.push({ ns, ovs, dir });
        await ovs.start();
      }
    });
    return ms;
  } finally {
    for (const s of started) {
      await s.ovs.stop();
      await netns.delete(s.ns);
      rmSync(s.dir, { recursive: true, force: true });
    }
  }
}

function runningAndReady(p: PodObj): boolean {
  return (
    p.status?.phase === 'Running' && (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}

function benchPod(name: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'bench', labels: { app: 'bench' } },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'serve',
          image: 'registry.k8s.io/e2e-test-images/agnhost:2.52',
          ports: [
            { containerPort: 80, protocol: 'TCP' },
            { containerPort: 80, protocol: 'UDP' },
          ],
        },
      ],
    },
  };
}

/** Creates `names` at once and returns each Pod's creation-to-Running-and-Ready latency (ms), polling every 20 ms. */
async function createAndWait(client: KubeClient, names: readonly string[]): Promise<number[]> {
  const sent = new Map<string, number>();
  await Promise.all(
    names.map(async (n) => {
      sent.set(n, performance.now());
      await client.create({ apiVersion: 'v1', resource: 'pods', namespace: 'bench' }, benchPod(n));
    }),
  );
  const done = new Map<string, number>();
  const deadline = performance.now() + 300_000;
  while (done.size < names.length) {
    if (performance.now() > deadline) throw new Error(`only ${done.size} of ${names.length} Pods became Ready`);
    const list = await client.list<PodObj>(
      { apiVersion: 'v1', resource: 'pods', namespace: 'bench' },
      { labelSelector: 'app=bench' },
    );
    const now = performance.now();
    for (const p of list.items) {
      const n = p.metadata?.name ?? '';
      if (names.includes(n) && !done.has(n) && runningAndReady(p)) done.set(n, now - (sent.get(n) ?? now));
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return names.map((n) => done.get(n) ?? Number.NaN);
}

async function deleteAll(client: KubeClient, names: readonly string[]): Promise<void> {
  await Promise.all(
    names.map((n) => client.delete({ apiVersion: 'v1', resource: 'pods', namespace: 'bench', name: n })),
  );
  const deadline = performance.now() + 120_000;
  for (;;) {
    const left = await client.list<PodObj>({ apiVersion: 'v1', resource: 'pods', namespace: 'bench' });
    if (left.items.length === 0) return;
    if (performance.now() > deadline) throw new Error(`${left.items.length} Pods not deleted`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function podsCase(dataDir: string, pods: number): Promise<void> {
  const client = KubeClient.fromKubeconfig(new LabPaths(dataDir).adminKubeconfig);
  try {
    await client.create(
      { apiVersion: 'v1', resource: 'namespaces' },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } },
    );
    // Warm-up: one Pod (first-use costs: compile cache, CNI plugin binaries in the page cache).
    await createAndWait(client, ['warmup']);
    await deleteAll(client, ['warmup']);

    const batchNames = Array.from({ length: pods }, (_, i) => `batch-${i}`);
    const batch = await timed(() => createAndWait(client, batchNames));
    await deleteAll(client, batchNames);

    const serial: number[] = [];
    const serialNames = Array.from({ length: pods }, (_, i) => `serial-${i}`);
    const serialRun = await timed(async () => {
      for (const n of serialNames) serial.push(...(await createAndWait(client, [n])));
    });
    await deleteAll(client, serialNames);

    const perPod = batch.ms / pods;
    const serialPerPod = serialRun.ms / pods;
    emit({
      bench: 'lab',
      case: 'pods-to-running',
      nodes: 2,
      pods,
      per_pod_ms: round(perPod),
      batch_total_ms: round(batch.ms),
      latency_p50_ms: round(percentile(batch.result, 50)),
      latency_p95_ms: round(percentile(batch.result, 95)),
      baseline: {
        what: 'the same Pods created one at a time, each waited for',
        per_pod_ms: round(serialPerPod),
        latency_p50_ms: round(percentile(serial, 50)),
      },
      ratio: round(serialPerPod / perPod),
    });
  } finally {
    client.close();
  }
}

export async function run(args: string[]): Promise<void> {
  const skip = integrationSkipReason();
  if (skip !== undefined) {
    console.error(`lab benchmark skipped: ${skip}`);
    return;
  }
  const nodeCounts = option(args, '--nodes', '2,4')
    .split(',')
    .map((s) => Number(s));
  const pods = Number(option(args, '--pods', '20'));
  for (const nodes of nodeCounts) {
    const dataDir = labDataDir(`bench${nodes}`);
    try {
      const floorMs = await ovsFloor(nodes);
      const up = await timed(() => labCli(['up', '--data-dir', dataDir, '--nodes', String(nodes)]));
      if (up.result.exitCode !== 0) throw new Error(`up failed:\n${up.result.stdout}\n${up.result.stderr}`);
      if (nodes === 2) await podsCase(dataDir, pods);
      const down = await timed(() => labCli(['down', '--data-dir', dataDir]));
      emit({
        bench: 'lab',
        case: `up-${nodes}-nodes`,
        nodes,
        up_ms: round(up.ms),
        down_ms: round(down.ms),
        baseline: {
          what: `${nodes} namespaces with a private OVS each, started in sequence`,
          floor_ms: round(floorMs),
        },
        ratio: round(floorMs / up.ms),
      });
    } finally {
      await labCli(['down', '--data-dir', dataDir]);
      rmSync(join(dataDir), { recursive: true, force: true });
    }
  }
}
