/**
 * `antrea-lab down`: stops a lab and removes everything it made, whether its supervisor is running,
 * already stopped, or was killed outright. It needs nothing but the data directory's path: the
 * names of the lab's namespaces and of its root-namespace veth derive from it (topology.ts), its
 * processes are found by namespace and command line (processes.ts), and the directory is removed
 * last. Every step carries on past problems and reports them.
 */
import { readFileSync } from 'node:fs';
import { type Clock, systemClock } from '../common/util/clock.ts';
import { errorMessage } from '../common/util/errors.ts';
import type { CommandRunner } from '../common/util/exec.ts';
import { type Logger, nullLogger } from '../common/util/log.ts';
import { NetnsManager } from '../platform/linux/netns.ts';
import { destroyLabNetwork, labNamespaces } from './fabric.ts';
import { processAlive, processCommandLine, processesInNetns, processesMentioning, stopProcesses } from './processes.ts';
import { type LabPaths, readState, removeDataDir } from './state.ts';
import { labPrefix } from './topology.ts';

/** The programs the lab starts; a process naming the data directory is only stopped if it is one of them. */
const LAB_PROGRAMS =
  /ovsdb-server|ovs-vswitchd|lab-pod\.ts|antrea-agent\.ts|antrea-controller\.ts|antrea-lab\.ts supervise/;

export interface TeardownReport {
  /** The supervisor was running and stopped by itself after SIGTERM. */
  readonly supervisorStopped: boolean;
  /** Processes that had to be stopped by down itself (after a crash). */
  readonly processesStopped: readonly number[];
  readonly removed: readonly string[];
  readonly problems: readonly string[];
}

function ancestors(): Set<number> {
  const out = new Set<number>();
  let pid = process.pid;
  for (let i = 0; i < 64 && pid > 1; i++) {
    out.add(pid);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  return out;
}

/** Whether `pid` is the supervisor of the lab in `dataDir`. */
export function isSupervisor(pid: number, dataDir: string): boolean {
  const cmd = processCommandLine(pid);
  return processAlive(pid) && cmd !== undefined && cmd.includes(' supervise') && cmd.includes(dataDir);
}

export interface TeardownOptions {
  readonly runner: CommandRunner;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** How long the supervisor may take to stop by itself after SIGTERM (default 60 s). */
  readonly supervisorGraceMs?: number;
  readonly say?: (line: string) => void;
}

export async function teardownLab(paths: LabPaths, o: TeardownOptions): Promise<TeardownReport> {
  const clock = o.clock ?? systemClock;
  const log = (o.logger ?? nullLogger).child({ component: 'lab-teardown' });
  const say = o.say ?? ((): void => undefined);
  const problems: string[] = [];
  const removed: string[] = [];
  const prefix = labPrefix(paths.dataDir);
  const state = readState(paths);

  let supervisorStopped = false;
  if (state !== undefined && isSupervisor(state.pid, paths.dataDir)) {
    say(`stopping the lab supervisor (pid ${state.pid})`);
    try {
      process.kill(state.pid, 'SIGTERM');
    } catch {
      // gone meanwhile
    }
    const deadline = clock.monotonic() + (o.supervisorGraceMs ?? 60_000);
    while (processAlive(state.pid) && clock.monotonic() < deadline) await clock.sleep(50);
    if (processAlive(state.pid)) {
      problems.push(`the supervisor (pid ${state.pid}) did not stop within the grace period; killed it`);
      try {
        process.kill(state.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    } else supervisorStopped = true;
  }

  // Whatever is left: processes in the lab's namespaces or running the lab's programs from its directory.
  const netns = new NetnsManager(o.runner);
  const mine = ancestors();
  const candidates = new Set<number>([
    ...processesInNetns(labNamespaces(netns, prefix)),
    ...processesMentioning(paths.dataDir).filter((p) => LAB_PROGRAMS.test(processCommandLine(p) ?? '')),
  ]);
  for (const p of mine) candidates.delete(p);
  let processesStopped: number[] = [];
  if (candidates.size > 0) {
    say(`stopping ${candidates.size} leftover process(es)`);
    const list = [...candidates];
    processesStopped = list;
    const killed = await stopProcesses(list, 3000, clock);
    if (killed.some(processAlive)) problems.push(`processes still alive: ${killed.filter(processAlive).join(', ')}`);
  }

  const net = await destroyLabNetwork(o.runner, prefix, log);
  removed.push(...net.removed);
  problems.push(...net.problems);
  try {
    if (removeDataDir(paths)) removed.push(`directory ${paths.dataDir}`);
  } catch (err) {
    problems.push(`directory ${paths.dataDir}: ${errorMessage(err)}`);
  }
  return { supervisorStopped, processesStopped, removed, problems };
}

/** What of the lab in `paths` is still on the machine (namespaces, root veth, processes, directory). */
export async function labLeftovers(paths: LabPaths, runner: CommandRunner): Promise<string[]> {
  const prefix = labPrefix(paths.dataDir);
  const netns = new NetnsManager(runner);
  const left = labNamespaces(netns, prefix).map((n) => `namespace ${n}`);
  const r = await runner.run('ip', ['link', 'show', `${prefix}ctl`], { okExitCodes: [1], timeoutMs: 10_000 });
  if (r.exitCode === 0) left.push(`link ${prefix}ctl`);
  const mine = ancestors();
  for (const p of processesMentioning(paths.dataDir)) {
    if (!mine.has(p) && LAB_PROGRAMS.test(processCommandLine(p) ?? '')) left.push(`process ${p}`);
  }
  if (readState(paths) !== undefined) left.push(`directory ${paths.dataDir}`);
  return left;
}
