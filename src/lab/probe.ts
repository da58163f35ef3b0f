/**
 * Probing through the Pods' control sockets: a client per source Pod that multiplexes requests on
 * one connection, and the connectivity matrix (every ordered pair of Pods, for one port and
 * protocol) run in parallel, with its text rendering.
 */
import { connect, type Socket } from 'node:net';
import { AntreaError, errorMessage } from '../common/util/errors.ts';
import type { PodResponse, PodStatus, ProbeOutcome, ProbeProtocol, ProbeRequest, ProbeResult } from './pod-server.ts';

export type ProbeErrorCode = 'PROBE_SOCKET' | 'PROBE_FAILED';
export class ProbeError extends AntreaError<ProbeErrorCode> {}

/** A request without its id (the client numbers them). */
type PodRequestBody = { readonly op: 'probe'; readonly probe: ProbeRequest } | { readonly op: 'status' };

type Pending = { resolve: (r: PodResponse) => void; reject: (e: Error) => void };

/** One connection to a Pod's control socket. */
export class PodControlClient {
  private readonly sock: Socket;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buf = '';
  private closed: Error | undefined;

  private constructor(sock: Socket, path: string) {
    this.sock = sock;
    sock.on('data', (b: Buffer) => {
      this.buf += b.toString('utf8');
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        let res: PodResponse;
        try {
          res = JSON.parse(line) as PodResponse;
        } catch {
          continue;
        }
        const p = this.pending.get(res.id);
        if (p !== undefined) {
          this.pending.delete(res.id);
          p.resolve(res);
        }
      }
    });
    const fail = (why: string): void => {
      this.closed ??= new ProbeError('PROBE_SOCKET', `${path}: ${why}`);
      for (const p of this.pending.values()) p.reject(this.closed);
      this.pending.clear();
    };
    sock.on('error', (err) => fail(err.message));
    sock.on('close', () => fail('connection closed'));
  }

  static connect(path: string, timeoutMs = 5000): Promise<PodControlClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      const t = setTimeout(() => {
        s.destroy();
        reject(new ProbeError('PROBE_SOCKET', `${path}: no connection within ${timeoutMs}ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(new PodControlClient(s, path));
      });
      s.once('error', (err) => {
        clearTimeout(t);
        reject(new ProbeError('PROBE_SOCKET', `${path}: ${err.message}`, { cause: err }));
      });
    });
  }

  private call(req: PodRequestBody): Promise<PodResponse> {
    if (this.closed !== undefined) return Promise.reject(this.closed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.sock.write(JSON.stringify({ ...req, id }) + '\n');
    });
  }

  async probe(p: ProbeRequest): Promise<ProbeResult> {
    const res = await this.call({ op: 'probe', probe: p });
    if ('result' in res) return res.result;
    throw new ProbeError('PROBE_FAILED', 'error' in res ? res.error : 'unexpected answer');
  }

  async status(): Promise<PodStatus> {
    const res = await this.call({ op: 'status' });
    if ('status' in res) return res.status;
    throw new ProbeError('PROBE_FAILED', 'error' in res ? res.error : 'unexpected answer');
  }

  close(): void {
    this.sock.destroy();
  }
}

/** A Pod as the prober sees it. */
export interface ProbePod {
  /** `namespace/name`. */
  readonly key: string;
  readonly ip: string;
  readonly socket: string;
}

export interface MatrixCell {
  readonly from: string;
  readonly to: string;
  readonly result: ProbeResult;
}

export interface Matrix {
  readonly port: number;
  readonly protocol: ProbeProtocol;
  readonly pods: readonly string[];
  /** `from` → `to` → result. */
  readonly cells: ReadonlyMap<string, ReadonlyMap<string, ProbeResult>>;
}

export function cell(m: Matrix, from: string, to: string): ProbeResult | undefined {
  return m.cells.get(from)?.get(to);
}

/** Whether an outcome counts as connected (the k8s model: any other outcome is "not connected"). */
export function isConnected(o: ProbeOutcome): boolean {
  return o === 'connected';
}

/**
 * Probes every ordered pair (`from` → `to`'s IP on `port`/`protocol`) in parallel, one connection
 * per source Pod. `pairs` restricts which pairs are probed (default: all). A source whose socket
 * cannot be reached yields `error` results for its row.
 */
export async function probeMatrix(
  pods: readonly ProbePod[],
  port: number,
  protocol: ProbeProtocol,
  o: { timeoutMs?: number; pairs?: (from: string, to: string) => boolean } = {},
): Promise<Matrix> {
  const cells = new Map<string, Map<string, ProbeResult>>();
  await Promise.all(
    pods.map(async (src) => {
      const row = new Map<string, ProbeResult>();
      cells.set(src.key, row);
      const targets = pods.filter((dst) => o.pairs?.(src.key, dst.key) ?? true);
      if (targets.length === 0) return;
      let client: PodControlClient;
      try {
        client = await PodControlClient.connect(src.socket);
      } catch (err) {
        for (const dst of targets) row.set(dst.key, { outcome: 'error', error: errorMessage(err), ms: 0 });
        return;
      }
      try {
        await Promise.all(
          targets.map(async (dst) => {
            let r: ProbeResult;
            try {
              r = await client.probe({
                host: dst.ip,
                port,
                protocol,
                ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }),
              });
            } catch (err) {
              r = { outcome: 'error', error: errorMessage(err), ms: 0 };
            }
            row.set(dst.key, r);
          }),
        );
      } finally {
        client.close();
      }
    }),
  );
  return { port, protocol, pods: pods.map((p) => p.key), cells };
}

/** One character per outcome: `.` connected, `X` timeout (drop), `R` refused/unreachable (reject), `E` error, `-` not probed, `S` unsupported. */
/**
 * {@link probeMatrix}, then the pairs that did not connect probed again, up to `rounds` times
 * (default 3), their new results replacing the old: for a network expected to connect everything,
 * where a fresh Pod's first packets may miss one short probe.
 */
export async function probeMatrixSettled(
  pods: readonly ProbePod[],
  port: number,
  protocol: ProbeProtocol,
  o: { timeoutMs?: number; rounds?: number } = {},
): Promise<Matrix> {
  const timeout = o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs };
  const first = await probeMatrix(pods, port, protocol, timeout);
  const cells = new Map([...first.cells].map(([f, row]) => [f, new Map(row)]));
  for (let round = 0; round < (o.rounds ?? 3); round++) {
    const missed = new Set(
      first.pods.flatMap((f) =>
        first.pods.filter((t) => !isConnected(cells.get(f)?.get(t)?.outcome ?? 'error')).map((t) => `${f}>${t}`),
      ),
    );
    if (missed.size === 0) break;
    const again = await probeMatrix(pods, port, protocol, { ...timeout, pairs: (f, t) => missed.has(`${f}>${t}`) });
    for (const [f, row] of again.cells) for (const [t, r] of row) cells.get(f)?.set(t, r);
  }
  return { ...first, cells };
}

export function outcomeMark(r: ProbeResult | undefined): string {
  if (r === undefined) return '-';
  switch (r.outcome) {
    case 'connected':
      return '.';
    case 'timeout':
      return 'X';
    case 'refused':
    case 'unreachable':
      return 'R';
    case 'unsupported':
      return 'S';
    case 'error':
      return 'E';
  }
}

/** Short column labels: `x/a` → `xa` when every key is one-letter/one-letter, else the keys themselves. */
function labels(keys: readonly string[]): string[] {
  return keys.every((k) => /^[^/]\/[^/]$/.test(k)) ? keys.map((k) => k.replace('/', '')) : [...keys];
}

/** The matrix as text: rows are sources, columns destinations. */
export function renderMatrix(
  m: Matrix,
  o: { mark?: (from: string, to: string, r: ProbeResult | undefined) => string } = {},
): string[] {
  const names = labels(m.pods);
  const w = Math.max(2, ...names.map((n) => n.length));
  const corner = 'from\\to';
  const first = Math.max(corner.length, ...names.map((n) => n.length));
  const lines = [[corner.padEnd(first), ...names.map((n) => n.padStart(w))].join(' ')];
  for (const [i, from] of m.pods.entries()) {
    const row = m.pods.map((to) =>
      (o.mark ?? ((_f, _t, r) => outcomeMark(r)))(from, to, cell(m, from, to)).padStart(w),
    );
    lines.push([(names[i] ?? from).padEnd(first), ...row].join(' '));
  }
  return lines;
}

export const MATRIX_LEGEND = '. connected   X no answer (dropped)   R refused (rejected)   E error   S unsupported';

/** One probe of a {@link ContinuousProber}: when it started (on the prober's clock) and its result. */
export interface ProbeSample {
  /** Start time, ms on the prober's monotonic clock. */
  readonly at: number;
  /** When the answer came (`at` + the probe's duration). */
  readonly end: number;
  readonly outcome: ProbeOutcome;
}

export interface ProbePair {
  readonly from: ProbePod;
  readonly to: ProbePod;
}

export interface ContinuousProberOptions {
  readonly pairs: readonly ProbePair[];
  readonly port: number;
  readonly protocol: ProbeProtocol;
  /** A new probe of each pair starts every `intervalMs` (default 150), whether or not the last answered. */
  readonly intervalMs?: number;
  /** Each probe's timeout (default 500 ms). */
  readonly timeoutMs?: number;
  /** At most this many probes of one pair at once (default 8); a tick is skipped beyond it. */
  readonly maxInFlight?: number;
  /** Monotonic milliseconds (default performance.now). */
  readonly now?: () => number;
}

/** `from>to`, the key of a pair in {@link ContinuousProber.samples}. */
export function pairKey(p: { from: { key: string }; to: { key: string } }): string {
  return `${p.from.key}>${p.to.key}`;
}

/**
 * Probes pairs continuously through the source Pods' control sockets, each probe a fresh connection
 * (the Pod's kernel picks the source port), and keeps every sample per pair. For fault tests (a pair
 * that must stay denied throughout, a pair that must come back) and for timing a change (the first
 * sample of the new verdict). A source whose socket fails is connected again on the next tick; its
 * probes meanwhile record `error`.
 */
export class ContinuousProber {
  private readonly o: ContinuousProberOptions;
  private readonly now: () => number;
  private readonly recorded = new Map<string, ProbeSample[]>();
  private readonly clients = new Map<string, Promise<PodControlClient>>();

  constructor(o: ContinuousProberOptions) {
    this.o = o;
    this.now = o.now ?? (() => performance.now());
    for (const p of o.pairs) this.recorded.set(pairKey(p), []);
  }

  /** The samples of a pair (`from>to`) so far, in the order they were answered. */
  samples(key: string): readonly ProbeSample[] {
    return this.recorded.get(key) ?? [];
  }

  /** Every pair's samples so far. */
  all(): ReadonlyMap<string, readonly ProbeSample[]> {
    return this.recorded;
  }

  /** Probes until `signal` aborts, then waits for the probes in flight and closes its connections. */
  async run(signal: AbortSignal): Promise<void> {
    const every = this.o.intervalMs ?? 150;
    const inFlight = new Set<Promise<void>>();
    const perPair = new Map<string, number>();
    // Spread the pairs over the interval so they do not all start at once.
    const offset = new Map(this.o.pairs.map((p, i) => [pairKey(p), (i * every) / Math.max(1, this.o.pairs.length)]));
    const next = new Map([...offset].map(([k, d]) => [k, this.now() + d]));
    try {
      while (!signal.aborted) {
        const t = this.now();
        for (const p of this.o.pairs) {
          const key = pairKey(p);
          if ((next.get(key) ?? 0) > t) continue;
          next.set(key, Math.max(t, (next.get(key) ?? t) + every));
          if ((perPair.get(key) ?? 0) >= (this.o.maxInFlight ?? 8)) continue;
          perPair.set(key, (perPair.get(key) ?? 0) + 1);
          const probe = this.probeOnce(p).finally(() => {
            perPair.set(key, (perPair.get(key) ?? 1) - 1);
            inFlight.delete(probe);
          });
          inFlight.add(probe);
        }
        const wake = Math.min(...next.values()) - this.now();
        await new Promise((r) => setTimeout(r, Math.max(1, Math.min(every, wake))));
      }
    } finally {
      await Promise.allSettled([...inFlight]);
      for (const c of this.clients.values()) await c.then((x) => x.close()).catch(() => undefined);
      this.clients.clear();
    }
  }

  private client(from: ProbePod): Promise<PodControlClient> {
    let c = this.clients.get(from.socket);
    if (c === undefined) {
      const connecting = PodControlClient.connect(from.socket);
      c = connecting;
      this.clients.set(from.socket, connecting);
      connecting.catch(() => {
        if (this.clients.get(from.socket) === connecting) this.clients.delete(from.socket);
      });
    }
    return c;
  }

  private async probeOnce(p: ProbePair): Promise<void> {
    const at = this.now();
    let outcome: ProbeOutcome;
    const client = this.client(p.from);
    try {
      const c = await client;
      outcome = (
        await c.probe({
          host: p.to.ip,
          port: this.o.port,
          protocol: this.o.protocol,
          timeoutMs: this.o.timeoutMs ?? 500,
        })
      ).outcome;
    } catch {
      outcome = 'error';
      // A failed connection is opened again by the next probe.
      if (this.clients.get(p.from.socket) === client) this.clients.delete(p.from.socket);
      await client.then((x) => x.close()).catch(() => undefined);
    }
    this.recorded.get(pairKey(p))?.push({ at, end: this.now(), outcome });
  }
}

/** The first sample answered at or after `since` whose verdict is `connected` (or not), or undefined. */
export function firstVerdict(
  samples: readonly ProbeSample[],
  since: number,
  connected: boolean,
): ProbeSample | undefined {
  let best: ProbeSample | undefined;
  for (const x of samples) {
    if (x.end >= since && isConnected(x.outcome) === connected && (best === undefined || x.end < best.end)) best = x;
  }
  return best;
}

/** Whether at least `n` samples started at or after `since`, and the last `n` of them all have the verdict. */
export function holdsVerdict(samples: readonly ProbeSample[], since: number, connected: boolean, n: number): boolean {
  const after = samples.filter((x) => x.at >= since).sort((a, b) => a.at - b.at);
  return after.length >= n && after.slice(-n).every((x) => isConnected(x.outcome) === connected);
}
