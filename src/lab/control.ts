/**
 * The CLI side of the lab: starting the supervisor in the background and waiting until the cluster
 * is ready (`up`), reading the lab's state (`status`), and finding its Pods for `exec` and probes.
 */
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Clock, formatDuration, systemClock } from '../common/util/clock.ts';
import { AntreaError, ValidationError } from '../common/util/errors.ts';
import type { CommandRunner, ProcessLauncher } from '../common/util/exec.ts';
import type { Pod } from '../common/k8s/objects.ts';
import { type ComponentRequest, type ComponentResult, requestComponent } from './components.ts';
import { KubeClient } from './kube-client.ts';
import type { PodRecord } from './kubelet.ts';
import type { ProbePod } from './probe.ts';
import { processAlive } from './processes.ts';
import { isLabDataDir, type LabCni, LabPaths, type LabState, prepareDataDir, readState } from './state.ts';
import { isSupervisor, labLeftovers, teardownLab } from './teardown.ts';
import type { LabEncap } from './topology.ts';

export type LabErrorCode = 'LAB_RUNNING' | 'LAB_NOT_RUNNING' | 'LAB_START_FAILED' | 'LAB_POD_NOT_FOUND';
export class LabError extends AntreaError<LabErrorCode> {}

export interface UpOptions {
  readonly dataDir: string;
  readonly nodes: number;
  readonly encap: LabEncap;
  readonly cni: LabCni;
  readonly runner: CommandRunner;
  readonly launcher: ProcessLauncher;
  /** argv of `antrea-lab` itself (node + the CLI entry), to start `antrea-lab supervise`. */
  readonly cliCommand: readonly string[];
  readonly say: (line: string) => void;
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
  /** Give up waiting for the lab after this long (default 5 min). */
  readonly timeoutMs?: number;
}

/** The state of a lab whose supervisor runs, or undefined. */
export function runningLab(paths: LabPaths): LabState | undefined {
  const s = readState(paths);
  return s !== undefined && isSupervisor(s.pid, paths.dataDir) ? s : undefined;
}

function tail(path: string, n = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Starts a lab and resolves with its state once every Node is Ready. If the supervisor fails, or
 * the signal aborts, everything is removed again before this rejects.
 */
export async function labUp(o: UpOptions): Promise<LabState> {
  const clock = o.clock ?? systemClock;
  const paths = new LabPaths(o.dataDir);
  if (runningLab(paths) !== undefined) {
    throw new LabError(
      'LAB_RUNNING',
      `a lab is already running in ${o.dataDir} (antrea-lab down --data-dir ${o.dataDir})`,
    );
  }
  const left = existsSync(paths.dataDir) && !isLabDataDir(paths) ? [] : await labLeftovers(paths, o.runner);
  if (left.length > 0) {
    o.say(`removing what an earlier lab in ${o.dataDir} left behind (${left.length} item(s))`);
    await teardownLab(paths, { runner: o.runner, clock });
  }
  prepareDataDir(paths);
  writeFileSync(paths.progress, '');
  const [cmd, ...args] = o.cliCommand;
  if (cmd === undefined) throw new ValidationError('cliCommand', 'is empty');
  const proc = await o.launcher.launch(
    cmd,
    [...args, 'supervise', '--data-dir', o.dataDir, '--nodes', String(o.nodes), '--encap', o.encap, '--cni', o.cni],
    { logFile: paths.supervisorLog, newProcessGroup: true },
  );
  const t0 = clock.monotonic();
  let shown = 0;
  const showProgress = (): void => {
    let text: string;
    try {
      text = readFileSync(paths.progress, 'utf8');
    } catch {
      return;
    }
    const lines = text.split('\n');
    const complete = lines.slice(0, -1);
    for (const l of complete.slice(shown)) o.say(l);
    shown = complete.length;
  };
  const fail = async (why: string): Promise<never> => {
    showProgress();
    o.say(`the lab did not come up: ${why}; removing it`);
    await teardownLab(paths, { runner: o.runner, clock });
    throw new LabError('LAB_START_FAILED', why);
  };
  const deadline = t0 + (o.timeoutMs ?? 300_000);
  for (;;) {
    showProgress();
    const s = readState(paths);
    if (s?.phase === 'ready' && s.pid === proc.pid) return s;
    if (s?.phase === 'failed' && s.pid === proc.pid) {
      await proc.stop(30_000);
      return fail(
        `${s.error ?? 'failed'}\n--- supervisor log (${paths.supervisorLog}) ---\n${tail(paths.supervisorLog)}`,
      );
    }
    if (!proc.running()) {
      const info = await proc.exited;
      return fail(
        `the supervisor exited (code ${info.code}, signal ${info.signal})\n--- supervisor log ---\n${tail(paths.supervisorLog)}`,
      );
    }
    if (o.signal?.aborted === true) return fail('interrupted');
    if (clock.monotonic() > deadline) return fail(`not ready after ${formatDuration(clock.monotonic() - t0)}`);
    await clock.sleep(100);
  }
}

/** A client for the lab's API server, or a LAB_NOT_RUNNING error. */
export function labClient(paths: LabPaths): KubeClient {
  if (runningLab(paths) === undefined) {
    throw new LabError('LAB_NOT_RUNNING', `no lab is running in ${paths.dataDir} (start one with antrea-lab up)`);
  }
  return KubeClient.fromKubeconfig(paths.adminKubeconfig);
}

/** The Pod records the kubelets wrote (Pods that have a network and a running program). */
export function podRecords(paths: LabPaths): PodRecord[] {
  if (!existsSync(paths.podsDir)) return [];
  return readdirSync(paths.podsDir)
    .filter((f) => f.endsWith('.json'))
    .flatMap((f) => {
      try {
        return [JSON.parse(readFileSync(join(paths.podsDir, f), 'utf8')) as PodRecord];
      } catch {
        return [];
      }
    });
}

/** Finds a Pod by `namespace/name` (or `name` in `defaultNamespace`). */
export function findPod(paths: LabPaths, ref: string, defaultNamespace = 'default'): PodRecord {
  const [ns, name] = ref.includes('/') ? (ref.split('/', 2) as [string, string]) : [defaultNamespace, ref];
  const path = paths.podRecord(ns, name);
  try {
    const rec = JSON.parse(readFileSync(path, 'utf8')) as PodRecord;
    if (statSync(rec.socket).isSocket() && processAlive(rec.pid)) return rec;
  } catch {
    // fall through
  }
  throw new LabError('LAB_POD_NOT_FOUND', `Pod ${ns}/${name} is not running in the lab in ${paths.dataDir}`);
}

/** Running Pods with their IPs and control sockets, in `namespace/name` order, optionally only some namespaces. */
export async function probePods(
  paths: LabPaths,
  client: KubeClient,
  namespaces?: readonly string[],
): Promise<ProbePod[]> {
  const list = await client.list<Pod>({ apiVersion: 'v1', resource: 'pods' });
  const records = new Map(podRecords(paths).map((r) => [r.uid, r]));
  const out: ProbePod[] = [];
  for (const p of list.items) {
    const ns = p.metadata?.namespace ?? '';
    if (namespaces !== undefined && !namespaces.includes(ns)) continue;
    const rec = records.get(p.metadata?.uid ?? '');
    const ip = p.status?.podIP;
    if (rec === undefined || ip === undefined || p.status?.phase !== 'Running') continue;
    out.push({ key: `${ns}/${p.metadata?.name ?? ''}`, ip, socket: rec.socket });
  }
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

/**
 * Kills, stops, starts or restarts one of the running lab's components (see components.ts): the
 * supervisor carries it out. LAB_NOT_RUNNING when no lab runs in `paths`.
 */
export async function labComponent(
  paths: LabPaths,
  req: ComponentRequest,
  timeoutMs?: number,
): Promise<ComponentResult> {
  if (runningLab(paths) === undefined) {
    throw new LabError('LAB_NOT_RUNNING', `no lab is running in ${paths.dataDir} (start one with antrea-lab up)`);
  }
  return await requestComponent(paths.controlSocket, req, timeoutMs);
}

export { LabPaths };
