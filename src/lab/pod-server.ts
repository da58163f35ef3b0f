/**
 * The program inside every lab Pod (run in the Pod's network namespace by the kubelet stand-in): it
 * serves TCP and UDP on the container ports the Pod declares, answering with the Pod's hostname as
 * agnhost `serve-hostname` does, and runs connectivity probes on request. Requests arrive as JSON
 * lines on a unix socket in the lab's data directory (socket paths do not depend on network
 * namespaces), so one prober can drive many Pods at once without starting a process per probe.
 *
 * Probe outcomes follow the netpol conformance README: `connected`; `timeout` (no answer: a drop);
 * `refused` (TCP RST or ICMP port unreachable) and `unreachable` (ICMP host/net unreachable), both a
 * reject; `error` for anything else.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { existsSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { errorMessage } from '../common/util/errors.ts';
import { type Logger, nullLogger } from '../common/util/log.ts';

export type ProbeProtocol = 'TCP' | 'UDP' | 'SCTP';
export type ProbeOutcome = 'connected' | 'timeout' | 'refused' | 'unreachable' | 'error' | 'unsupported';

export interface ProbeRequest {
  readonly host: string;
  readonly port: number;
  readonly protocol: ProbeProtocol;
  /** Default 1000 ms (agnhost connect --timeout=1s). */
  readonly timeoutMs?: number;
}

export interface ProbeResult {
  readonly outcome: ProbeOutcome;
  /** What the server answered (its hostname), if anything. */
  readonly reply?: string;
  readonly error?: string;
  readonly ms: number;
}

export interface PodStatus {
  readonly name: string;
  readonly pid: number;
  readonly tcp: readonly number[];
  readonly udp: readonly number[];
  /** Ports declared with a protocol the Pod cannot serve (SCTP: no kernel support here). */
  readonly unsupported: readonly string[];
}

export type PodRequest =
  | { readonly id: number; readonly op: 'probe'; readonly probe: ProbeRequest }
  | { readonly id: number; readonly op: 'status' };

export type PodResponse =
  | { readonly id: number; readonly result: ProbeResult }
  | { readonly id: number; readonly status: PodStatus }
  | { readonly id: number; readonly error: string };

export interface PodServerOptions {
  /** The hostname served (the Pod's name). */
  readonly hostname: string;
  readonly socketPath: string;
  readonly tcpPorts: readonly number[];
  readonly udpPorts: readonly number[];
  readonly unsupported?: readonly string[];
  /** Address to serve on (default 0.0.0.0). */
  readonly listenHost?: string;
  readonly logger?: Logger;
}

function classify(err: NodeJS.ErrnoException): ProbeOutcome {
  switch (err.code ?? '') {
    case 'ECONNREFUSED':
    case 'ECONNRESET':
      return 'refused';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EACCES':
    case 'EPERM':
      return 'unreachable';
    case 'ETIMEDOUT':
      return 'timeout';
    default:
      return 'error';
  }
}

/** Runs one probe from the current network namespace. Never rejects. */
export function runProbe(req: ProbeRequest): Promise<ProbeResult> {
  const timeoutMs = req.timeoutMs ?? 1000;
  const t0 = performance.now();
  const ms = (): number => Math.round((performance.now() - t0) * 10) / 10;
  if (req.protocol === 'SCTP') {
    return Promise.resolve({ outcome: 'unsupported', error: 'SCTP is not supported here (no kernel SCTP)', ms: 0 });
  }
  return new Promise<ProbeResult>((resolve) => {
    let done = false;
    let cleanup = (): void => undefined;
    const finish = (r: Omit<ProbeResult, 'ms'>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      cleanup();
      resolve({ ...r, ms: ms() });
    };
    const timer = setTimeout(() => finish({ outcome: 'timeout' }), timeoutMs);
    if (req.protocol === 'TCP') {
      const s: Socket = connect({ host: req.host, port: req.port });
      cleanup = () => s.destroy();
      let reply = '';
      let connected = false;
      s.on('connect', () => {
        connected = true;
        // serve-hostname answers at once; give it a moment, the connection itself is the verdict.
        setTimeout(() => finish({ outcome: 'connected', reply }), Math.min(200, Math.max(0, timeoutMs - ms())));
      });
      s.on('data', (b: Buffer) => {
        reply += b.toString('utf8');
      });
      s.on('end', () => {
        if (connected) finish({ outcome: 'connected', reply: reply.trim() });
      });
      s.on('error', (err: NodeJS.ErrnoException) => {
        if (connected) finish({ outcome: 'connected', reply: reply.trim() });
        else finish({ outcome: classify(err), error: `${err.code ?? ''} ${err.message}`.trim() });
      });
    } else {
      const family = req.host.includes(':') ? 'udp6' : 'udp4';
      const s: UdpSocket = createSocket(family);
      cleanup = () => {
        try {
          s.close();
        } catch {
          // already closed
        }
      };
      s.on('message', (b: Buffer) => finish({ outcome: 'connected', reply: b.toString('utf8').trim() }));
      s.on('error', (err: NodeJS.ErrnoException) =>
        finish({ outcome: classify(err), error: `${err.code ?? ''} ${err.message}`.trim() }),
      );
      // A connected UDP socket reports ICMP port unreachable as ECONNREFUSED.
      s.connect(req.port, req.host, (cerr?: Error) => {
        if (cerr !== undefined) {
          finish({ outcome: classify(cerr), error: cerr.message });
          return;
        }
        s.send(Buffer.from('hostname\n'), (err) => {
          if (err !== null) finish({ outcome: classify(err), error: err.message });
        });
      });
    }
  });
}

export class PodServer {
  private readonly o: PodServerOptions;
  private readonly logger: Logger;
  private readonly tcp: Server[] = [];
  private readonly udp: UdpSocket[] = [];
  private control: Server | undefined;
  private readonly clients = new Set<Socket>();

  constructor(o: PodServerOptions) {
    this.o = o;
    this.logger = (o.logger ?? nullLogger).child({ component: 'pod-server', pod: o.hostname });
  }

  /** Starts every server and the control socket; rejects (after closing what it opened) if a port is taken. */
  async start(): Promise<void> {
    const host = this.o.listenHost ?? '0.0.0.0';
    try {
      for (const port of this.o.tcpPorts) {
        const srv = createServer((sock) => {
          sock.on('error', () => undefined);
          sock.end(this.o.hostname);
        });
        await new Promise<void>((resolve, reject) => {
          srv.once('error', reject);
          srv.listen(port, host, () => resolve());
        });
        this.tcp.push(srv);
      }
      for (const port of this.o.udpPorts) {
        const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
        s.on('message', (_msg, rinfo) => s.send(this.o.hostname, rinfo.port, rinfo.address));
        await new Promise<void>((resolve, reject) => {
          s.once('error', reject);
          s.bind(port, host, () => resolve());
        });
        s.on('error', (err) => this.logger.warn('udp server error', { port, err: errorMessage(err) }));
        this.udp.push(s);
      }
      if (existsSync(this.o.socketPath)) rmSync(this.o.socketPath);
      const ctl = createServer((sock) => this.serveControl(sock));
      await new Promise<void>((resolve, reject) => {
        ctl.once('error', reject);
        ctl.listen(this.o.socketPath, () => resolve());
      });
      this.control = ctl;
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.logger.info('serving', { tcp: this.o.tcpPorts, udp: this.o.udpPorts });
  }

  status(): PodStatus {
    return {
      name: this.o.hostname,
      pid: process.pid,
      tcp: this.o.tcpPorts,
      udp: this.o.udpPorts,
      unsupported: this.o.unsupported ?? [],
    };
  }

  private serveControl(sock: Socket): void {
    this.clients.add(sock);
    sock.on('close', () => this.clients.delete(sock));
    sock.on('error', () => undefined);
    let buf = '';
    sock.on('data', (b: Buffer) => {
      buf += b.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() !== '') void this.handle(line, sock);
      }
    });
  }

  private async handle(line: string, sock: Socket): Promise<void> {
    let req: { id?: unknown; op?: unknown; probe?: unknown };
    try {
      req = JSON.parse(line) as typeof req;
    } catch (err) {
      sock.write(JSON.stringify({ id: -1, error: `bad request: ${errorMessage(err)}` }) + '\n');
      return;
    }
    const id = typeof req.id === 'number' ? req.id : -1;
    let res: PodResponse;
    if (req.op === 'status') res = { id, status: this.status() };
    else if (req.op === 'probe') {
      const p = req.probe as Partial<ProbeRequest> | undefined;
      if (
        p === undefined ||
        typeof p.host !== 'string' ||
        !Number.isInteger(p.port) ||
        !['TCP', 'UDP', 'SCTP'].includes(String(p.protocol))
      ) {
        res = { id, error: 'probe: needs host, port and protocol (TCP, UDP or SCTP)' };
      } else res = { id, result: await runProbe(p as ProbeRequest) };
    } else res = { id, error: `unknown op ${JSON.stringify(req.op)}` };
    if (!sock.destroyed) sock.write(JSON.stringify(res) + '\n');
  }

  /** Closes every server and the control socket. Idempotent. */
  async stop(): Promise<void> {
    for (const c of this.clients) c.destroy();
    const closing: Promise<void>[] = [];
    for (const s of this.tcp.splice(0)) closing.push(new Promise((r) => s.close(() => r())));
    for (const s of this.udp.splice(0)) closing.push(new Promise((r) => s.close(() => r())));
    const ctl = this.control;
    this.control = undefined;
    if (ctl !== undefined) closing.push(new Promise((r) => ctl.close(() => r())));
    await Promise.all(closing);
    rmSync(this.o.socketPath, { force: true });
  }
}
