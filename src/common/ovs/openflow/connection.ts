/**
 * One OpenFlow 1.5 connection to a switch over a unix socket (the bridge's management socket) or
 * TCP: the HELLO/FEATURES handshake, xid-matched replies (including multipart replies), barriers,
 * echo keepalive, typed errors carrying the failing request, bundles, and packet-in delivery.
 *
 * A connection never reconnects; {@link OpenFlowClient} (client.ts) does that with backoff.
 */
import { type Socket, connect as netConnect } from 'node:net';
import { type Clock, type TimerHandle, systemClock } from '../../util/clock.ts';
import { ValidationError, errorMessage } from '../../util/errors.ts';
import { type Logger, nullLogger } from '../../util/log.ts';
import { ByteWriter } from './bytes.ts';
import { NXT, OFP_VERSION_15, OFPBCT, OFPBF, OFPMP, OFPT, OFPT_NAMES } from './consts.ts';
import { type FailedRequest, OpenFlowError } from './errors.ts';
import {
  type PacketIn,
  type PacketOut,
  type SwitchFeatures,
  decodeError,
  decodeFeaturesReply,
  decodeHelloVersions,
  decodeMultipartReply,
  decodePacketIn2,
  encodeBundleControl,
  encodeHello,
  encodeMultipartRequest,
  encodePacketOut,
  encodeResume,
  encodeSetConfig,
  encodeSetPacketInFormat,
  encodeSimple,
  nxSubtype,
  readHeader,
  withXid,
  writeBundleAdd,
} from './messages.ts';

export interface OpenFlowConnectionOptions {
  /** "unix:/path/br-int.mgmt", "tcp:127.0.0.1:6653", or a bare socket path. */
  readonly endpoint: string;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Time allowed for connect + handshake (default 10 s). */
  readonly connectTimeoutMs?: number;
  /** Default time allowed for a request's reply (default 60 s). */
  readonly requestTimeoutMs?: number;
  /** Send an echo request after this much silence (default 5 s; 0 disables). */
  readonly echoIntervalMs?: number;
  /** Declare the switch dead when an echo gets no reply within this time (default 10 s). */
  readonly echoTimeoutMs?: number;
}

/** A message to send whose failure should be reported with a description. */
export interface TrackedMessage {
  /** Writes the message, with this xid, at the writer's position (encoding straight into the send buffer). */
  readonly write: (w: ByteWriter, xid: number) => void;
  readonly describe: () => Omit<FailedRequest, 'xid'>;
}

/** A tracked message from already encoded bytes (their xid is replaced). */
export function trackedBytes(bytes: Uint8Array, describe: () => Omit<FailedRequest, 'xid'>): TrackedMessage {
  return {
    write: (w, xid) => {
      const start = w.length;
      w.bytes(bytes);
      w.setU32(start + 4, xid);
    },
    describe,
  };
}

interface ReplyWaiter {
  readonly kind: 'reply';
  readonly expect: number;
  readonly describe: () => Omit<FailedRequest, 'xid'>;
  readonly resolve: (msgs: Uint8Array[]) => void;
  readonly reject: (err: Error) => void;
  readonly parts: Uint8Array[];
  timer: TimerHandle | undefined;
}

/** Messages sent with consecutive xids whose errors are collected (instead of one waiter each). */
interface TrackedRange {
  readonly first: number;
  readonly count: number;
  readonly msgs: readonly TrackedMessage[];
  readonly sink: OpenFlowError[];
}

type Waiter = ReplyWaiter;

export type PacketInListener = (pin: PacketIn) => void;
export type MessageListener = (type: number, msg: Uint8Array) => void;

function parseEndpoint(endpoint: string): { path: string } | { host: string; port: number } {
  if (endpoint.startsWith('unix:')) return { path: endpoint.slice(5) };
  const tcp = /^tcp:(\[[^\]]+\]|[^:]+):(\d+)$/.exec(endpoint);
  if (tcp !== null) return { host: (tcp[1] ?? '').replace(/^\[|\]$/g, ''), port: Number(tcp[2]) };
  if (endpoint.startsWith('/')) return { path: endpoint };
  throw new ValidationError('endpoint', `"${endpoint}" is not unix:PATH, tcp:HOST:PORT or an absolute path`);
}

export class OpenFlowConnection {
  readonly endpoint: string;
  private readonly socket: Socket;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly requestTimeoutMs: number;
  private readonly echoIntervalMs: number;
  private readonly echoTimeoutMs: number;
  private readonly waiters = new Map<number, Waiter>();
  private readonly ranges = new Set<TrackedRange>();
  private readonly packetInListeners = new Set<PacketInListener>();
  private readonly messageListeners = new Set<MessageListener>();
  private rx: Uint8Array = new Uint8Array(0);
  private xid = 0;
  private lastRx: number;
  private echoTimer: TimerHandle | undefined;
  private closeError: Error | undefined;
  private resolveClosed!: (err: Error | undefined) => void;
  /** Resolves when the connection is gone, with the reason (undefined for a local close()). */
  readonly closed: Promise<Error | undefined>;
  features: SwitchFeatures | undefined;
  private bundleSeq = 0;

  private constructor(socket: Socket, opts: OpenFlowConnectionOptions) {
    this.endpoint = opts.endpoint;
    this.socket = socket;
    this.logger = (opts.logger ?? nullLogger).child({ component: 'openflow', endpoint: opts.endpoint });
    this.clock = opts.clock ?? systemClock;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 60_000;
    this.echoIntervalMs = opts.echoIntervalMs ?? 5_000;
    this.echoTimeoutMs = opts.echoTimeoutMs ?? 10_000;
    this.lastRx = this.clock.monotonic();
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) =>
      this.shutdown(new OpenFlowError('OPENFLOW_DISCONNECTED', `${this.endpoint}: ${err.message}`, undefined, err)),
    );
    socket.on('close', () =>
      this.shutdown(new OpenFlowError('OPENFLOW_DISCONNECTED', `${this.endpoint}: connection closed by the switch`)),
    );
  }

  /**
   * Connects and performs the handshake: HELLO (OpenFlow 1.5 only), FEATURES, SET_CONFIG
   * (miss_send_len 0xffff so packet-ins reach this service connection) and NXT_PACKET_IN2 format.
   * Rejects with OPENFLOW_HANDSHAKE if the switch does not speak OpenFlow 1.5 (check the bridge's
   * `protocols` column) and OPENFLOW_DISCONNECTED if the socket cannot be reached.
   */
  static async connect(opts: OpenFlowConnectionOptions): Promise<OpenFlowConnection> {
    const target = parseEndpoint(opts.endpoint);
    const clock = opts.clock ?? systemClock;
    const timeoutMs = opts.connectTimeoutMs ?? 10_000;
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = 'path' in target ? netConnect(target.path) : netConnect(target.port, target.host);
      const timer = clock.setTimer(timeoutMs, () => {
        s.destroy();
        reject(new OpenFlowError('OPENFLOW_TIMEOUT', `${opts.endpoint}: connect timed out after ${timeoutMs}ms`));
      });
      s.once('connect', () => {
        timer.cancel();
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (err) => {
        timer.cancel();
        reject(new OpenFlowError('OPENFLOW_DISCONNECTED', `${opts.endpoint}: ${err.message}`, undefined, err));
      });
    });
    const conn = new OpenFlowConnection(socket, opts);
    try {
      await conn.handshake(timeoutMs);
    } catch (err) {
      conn.close();
      throw err;
    }
    conn.scheduleEcho();
    return conn;
  }

  get isClosed(): boolean {
    return this.closeError !== undefined;
  }

  get datapathId(): bigint {
    return this.features?.datapathId ?? 0n;
  }

  /** Closes the connection; pending requests fail with OPENFLOW_DISCONNECTED. Idempotent. */
  close(): void {
    this.shutdown(new OpenFlowError('OPENFLOW_DISCONNECTED', `${this.endpoint}: connection closed`), true);
  }

  onPacketIn(listener: PacketInListener): () => void {
    this.packetInListeners.add(listener);
    return () => this.packetInListeners.delete(listener);
  }

  /** Receives every message that is not a reply to a request of ours (port status, flow removed...). */
  onMessage(listener: MessageListener): () => void {
    this.messageListeners.add(listener);
    return () => this.messageListeners.delete(listener);
  }

  nextXid(): number {
    this.xid = (this.xid + 1) >>> 0;
    if (this.xid === 0) this.xid = 1;
    return this.xid;
  }

  /**
   * Sends `msg` (its xid replaced) and resolves with the reply of type `expect` (all parts, for a
   * multipart reply). Rejects with an OpenFlowError naming the error and the request if the switch
   * answers OFPT_ERROR, with OPENFLOW_TIMEOUT after `timeoutMs`, or OPENFLOW_DISCONNECTED.
   */
  request(
    msg: Uint8Array,
    expect: number,
    describe: () => Omit<FailedRequest, 'xid'> = () => ({ message: OFPT_NAMES[msg[1] ?? -1] ?? `type ${msg[1]}` }),
    timeoutMs = this.requestTimeoutMs,
  ): Promise<Uint8Array[]> {
    if (this.closeError !== undefined) return Promise.reject(this.closeError);
    const xid = this.nextXid();
    return new Promise<Uint8Array[]>((resolve, reject) => {
      const waiter: ReplyWaiter = { kind: 'reply', expect, describe, resolve, reject, parts: [], timer: undefined };
      waiter.timer = this.clock.setTimer(timeoutMs, () => {
        this.waiters.delete(xid);
        reject(
          new OpenFlowError('OPENFLOW_TIMEOUT', `${describe().message} (xid ${xid}): no reply within ${timeoutMs}ms`),
        );
      });
      this.waiters.set(xid, waiter);
      this.write(withXid(msg, xid));
    });
  }

  /** Waits until the switch has processed everything sent before. */
  async barrier(timeoutMs?: number): Promise<void> {
    await this.request(
      encodeSimple(OFPT.BARRIER_REQUEST, 0),
      OFPT.BARRIER_REPLY,
      () => ({ message: 'OFPT_BARRIER_REQUEST' }),
      timeoutMs,
    );
  }

  /** Sends one multipart request and resolves with the bodies of all reply parts. */
  async multipart(mpType: number, body?: Uint8Array, timeoutMs?: number): Promise<Uint8Array[]> {
    const parts = await this.request(
      encodeMultipartRequest(0, mpType, body),
      OFPT.MULTIPART_REPLY,
      () => ({ message: `OFPT_MULTIPART_REQUEST(${mpType})` }),
      timeoutMs,
    );
    return parts.map((p) => decodeMultipartReply(p).body);
  }

  /**
   * Sends messages that have no reply, followed by a barrier; resolves when the switch processed
   * them all, rejects with the first OpenFlowError (naming the failing message) if any failed.
   * Messages after a failed one are still applied (use a bundle for all-or-nothing).
   */
  async sendAll(msgs: readonly TrackedMessage[]): Promise<void> {
    const range = await this.writeTracked(msgs, (xid, m, w) => m.write(w, xid));
    try {
      await this.barrier();
    } finally {
      this.ranges.delete(range);
    }
    if (range.sink.length > 0) throw withOthers(range.sink);
  }

  /** Sends one message that has no reply (no error tracking). */
  send(msg: Uint8Array): void {
    if (this.closeError !== undefined) throw this.closeError;
    this.write(withXid(msg, this.nextXid()));
  }

  /**
   * Applies `msgs` atomically in one bundle (flags ATOMIC|ORDERED): open, add each, barrier, then
   * commit if every add was accepted, else discard. On any failure nothing changes and the error
   * names the failing message (its text and index in the bundle).
   */
  async bundle(msgs: readonly TrackedMessage[]): Promise<void> {
    if (msgs.length === 0) return;
    this.bundleSeq = (this.bundleSeq + 1) >>> 0;
    const bundleId = this.bundleSeq;
    const flags = OFPBF.ATOMIC | OFPBF.ORDERED;
    const control = (type: number, name: string): Promise<Uint8Array[]> =>
      this.request(encodeBundleControl(0, bundleId, type, flags), OFPT.BUNDLE_CONTROL, () => ({
        message: `OFPT_BUNDLE_CONTROL ${name}`,
      }));
    // OPEN, the adds and a barrier go out back to back; the switch answers in order.
    const opened = control(OFPBCT.OPEN_REQUEST, 'OPEN');
    opened.catch(() => undefined); // awaited below; avoid an unhandled rejection meanwhile
    let range: TrackedRange | undefined;
    let committed = false;
    try {
      range = await this.writeTracked(msgs, (xid, m, w) => {
        writeBundleAdd(w, xid, bundleId, flags, (inner) => m.write(inner, xid));
      });
      const sink = range.sink;
      const barrier = this.barrier();
      barrier.catch(() => undefined);
      await opened;
      await barrier;
      // A failed add is just left out of the bundle by the switch: never commit then.
      if (sink.length > 0) throw withOthers(sink);
      try {
        await control(OFPBCT.COMMIT_REQUEST, 'COMMIT');
        committed = true;
      } catch (err) {
        // The switch reports the failing message before the commit error: prefer that one.
        if (sink.length > 0) {
          const first = withOthers(sink);
          throw new OpenFlowError(first.code, first.message, first.info, err);
        }
        throw err;
      }
    } finally {
      if (range !== undefined) this.ranges.delete(range);
      if (!committed && !this.isClosed) {
        await control(OFPBCT.DISCARD_REQUEST, 'DISCARD').catch((e: unknown) => {
          // A failed commit already discards the bundle (OFPBFC_BAD_ID is expected then).
          this.logger.debug('bundle discard', { bundleId, error: errorMessage(e) });
        });
      }
    }
  }

  /** Sends a packet through the pipeline or out a port (OFPT_PACKET_OUT). */
  async packetOut(po: PacketOut): Promise<void> {
    await this.sendAll([trackedBytes(encodePacketOut(0, po), () => ({ message: 'OFPT_PACKET_OUT' }))]);
  }

  /** Resumes a packet paused by controller(pause) (NXT_RESUME). */
  async resume(pin: PacketIn): Promise<void> {
    await this.sendAll([trackedBytes(encodeResume(0, pin), () => ({ message: 'NXT_RESUME' }))]);
  }

  // ---- internals -----------------------------------------------------------------------------------

  /**
   * Writes messages with consecutive xids, encoding them straight into 1 MB chunks; between chunks
   * it lets the socket drain, so the switch works on one chunk while the next is encoded. Errors for
   * these xids are collected in the returned range (remove it from `ranges` when done).
   */
  private async writeTracked(
    msgs: readonly TrackedMessage[],
    put: (xid: number, m: TrackedMessage, w: ByteWriter) => void,
  ): Promise<TrackedRange> {
    if (this.closeError !== undefined) throw this.closeError;
    // Reserve a contiguous block of xids now: requests made while we yield get later ones.
    if (this.xid > 0xffffffff - msgs.length - 1) this.xid = 0;
    const first = this.xid + 1;
    this.xid += msgs.length;
    const range: TrackedRange = { first, count: msgs.length, msgs, sink: [] };
    this.ranges.add(range);
    const CHUNK = 1 << 20;
    let w = new ByteWriter(msgs.length > 64 ? CHUNK + (CHUNK >> 2) : 4096);
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i];
      if (m === undefined) continue;
      put(first + i, m, w);
      if (w.length >= CHUNK) {
        const more = this.socket.write(w.finish());
        w = new ByteWriter(CHUNK + (CHUNK >> 2));
        if (this.isClosed)
          throw new OpenFlowError('OPENFLOW_DISCONNECTED', `${this.endpoint}: connection closed while sending`);
        // Yield so the socket can flush (and replies be read) while we encode the next chunk.
        await (more ? new Promise<void>((r) => setImmediate(r)) : this.drained());
      }
    }
    if (w.length > 0) this.write(w.finish());
    return range;
  }

  private drained(): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  private write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  private async handshake(timeoutMs: number): Promise<void> {
    const hello = new Promise<Uint8Array>((resolve, reject) => {
      const timer = this.clock.setTimer(timeoutMs, () =>
        reject(new OpenFlowError('OPENFLOW_TIMEOUT', `${this.endpoint}: no HELLO within ${timeoutMs}ms`)),
      );
      const off = this.onMessage((type, msg) => {
        if (type !== OFPT.HELLO) return;
        timer.cancel();
        off();
        resolve(msg);
      });
      void this.closed.then((err) => {
        timer.cancel();
        reject(err ?? new OpenFlowError('OPENFLOW_DISCONNECTED', 'closed during handshake'));
      });
    });
    this.write(encodeHello(this.nextXid()));
    const theirs = decodeHelloVersions(await hello);
    if (!theirs.includes(OFP_VERSION_15)) {
      throw new OpenFlowError(
        'OPENFLOW_HANDSHAKE',
        `${this.endpoint}: the switch does not accept OpenFlow 1.5 (it offers ${theirs.map((v) => `0x0${v}`).join(', ')}); add OpenFlow15 to the bridge's protocols`,
      );
    }
    const [features] = await this.request(
      encodeSimple(OFPT.FEATURES_REQUEST, 0),
      OFPT.FEATURES_REPLY,
      undefined,
      timeoutMs,
    );
    if (features === undefined) throw new OpenFlowError('OPENFLOW_HANDSHAKE', `${this.endpoint}: empty FEATURES reply`);
    this.features = decodeFeaturesReply(features);
    await this.sendAll([
      trackedBytes(encodeSetConfig(0), () => ({ message: 'OFPT_SET_CONFIG' })),
      trackedBytes(encodeSetPacketInFormat(0), () => ({ message: 'NXT_SET_PACKET_IN_FORMAT' })),
    ]);
    this.logger.debug('connected', { datapathId: this.datapathId.toString(16), nTables: this.features.nTables });
  }

  private scheduleEcho(): void {
    if (this.echoIntervalMs <= 0 || this.closeError !== undefined) return;
    this.echoTimer = this.clock.setTimer(this.echoIntervalMs, () => {
      if (this.closeError !== undefined) return;
      const idle = this.clock.monotonic() - this.lastRx;
      if (idle < this.echoIntervalMs) {
        this.scheduleEcho();
        return;
      }
      this.request(
        encodeSimple(OFPT.ECHO_REQUEST, 0),
        OFPT.ECHO_REPLY,
        () => ({ message: 'OFPT_ECHO_REQUEST' }),
        this.echoTimeoutMs,
      ).then(
        () => this.scheduleEcho(),
        (err: unknown) => {
          if (this.closeError !== undefined) return;
          this.logger.warn('switch did not answer echo; closing', { error: errorMessage(err) });
          this.shutdown(new OpenFlowError('OPENFLOW_TIMEOUT', `${this.endpoint}: echo timed out`, undefined, err));
        },
      );
    });
  }

  private onData(chunk: Buffer): void {
    this.lastRx = this.clock.monotonic();
    const buf: Uint8Array = this.rx.length === 0 ? chunk : concat(this.rx, chunk);
    let off = 0;
    while (buf.length - off >= 8) {
      const len = ((buf[off + 2] ?? 0) << 8) | (buf[off + 3] ?? 0);
      if (len < 8) {
        this.shutdown(new OpenFlowError('OPENFLOW_DISCONNECTED', `${this.endpoint}: bad message length ${len}`));
        return;
      }
      if (buf.length - off < len) break;
      const msg = buf.subarray(off, off + len);
      off += len;
      try {
        this.dispatch(msg);
      } catch (err) {
        this.logger.warn('failed to handle message', { type: msg[1], error: errorMessage(err) });
      }
    }
    this.rx = off === buf.length ? new Uint8Array(0) : buf.slice(off);
  }

  private dispatch(msg: Uint8Array): void {
    const h = readHeader(msg);
    if (h.type === OFPT.ECHO_REQUEST) {
      const reply = msg.slice();
      reply[1] = OFPT.ECHO_REPLY;
      this.write(reply);
      return;
    }
    if (h.type === OFPT.ERROR && this.ranges.size > 0) {
      for (const r of this.ranges) {
        const index = (h.xid - r.first) >>> 0;
        const m = index < r.count ? r.msgs[index] : undefined;
        if (m === undefined) continue;
        const e = decodeError(msg);
        r.sink.push(OpenFlowError.fromSwitch(e.type, e.code, e.experimenter, { ...m.describe(), xid: h.xid }));
        return;
      }
    }
    const waiter = this.waiters.get(h.xid);
    if (waiter !== undefined) {
      if (h.type === OFPT.ERROR) {
        const e = decodeError(msg);
        const err = OpenFlowError.fromSwitch(e.type, e.code, e.experimenter, { ...waiter.describe(), xid: h.xid });
        this.waiters.delete(h.xid);
        waiter.timer?.cancel();
        waiter.reject(err);
        return;
      }
      if (h.type === waiter.expect) {
        waiter.parts.push(msg.slice());
        if (h.type === OFPT.MULTIPART_REPLY && decodeMultipartReply(msg).more) return;
        this.waiters.delete(h.xid);
        waiter.timer?.cancel();
        waiter.resolve(waiter.parts);
        return;
      }
    }
    if (h.type === OFPT.EXPERIMENTER && nxSubtype(msg) === NXT.PACKET_IN2) {
      const pin = decodePacketIn2(msg);
      for (const l of this.packetInListeners) {
        try {
          l(pin);
        } catch (err) {
          this.logger.warn('packet-in listener failed', { error: errorMessage(err) });
        }
      }
      return;
    }
    if (h.type === OFPT.ERROR) {
      const e = decodeError(msg);
      const err = OpenFlowError.fromSwitch(e.type, e.code, e.experimenter);
      this.logger.warn('unsolicited OpenFlow error', { xid: h.xid, error: err.message });
    }
    for (const l of this.messageListeners) l(h.type, msg);
  }

  private shutdown(err: Error, local = false): void {
    if (this.closeError !== undefined) return;
    this.closeError = err;
    this.echoTimer?.cancel();
    for (const [xid, w] of this.waiters) {
      this.waiters.delete(xid);
      w.timer?.cancel();
      w.reject(err);
    }
    this.socket.destroy();
    if (!local) this.logger.info('disconnected', { reason: err.message });
    this.resolveClosed(local ? undefined : err);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function withOthers(errs: readonly OpenFlowError[]): OpenFlowError {
  const [first] = errs;
  if (first === undefined) return new OpenFlowError('OPENFLOW_ERROR', 'unknown failure');
  if (errs.length === 1) return first;
  const e = new OpenFlowError(first.code, `${first.message} (and ${errs.length - 1} more failed)`, first.info);
  return e;
}

export { OFPMP };
