/**
 * Finding and stopping the lab's processes without their parent: by network namespace (every
 * process the lab runs in a Node or Pod lives in one of the lab's namespaces) and by command line
 * (everything the lab starts names a path in its data directory). Used by `antrea-lab down`, which
 * must also work after the supervisor was killed outright.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import type { Clock } from '../common/util/clock.ts';
import { systemClock } from '../common/util/clock.ts';
import { NETNS_DIR } from '../platform/linux/netns.ts';

/** Whether `pid` is alive (a zombie counts as gone). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return !/^\d+ \([^)]*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The command line of `pid` (arguments joined by spaces), or undefined if it is gone. */
export function processCommandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((p) => p !== process.pid);
}

/** Processes whose command line contains `text`. */
export function processesMentioning(text: string): number[] {
  return allPids().filter((p) => processCommandLine(p)?.includes(text) === true);
}

/** The inode of a named network namespace, or undefined if absent. */
function netnsInode(name: string): number | undefined {
  try {
    return statSync(`${NETNS_DIR}/${name}`).ino;
  } catch {
    return undefined;
  }
}

/** Processes running inside any of the named network namespaces. */
export function processesInNetns(names: readonly string[]): number[] {
  const inodes = new Set(names.map(netnsInode).filter((i): i is number => i !== undefined));
  if (inodes.size === 0) return [];
  const out: number[] = [];
  for (const pid of allPids()) {
    try {
      const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/net`));
      if (m !== null && inodes.has(Number(m[1]))) out.push(pid);
    } catch {
      // gone, or a kernel thread
    }
  }
  return out;
}

/**
 * Sends SIGTERM to each process, waits up to `graceMs` for them to exit, then SIGKILLs the rest and
 * waits for them to be gone. Returns the pids that had to be killed. Absent pids are ignored.
 */
export async function stopProcesses(
  pids: readonly number[],
  graceMs = 5000,
  clock: Clock = systemClock,
): Promise<number[]> {
  const live = pids.filter(processAlive);
  for (const p of live) signal(p, 'SIGTERM');
  const deadline = clock.monotonic() + graceMs;
  while (live.some(processAlive) && clock.monotonic() < deadline) await clock.sleep(20);
  const killed = live.filter(processAlive);
  for (const p of killed) signal(p, 'SIGKILL');
  const hardDeadline = clock.monotonic() + 5000;
  while (killed.some(processAlive) && clock.monotonic() < hardDeadline) await clock.sleep(20);
  return killed;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
