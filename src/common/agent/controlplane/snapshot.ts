/**
 * The agent's on-disk copy of the last complete policy set, so an agent that starts while the
 * controller is unreachable enforces the last known policies (Antrea's fallback store, PR #5739),
 * without its weak spots: one file holds all three resources, written to a temporary file, fsynced
 * and renamed over the old one (then the directory is fsynced), so a crash leaves either the old or
 * the new set, never a mix. The file is:
 *
 *   ANTREA-TS-POLICY-SNAPSHOT v1\n
 *   {"node":…,"generation":…,"savedAt":…,"sections":[{"resource":…,"count":…,"bytes":…},…],"sha256":…}\n
 *   <payload: each section is the resource's List object in Kubernetes protobuf>
 *
 * Loading checks everything (magic, header, Node name, payload size, SHA-256, every section
 * decoding to the announced number of objects) and treats the snapshot as unusable as a whole on
 * the first problem: {@link SnapshotStore.load} then reports `corrupt` with the reason, and never
 * hands out a partial or empty set in its place.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  ControlplaneEncoder,
  type ControlplaneResource,
  decodeObject,
  RESOURCE_NAMES,
  RESOURCES,
} from '../../apis/controlplane/codec.ts';
import { AntreaError, errorMessage } from '../../util/errors.ts';
import type { ResourceObjects } from './state.ts';

const MAGIC = 'ANTREA-TS-POLICY-SNAPSHOT v1';

export class SnapshotError extends AntreaError<'SNAPSHOT_CORRUPT'> {
  constructor(path: string, message: string, cause?: unknown) {
    super('SNAPSHOT_CORRUPT', `policy snapshot ${path} is unusable: ${message}`, {
      details: { path },
      ...(cause === undefined ? {} : { cause }),
    });
  }
}

export type SnapshotObjects = { readonly [R in ControlplaneResource]: readonly ResourceObjects[R][] };

export type SnapshotLoad =
  | {
      readonly status: 'loaded';
      readonly objects: SnapshotObjects;
      readonly generation: number;
      readonly savedAt: string;
    }
  | { readonly status: 'absent' }
  | { readonly status: 'corrupt'; readonly error: SnapshotError };

interface Header {
  readonly node: string;
  readonly generation: number;
  readonly savedAt: string;
  readonly sections: readonly {
    readonly resource: ControlplaneResource;
    readonly count: number;
    readonly bytes: number;
  }[];
  readonly sha256: string;
}

export interface SnapshotStoreOptions {
  /** The snapshot file, e.g. /var/run/antrea/networkpolicy/snapshot. */
  readonly path: string;
  /** The Node the snapshot belongs to; a snapshot of another Node is refused. */
  readonly nodeName: string;
  readonly now?: () => number;
}

export class SnapshotStore {
  readonly path: string;
  private readonly nodeName: string;
  private readonly now: () => number;
  private readonly encoder = new ControlplaneEncoder();
  private generation = 0;

  constructor(opts: SnapshotStoreOptions) {
    this.path = opts.path;
    this.nodeName = opts.nodeName;
    this.now = opts.now ?? Date.now;
  }

  /** The generation of the last snapshot written or loaded (0 before any). */
  get lastGeneration(): number {
    return this.generation;
  }

  /** Reads the snapshot. Never throws for a bad file: that is `corrupt`. */
  async load(): Promise<SnapshotLoad> {
    await this.removeStaleTemporaries();
    let data: Buffer;
    try {
      data = await readFile(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'absent' };
      return { status: 'corrupt', error: new SnapshotError(this.path, `cannot read it: ${errorMessage(err)}`, err) };
    }
    try {
      const r = this.parse(data);
      this.generation = Math.max(this.generation, r.generation);
      return { status: 'loaded', ...r };
    } catch (err) {
      const e = err instanceof SnapshotError ? err : new SnapshotError(this.path, errorMessage(err), err);
      return { status: 'corrupt', error: e };
    }
  }

  private parse(data: Buffer): { objects: SnapshotObjects; generation: number; savedAt: string } {
    const bad = (m: string, cause?: unknown): SnapshotError => new SnapshotError(this.path, m, cause);
    const nl1 = data.indexOf(0x0a);
    if (nl1 < 0 || data.subarray(0, nl1).toString('latin1') !== MAGIC)
      throw bad('not a policy snapshot (bad magic line)');
    const nl2 = data.indexOf(0x0a, nl1 + 1);
    if (nl2 < 0) throw bad('truncated header');
    let header: Header;
    try {
      header = JSON.parse(data.subarray(nl1 + 1, nl2).toString('utf8')) as Header;
    } catch (err) {
      throw bad('the header is not JSON', err);
    }
    const raw = header as unknown as Record<string, unknown>;
    if (
      typeof raw['node'] !== 'string' ||
      !Number.isSafeInteger(raw['generation']) ||
      !Array.isArray(raw['sections'])
    ) {
      throw bad('malformed header');
    }
    if (header.node !== this.nodeName) throw bad(`it belongs to Node "${header.node}", not "${this.nodeName}"`);
    const sections: Header['sections'][number][] = [];
    for (const x of raw['sections'] as unknown[]) {
      const sec = (typeof x === 'object' && x !== null ? x : {}) as Record<string, unknown>;
      const resource = sec['resource'];
      const count = sec['count'];
      const bytes = sec['bytes'];
      if (typeof resource !== 'string' || !RESOURCE_NAMES.includes(resource as ControlplaneResource)) {
        throw bad(`unexpected section ${JSON.stringify(resource)}`);
      }
      if (
        typeof count !== 'number' ||
        !Number.isSafeInteger(count) ||
        typeof bytes !== 'number' ||
        !Number.isSafeInteger(bytes) ||
        bytes < 0
      ) {
        throw bad(`malformed section ${resource}`);
      }
      sections.push({ resource: resource as ControlplaneResource, count, bytes });
    }
    const payload = data.subarray(nl2 + 1);
    const total = sections.reduce((n, sec) => n + sec.bytes, 0);
    if (total !== payload.length) throw bad(`payload of ${payload.length} bytes, the header announces ${total}`);
    const sum = createHash('sha256').update(payload).digest('hex');
    if (sum !== header.sha256) throw bad('checksum mismatch');
    const objects: Partial<Record<ControlplaneResource, unknown[]>> = {};
    let off = 0;
    for (const sec of sections) {
      if (objects[sec.resource] !== undefined) throw bad(`section ${sec.resource} appears twice`);
      const bytes = payload.subarray(off, off + sec.bytes);
      off += sec.bytes;
      let items: unknown[];
      try {
        items = [
          ...(decodeObject('protobuf', bytes, [RESOURCES[sec.resource].listKind]).object as { items: unknown[] }).items,
        ];
      } catch (err) {
        throw bad(`section ${sec.resource} does not decode: ${errorMessage(err)}`, err);
      }
      if (items.length !== sec.count) {
        throw bad(`section ${sec.resource} holds ${items.length} objects, the header announces ${sec.count}`);
      }
      objects[sec.resource] = items;
    }
    for (const r of RESOURCE_NAMES) if (objects[r] === undefined) throw bad(`section ${r} is missing`);
    return {
      objects: objects as unknown as SnapshotObjects,
      generation: header.generation,
      savedAt: typeof raw['savedAt'] === 'string' ? raw['savedAt'] : '',
    };
  }

  /** Writes a new snapshot atomically (temporary file, fsync, rename, directory fsync). */
  async save(objects: SnapshotObjects): Promise<void> {
    const sections: Buffer[] = [];
    const meta: Header['sections'][number][] = [];
    for (const r of RESOURCE_NAMES) {
      const items = objects[r];
      const list = this.encoder.object('protobuf', RESOURCES[r].listKind, { metadata: {}, items } as never);
      sections.push(list);
      meta.push({ resource: r, count: items.length, bytes: list.length });
    }
    const payload = Buffer.concat(sections);
    const generation = this.generation + 1;
    const header: Header = {
      node: this.nodeName,
      generation,
      savedAt: new Date(this.now()).toISOString(),
      sections: meta,
      sha256: createHash('sha256').update(payload).digest('hex'),
    };
    const data = Buffer.concat([Buffer.from(`${MAGIC}\n${JSON.stringify(header)}\n`), payload]);
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o750 });
    const tmp = `${this.path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const fh = await open(tmp, 'wx', 0o640);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } catch (err) {
      await fh.close();
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fh.close();
    try {
      await rename(tmp, this.path);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
    this.generation = generation;
  }

  /** Removes temporary files left by a crash during a write. */
  private async removeStaleTemporaries(): Promise<void> {
    const dir = dirname(this.path);
    const prefix = `${basename(this.path)}.tmp-`;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const n of names) if (n.startsWith(prefix)) await unlink(join(dir, n)).catch(() => undefined);
  }
}
