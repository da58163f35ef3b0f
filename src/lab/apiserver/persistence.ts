/**
 * Durable state for `--data-dir`: an append-only log of writes (one JSON line per change, flushed and
 * fsynced once per event-loop turn) plus a snapshot written atomically (temp file, fsync, rename)
 * when the log grows and at shutdown. Start-up loads the snapshot, replays the log after it (a torn
 * last line from a crash is ignored), and the store continues with higher resourceVersions.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
  ftruncateSync,
  fstatSync,
} from 'node:fs';
import { join } from 'node:path';
import { AntreaError } from '../../common/util/errors.ts';
import type { Logger } from '../../common/util/log.ts';
import type { ObjectStore, StoreEvent } from './store.ts';
import { isObject, type KObject } from './types.ts';

const SNAPSHOT = 'objects.json';
const WAL = 'objects.wal';

export interface LoadedState {
  readonly rv: number;
  readonly lastModified: Record<string, number>;
  readonly objects: { readonly sk: string; readonly key: string; readonly obj: KObject; readonly json: string }[];
}

export interface PersistenceOptions {
  /** Compact the log into a new snapshot after this many bytes. */
  readonly compactBytes?: number;
}

export class Persistence {
  readonly dir: string;
  private readonly logger: Logger;
  private readonly compactBytes: number;
  private fd: number | undefined;
  private walBytes = 0;
  private lines: string[] = [];
  private scheduled = false;
  private store: ObjectStore | undefined;
  private readonly lastModified: Record<string, number> = {};

  constructor(dir: string, logger: Logger, opts: PersistenceOptions = {}) {
    this.dir = dir;
    this.logger = logger;
    this.compactBytes = opts.compactBytes ?? 64 * 1024 * 1024;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** Reads the snapshot and replays the log. Returns undefined for an empty directory. */
  load(): LoadedState | undefined {
    const snapPath = join(this.dir, SNAPSHOT);
    const walPath = join(this.dir, WAL);
    if (!existsSync(snapPath) && !existsSync(walPath)) return undefined;
    const objects = new Map<string, { sk: string; key: string; obj: KObject; json: string }>();
    let rv = 0;
    if (existsSync(snapPath)) {
      let snap: unknown;
      try {
        snap = JSON.parse(readFileSync(snapPath, 'utf8'));
      } catch (err) {
        throw new AntreaError('APISERVER_STATE_CORRUPT', `cannot read ${snapPath}`, { cause: err });
      }
      if (!isObject(snap) || snap['version'] !== 1 || !Array.isArray(snap['objects'])) {
        throw new AntreaError('APISERVER_STATE_CORRUPT', `${snapPath} is not an antrea-lab API server snapshot`);
      }
      rv = typeof snap['rv'] === 'number' ? snap['rv'] : 0;
      const lm = snap['lastModified'];
      if (isObject(lm)) for (const [k, v] of Object.entries(lm)) if (typeof v === 'number') this.lastModified[k] = v;
      for (const o of snap['objects']) {
        if (!isObject(o) || typeof o['sk'] !== 'string' || typeof o['key'] !== 'string' || !isObject(o['obj']))
          continue;
        const obj = o['obj'] as KObject;
        objects.set(`${o['sk']}\n${o['key']}`, { sk: o['sk'], key: o['key'], obj, json: JSON.stringify(obj) });
      }
    }
    const snapRv = rv;
    if (existsSync(walPath)) {
      const text = readFileSync(walPath, 'utf8');
      const lines = text.split('\n');
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i] ?? '';
        if (line === '') continue;
        let rec: unknown;
        try {
          rec = JSON.parse(line);
        } catch {
          if (i >= lines.length - 2) {
            this.logger.warn('ignoring a torn last line in the write-ahead log', { file: walPath });
            break;
          }
          throw new AntreaError('APISERVER_STATE_CORRUPT', `${walPath}: line ${i + 1} is not JSON`);
        }
        if (
          !isObject(rec) ||
          typeof rec['rv'] !== 'number' ||
          typeof rec['sk'] !== 'string' ||
          typeof rec['key'] !== 'string'
        )
          continue;
        if (rec['rv'] <= snapRv) continue;
        const id = `${rec['sk']}\n${rec['key']}`;
        if (rec['op'] === 'del') objects.delete(id);
        else if (isObject(rec['obj'])) {
          const obj = rec['obj'] as KObject;
          objects.set(id, { sk: rec['sk'], key: rec['key'], obj, json: JSON.stringify(obj) });
        }
        rv = Math.max(rv, rec['rv']);
        this.lastModified[rec['sk']] = Math.max(this.lastModified[rec['sk']] ?? 0, rec['rv']);
      }
    }
    return { rv, lastModified: { ...this.lastModified }, objects: [...objects.values()] };
  }

  /** Starts recording the store's writes (after it has been loaded). */
  attach(store: ObjectStore): void {
    this.store = store;
    this.fd = openSync(join(this.dir, WAL), 'a', 0o600);
    this.walBytes = fstatSync(this.fd).size;
    store.onChange((ev) => this.record(ev));
  }

  private record(ev: StoreEvent): void {
    this.lastModified[ev.storageKey] = ev.rv;
    const head = `{"rv":${ev.rv},"sk":${JSON.stringify(ev.storageKey)},"key":${JSON.stringify(ev.key)}`;
    this.lines.push(ev.type === 'DELETED' ? `${head},"op":"del"}\n` : `${head},"op":"put","obj":${ev.json}}\n`);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  /** Writes and fsyncs what is pending; compacts when the log is large. */
  flush(): void {
    if (this.fd === undefined || this.lines.length === 0) return;
    const data = Buffer.from(this.lines.join(''));
    this.lines = [];
    writeSync(this.fd, data);
    fsyncSync(this.fd);
    this.walBytes += data.length;
    if (this.walBytes > this.compactBytes) this.snapshot();
  }

  /** Writes a snapshot of the whole store atomically and truncates the log. */
  snapshot(): void {
    const store = this.store;
    if (store === undefined) return;
    this.flushLinesOnly();
    const parts: string[] = [];
    for (const ts of store.allTypes()) {
      const sk = JSON.stringify(ts.storageKey);
      for (const [key, e] of ts.objects) parts.push(`{"sk":${sk},"key":${JSON.stringify(key)},"obj":${e.json}}`);
    }
    const body = `{"version":1,"rv":${store.rv},"lastModified":${JSON.stringify(this.lastModified)},"objects":[\n${parts.join(',\n')}\n]}\n`;
    const tmp = join(this.dir, `${SNAPSHOT}.tmp`);
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, body);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(this.dir, SNAPSHOT));
    const dirFd = openSync(this.dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    if (this.fd !== undefined) {
      ftruncateSync(this.fd, 0);
      this.walBytes = 0;
    }
  }

  private flushLinesOnly(): void {
    if (this.fd === undefined || this.lines.length === 0) return;
    writeSync(this.fd, Buffer.from(this.lines.join('')));
    this.lines = [];
  }

  /** Flushes, snapshots and closes the log. Idempotent. */
  close(): void {
    if (this.fd === undefined) return;
    this.flush();
    this.snapshot();
    closeSync(this.fd);
    this.fd = undefined;
  }
}
