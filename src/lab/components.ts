/**
 * Stopping, killing and starting the lab's components while the lab runs: fault injection and
 * recovery, as a DaemonSet or Deployment would restart a crashed Pod. The supervisor owns the
 * processes (it started them, knows their arguments and keeps the state file), so it serves these
 * requests on a unix socket in the data directory ({@link LabPaths.controlSocket}); the CLI
 * (`antrea-lab component ACTION COMPONENT [--node NAME]`) and tests are clients.
 *
 * Protocol: one connection per request; the client writes one JSON line
 * `{"action", "component", "node"?}`, the server answers one JSON line, `{"result": ComponentResult}`
 * or `{"error": {"code", "message"}}`, and closes. Requests are carried out one at a time.
 *
 * Actions (every one is safe to repeat):
 * - `kill`: SIGKILL, resolved once the process is gone; nothing restarts it (absent: no-op).
 * - `stop`: SIGTERM, then SIGKILL after a grace period (absent: no-op).
 * - `start`: starts it if it is not running and resolves once it is ready (an agent: its CNI STATUS
 *   succeeds; the controller: its API accepts connections; ovs-vswitchd: its pid file and socket);
 *   running: no-op.
 * - `restart`: `stop` then `start`.
 */
import { rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { AntreaError, errorMessage, isAntreaError, ValidationError } from '../common/util/errors.ts';
import { type Logger, nullLogger } from '../common/util/log.ts';

export const LAB_COMPONENTS = ['antrea-agent', 'antrea-controller', 'ovs-vswitchd'] as const;
export type LabComponent = (typeof LAB_COMPONENTS)[number];
export const COMPONENT_ACTIONS = ['kill', 'stop', 'start', 'restart'] as const;
export type ComponentAction = (typeof COMPONENT_ACTIONS)[number];

/** Components that run once per Node (the request names the Node). */
const PER_NODE: ReadonlySet<LabComponent> = new Set(['antrea-agent', 'ovs-vswitchd']);

export interface ComponentRequest {
  readonly action: ComponentAction;
  readonly component: LabComponent;
  /** The Node, for per-Node components (antrea-agent, ovs-vswitchd); absent for the controller. */
  readonly node?: string;
}

export interface ComponentResult extends ComponentRequest {
  /** The component's pid after the action; absent when it is not running. */
  readonly pid?: number;
  /** How long the action took. */
  readonly ms: number;
}

export type ComponentErrorCode = 'COMPONENT_UNAVAILABLE' | 'COMPONENT_FAILED' | 'LAB_CONTROL_SOCKET';
export class ComponentError extends AntreaError<ComponentErrorCode> {}

/** Validates a request (from JSON or the CLI); throws a ValidationError naming the bad field. */
export function parseComponentRequest(v: unknown): ComponentRequest {
  if (typeof v !== 'object' || v === null) throw new ValidationError('request', 'must be an object');
  const r = v as Record<string, unknown>;
  const action = r['action'];
  if (typeof action !== 'string' || !(COMPONENT_ACTIONS as readonly string[]).includes(action)) {
    throw new ValidationError(
      'action',
      `must be one of ${COMPONENT_ACTIONS.join(', ')}, got ${JSON.stringify(action)}`,
    );
  }
  const component = r['component'];
  if (typeof component !== 'string' || !(LAB_COMPONENTS as readonly string[]).includes(component)) {
    throw new ValidationError(
      'component',
      `must be one of ${LAB_COMPONENTS.join(', ')}, got ${JSON.stringify(component)}`,
    );
  }
  const c = component as LabComponent;
  const node = r['node'];
  if (PER_NODE.has(c)) {
    if (typeof node !== 'string' || node === '') throw new ValidationError('node', `${c} runs per Node: name the Node`);
    return { action: action as ComponentAction, component: c, node };
  }
  if (node !== undefined) throw new ValidationError('node', `${c} does not run per Node`);
  return { action: action as ComponentAction, component: c };
}

/** Carries out one request; rejects with a ComponentError (or ValidationError) when it cannot. */
export type ComponentHandler = (req: ComponentRequest) => Promise<ComponentResult>;

/** The supervisor's side: serves requests on a unix socket, one at a time. */
export class ComponentControlServer {
  private readonly socketPath: string;
  private readonly handler: ComponentHandler;
  private readonly log: Logger;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** Requests run one after another. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(o: { socketPath: string; handler: ComponentHandler; logger?: Logger }) {
    this.socketPath = o.socketPath;
    this.handler = o.handler;
    this.log = (o.logger ?? nullLogger).child({ component: 'lab-component-control' });
  }

  /** Starts listening (a stale socket file is replaced). Idempotent. */
  async listen(): Promise<void> {
    if (this.server !== undefined) return;
    rmSync(this.socketPath, { force: true });
    const server = createServer((sock) => this.accept(sock));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  private accept(sock: Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf = '';
    const onData = (b: Buffer): void => {
      buf += b.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      sock.off('data', onData);
      const line = buf.slice(0, nl);
      const run = this.queue.then(() => this.answer(line));
      this.queue = run.catch(() => undefined);
      void run.then((res) => {
        if (!sock.destroyed) sock.end(JSON.stringify(res) + '\n');
      });
    };
    sock.on('data', onData);
  }

  private async answer(
    line: string,
  ): Promise<{ result: ComponentResult } | { error: { code: string; message: string } }> {
    let req: ComponentRequest;
    try {
      req = parseComponentRequest(JSON.parse(line));
    } catch (err) {
      return { error: { code: 'INVALID_ARGUMENT', message: errorMessage(err) } };
    }
    this.log.info('component request', { ...req });
    try {
      return { result: await this.handler(req) };
    } catch (err) {
      this.log.warn('component request failed', { ...req, err: errorMessage(err) });
      const code: string = isAntreaError(err) ? err.code : 'COMPONENT_FAILED';
      return { error: { code, message: errorMessage(err) } };
    }
  }

  /** Stops listening and drops open connections; removes the socket file. Idempotent. */
  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const c of this.sockets) c.destroy();
    if (s !== undefined) await new Promise<void>((r) => s.close(() => r()));
    rmSync(this.socketPath, { force: true });
  }
}

/**
 * The client's side: sends one request to the supervisor listening on `socketPath` and resolves with
 * its result. Rejects with LAB_CONTROL_SOCKET when the supervisor cannot be reached or does not
 * answer within `timeoutMs` (default 180 s), with ValidationError for a bad request, and with a
 * ComponentError carrying the supervisor's code when the action failed.
 */
export function requestComponent(
  socketPath: string,
  request: ComponentRequest,
  timeoutMs = 180_000,
): Promise<ComponentResult> {
  return new Promise((resolve, reject) => {
    // A bad request rejects (thrown in the executor) before anything is sent.
    const req = parseComponentRequest(request);
    const sock = connect(socketPath);
    let buf = '';
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      fn();
    };
    const timer = setTimeout(
      () =>
        finish(() =>
          reject(new ComponentError('LAB_CONTROL_SOCKET', `${socketPath}: no answer within ${timeoutMs} ms`)),
        ),
      timeoutMs,
    );
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (b: Buffer) => {
      buf += b.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let res: { result?: ComponentResult; error?: { code?: string; message?: string } };
      try {
        res = JSON.parse(buf.slice(0, nl)) as typeof res;
      } catch (err) {
        finish(() => reject(new ComponentError('LAB_CONTROL_SOCKET', `${socketPath}: bad answer`, { cause: err })));
        return;
      }
      const { result, error } = res;
      if (result !== undefined) finish(() => resolve(result));
      else {
        const code = error?.code ?? 'COMPONENT_FAILED';
        const message = error?.message ?? 'no result';
        finish(() =>
          reject(
            code === 'INVALID_ARGUMENT'
              ? new ValidationError('request', message)
              : new ComponentError(isComponentCode(code) ? code : 'COMPONENT_FAILED', message),
          ),
        );
      }
    });
    sock.on('error', (err) =>
      finish(() =>
        reject(
          new ComponentError('LAB_CONTROL_SOCKET', `${socketPath}: ${err.message} (is the lab running?)`, {
            cause: err,
          }),
        ),
      ),
    );
    sock.on('close', () =>
      finish(() => reject(new ComponentError('LAB_CONTROL_SOCKET', `${socketPath}: closed without an answer`))),
    );
  });
}

function isComponentCode(c: string): c is ComponentErrorCode {
  return c === 'COMPONENT_UNAVAILABLE' || c === 'COMPONENT_FAILED' || c === 'LAB_CONTROL_SOCKET';
}

/** One line for humans: "antrea-agent on lab-n1: restart done in 2.1 s, pid 1234". */
export function describeResult(r: ComponentResult): string {
  const where = r.node === undefined ? r.component : `${r.component} on ${r.node}`;
  const secs = r.ms >= 1000 ? `${(r.ms / 1000).toFixed(1)} s` : `${Math.round(r.ms)} ms`;
  return `${where}: ${r.action} done in ${secs}, ${r.pid === undefined ? 'not running' : `pid ${r.pid}`}`;
}
