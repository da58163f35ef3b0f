/**
 * The pending-ADD journal: before a CNI ADD touches anything it records what it is about to make
 * (one small file per container interface under `<stateDir>/cni-pending/`), and it removes the
 * record once everything is in place, just before answering. A record found at start-up is an ADD
 * the runtime never got an answer for (the agent died mid-way), so start-up reconciliation rolls it
 * back completely; the runtime then retries the ADD or sends a DEL.
 *
 * Writes are a temporary file renamed into place (atomic on POSIX and NTFS). No fsync: the record
 * only has to survive the agent process, not the machine (a reboot removes Pod namespaces and veths
 * anyway, and start-up reconciliation then releases the IPs).
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../../util/errors.ts';
import { type Logger, nullLogger } from '../../util/log.ts';

export interface PendingAdd {
  readonly containerId: string;
  readonly ifname: string;
  /** CNI_NETNS as the runtime gave it. */
  readonly netns: string;
  readonly hostInterfaceName: string;
  readonly podName: string;
  readonly podNamespace: string;
  /** CNI_ARGS and CNI_PATH, to replay the IPAM DEL. */
  readonly args: string;
  readonly cniPath: string;
  /** The network configuration (stdin) as received. */
  readonly networkConfig: string;
  /** Wall-clock ms when the ADD started. */
  readonly startedAt: number;
}

function fileName(containerId: string, ifname: string): string {
  return `${containerId}_${encodeURIComponent(ifname)}.json`;
}

export class PendingAddJournal {
  readonly dir: string;
  private readonly logger: Logger;

  constructor(dir: string, logger: Logger = nullLogger) {
    this.dir = dir;
    this.logger = logger.child({ component: 'cni-journal' });
  }

  /** Records an ADD about to start (replacing an older record of the same interface). */
  begin(rec: PendingAdd): void {
    mkdirSync(this.dir, { recursive: true });
    const path = join(this.dir, fileName(rec.containerId, rec.ifname));
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, JSON.stringify(rec));
    renameSync(tmp, path);
  }

  /** Removes the record (the ADD completed, was rolled back, or the interface was deleted). Absent: nothing happens. */
  commit(containerId: string, ifname: string): void {
    rmSync(join(this.dir, fileName(containerId, ifname)), { force: true });
  }

  get(containerId: string, ifname: string): PendingAdd | undefined {
    try {
      return JSON.parse(readFileSync(join(this.dir, fileName(containerId, ifname)), 'utf8')) as PendingAdd;
    } catch {
      return undefined;
    }
  }

  /** Every record. Unreadable ones (a crash while writing the temporary file) are removed and skipped. */
  list(): PendingAdd[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: PendingAdd[] = [];
    for (const n of names) {
      const path = join(this.dir, n);
      if (!n.endsWith('.json')) {
        rmSync(path, { force: true });
        continue;
      }
      try {
        const rec = JSON.parse(readFileSync(path, 'utf8')) as PendingAdd;
        if (typeof rec.containerId !== 'string' || typeof rec.ifname !== 'string') throw new Error('incomplete record');
        out.push(rec);
      } catch (err) {
        this.logger.warn('dropping an unreadable pending-ADD record', { path, err: errorMessage(err) });
        rmSync(path, { force: true });
      }
    }
    return out;
  }
}
