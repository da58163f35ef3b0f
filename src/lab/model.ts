/**
 * The NetworkPolicy test model of the netpol conformance README: Namespaces x, y and z, each with
 * Pods a, b and c, in one of two flavours:
 * - `k8s`: Namespaces labelled `ns=<ns>`; Pods labelled `pod=<name>`, one container per (port,
 *   protocol) pair of 80/81 × TCP/UDP/SCTP named `cont-<port>-<proto>` with the port named
 *   `serve-<port>-<proto>`;
 * - `antrea`: the same plus Pod label `app=<name>`; containers `c80` and `c81` (TCP, UDP and SCTP,
 *   the TCP port named `serve-<port>`) and `c8080`…`c8085` (TCP, named `serve-<port>`).
 * The Pod program serves every TCP and UDP port declared; SCTP is declared but cannot be served here.
 * {@link ensureModel} creates what is missing, recreates Pods of the other flavour, restores the
 * labels and waits until all nine Pods run.
 */
import { type Clock, systemClock } from '../common/util/clock.ts';
import { AntreaError, errorMessage } from '../common/util/errors.ts';
import type { Pod } from '../common/k8s/objects.ts';
import { isNotFound, type KubeClient } from './kube-client.ts';

export type ModelKind = 'k8s' | 'antrea';
export const MODEL_NAMESPACES = ['x', 'y', 'z'] as const;
export const MODEL_PODS = ['a', 'b', 'c'] as const;
/** `x/a` … `z/c`, in matrix order. */
export const MODEL_KEYS: readonly string[] = MODEL_NAMESPACES.flatMap((ns) => MODEL_PODS.map((p) => `${ns}/${p}`));
export const MODEL_ANNOTATION = 'lab.antrea.io/model';

interface ContainerPortSpec {
  name?: string;
  containerPort: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
}

export function modelNamespaceLabels(ns: string): Record<string, string> {
  return { ns, 'kubernetes.io/metadata.name': ns };
}

export function modelPodLabels(name: string, kind: ModelKind): Record<string, string> {
  return kind === 'k8s' ? { pod: name } : { pod: name, app: name };
}

function containers(kind: ModelKind): { name: string; image: string; ports: ContainerPortSpec[] }[] {
  const image = 'registry.k8s.io/e2e-test-images/agnhost:2.52';
  if (kind === 'k8s') {
    return [80, 81].flatMap((port) =>
      (['TCP', 'UDP', 'SCTP'] as const).map((protocol) => {
        const p = protocol.toLowerCase();
        return {
          name: `cont-${port}-${p}`,
          image,
          ports: [{ name: `serve-${port}-${p}`, containerPort: port, protocol }],
        };
      }),
    );
  }
  return [
    ...[80, 81].map((port) => ({
      name: `c${port}`,
      image,
      ports: [
        { name: `serve-${port}`, containerPort: port, protocol: 'TCP' as const },
        { containerPort: port, protocol: 'UDP' as const },
        { containerPort: port, protocol: 'SCTP' as const },
      ],
    })),
    ...[8080, 8081, 8082, 8083, 8084, 8085].map((port) => ({
      name: `c${port}`,
      image,
      ports: [{ name: `serve-${port}`, containerPort: port, protocol: 'TCP' as const }],
    })),
  ];
}

/** A model Pod; with `node`, pinned to that Node (nodeSelector on `kubernetes.io/hostname`). */
export function modelPod(ns: string, name: string, kind: ModelKind, node?: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels: modelPodLabels(name, kind), annotations: { [MODEL_ANNOTATION]: kind } },
    spec: {
      containers: containers(kind),
      terminationGracePeriodSeconds: 1,
      ...(node === undefined ? {} : { nodeSelector: { 'kubernetes.io/hostname': node } }),
    },
  };
}

/**
 * A placement of the nine model Pods on `nodes` drawn from `seed`: a seeded shuffle of the Pods
 * dealt round-robin, so every Node gets some (given at least as many Pods) and the same seed gives
 * the same placement. Pure. Throws on an empty node list.
 */
export function seededPlacement(nodes: readonly string[], seed: number): Map<string, string> {
  if (nodes.length === 0) throw new Error('seededPlacement: no Nodes to place the model Pods on');
  let x = seed >>> 0 || 0x9e3779b9;
  const next = (): number => {
    // xorshift32
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  const keys = [...MODEL_KEYS];
  for (let i = keys.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    [keys[i], keys[j]] = [keys[j] ?? '', keys[i] ?? ''];
  }
  const offset = next() % nodes.length;
  return new Map(keys.map((k, i) => [k, nodes[(i + offset) % nodes.length] ?? '']));
}

export interface ModelPod {
  readonly key: string;
  readonly ip: string;
  readonly node: string;
}

export interface EnsureModelOptions {
  readonly say?: (line: string) => void;
  readonly clock?: Clock;
  /** How long the Pods may take to run (default 120 s). */
  readonly timeoutMs?: number;
  /**
   * Pod key → Node: a model Pod elsewhere (or not pinned there) is recreated on its Node. Absent:
   * wherever the scheduler puts them (and existing Pods stay where they are).
   */
  readonly placement?: ReadonlyMap<string, string>;
}

/**
 * Makes the model exist as `kind` with its original labels, and resolves with the nine Pods once
 * they all run (in {@link MODEL_KEYS} order).
 */
export async function ensureModel(
  client: KubeClient,
  kind: ModelKind,
  o: EnsureModelOptions = {},
): Promise<ModelPod[]> {
  const clock = o.clock ?? systemClock;
  for (const ns of MODEL_NAMESPACES) {
    const ref = { apiVersion: 'v1', resource: 'namespaces', name: ns } as const;
    const cur = await client.find<{ metadata?: { labels?: Record<string, string>; deletionTimestamp?: string } }>(ref);
    if (cur?.metadata?.deletionTimestamp !== undefined) await waitGone(client, ref, clock);
    if (cur === undefined || cur.metadata?.deletionTimestamp !== undefined) {
      await client.create(ref, {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: ns, labels: modelNamespaceLabels(ns) },
      });
    } else {
      await resetLabels(client, ref, cur.metadata?.labels ?? {}, modelNamespaceLabels(ns));
    }
  }
  const recreate: string[] = [];
  for (const key of MODEL_KEYS) {
    const [ns, name] = key.split('/') as [string, string];
    const ref = { apiVersion: 'v1', resource: 'pods', namespace: ns, name } as const;
    let cur = await client.find<Pod>(ref);
    const node = o.placement?.get(key);
    const pinned = (cur?.spec as { nodeSelector?: Record<string, string> } | undefined)?.nodeSelector?.[
      'kubernetes.io/hostname'
    ];
    if (
      cur !== undefined &&
      (cur.metadata?.annotations?.[MODEL_ANNOTATION] !== kind ||
        cur.metadata.deletionTimestamp !== undefined ||
        (node !== undefined && pinned !== node))
    ) {
      recreate.push(key);
      await client.delete(ref);
      await waitGone(client, ref, clock);
      cur = undefined;
    }
    if (cur === undefined) await client.create(ref, modelPod(ns, name, kind, node));
    else await resetLabels(client, ref, cur.metadata?.labels ?? {}, modelPodLabels(name, kind));
  }
  if (recreate.length > 0) o.say?.(`recreated ${recreate.length} Pod(s) for the ${kind} model`);
  return waitModelRunning(client, clock, o.timeoutMs ?? 120_000);
}

/** Merge-patches labels so that they equal `want` (removing the others). */
export async function resetLabels(
  client: KubeClient,
  ref: Parameters<KubeClient['patch']>[0],
  have: Readonly<Record<string, string>>,
  want: Readonly<Record<string, string>>,
): Promise<void> {
  const patch: Record<string, string | null> = {};
  for (const k of Object.keys(have)) if (!(k in want)) patch[k] = null;
  for (const [k, v] of Object.entries(want)) if (have[k] !== v) patch[k] = v;
  if (Object.keys(patch).length > 0) await client.patch(ref, { metadata: { labels: patch } });
}

async function waitGone(
  client: KubeClient,
  ref: Parameters<KubeClient['get']>[0],
  clock: Clock,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = clock.monotonic() + timeoutMs;
  for (;;) {
    try {
      await client.get(ref);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    if (clock.monotonic() > deadline) {
      throw new AntreaError('LAB_MODEL_TIMEOUT', `${ref.resource} ${ref.name ?? ''} still exists after ${timeoutMs}ms`);
    }
    await clock.sleep(100);
  }
}

/** Waits until the nine Pods run with an IP and are Ready. */
export async function waitModelRunning(
  client: KubeClient,
  clock: Clock = systemClock,
  timeoutMs = 120_000,
): Promise<ModelPod[]> {
  const deadline = clock.monotonic() + timeoutMs;
  for (;;) {
    let pods: Pod[] = [];
    let listError = '';
    try {
      pods = (await client.list<Pod>({ apiVersion: 'v1', resource: 'pods' })).items;
    } catch (err) {
      listError = ` (listing Pods failed: ${errorMessage(err)})`;
    }
    const byKey = new Map(pods.map((p) => [`${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`, p]));
    const out: ModelPod[] = [];
    const missing: string[] = [];
    for (const key of MODEL_KEYS) {
      const p = byKey.get(key);
      const ready = (
        (p?.status as { conditions?: { type?: string; status?: string }[] } | undefined)?.conditions ?? []
      ).some((c) => c.type === 'Ready' && c.status === 'True');
      if (
        p?.status?.phase === 'Running' &&
        ready &&
        p.status.podIP !== undefined &&
        p.metadata?.deletionTimestamp === undefined
      ) {
        out.push({ key, ip: p.status.podIP, node: p.spec?.nodeName ?? '' });
      } else missing.push(key);
    }
    if (missing.length === 0) return out;
    if (clock.monotonic() > deadline) {
      throw new AntreaError(
        'LAB_MODEL_TIMEOUT',
        `Pods not running after ${timeoutMs}ms: ${missing.join(', ')}${listError}`,
      );
    }
    await clock.sleep(100);
  }
}
