/**
 * The agent API server (Antrea's pkg/agent/apiserver): HTTPS on `apiPort` (10350) with a
 * self-signed certificate made at start (SANs localhost, 127.0.0.1, ::1), serving antctl in agent
 * mode. Non-resource JSON endpoints, all GET:
 *
 * - `/agentinfo`: the AntreaAgentInfo fields;
 * - `/podinterfaces?name=&namespace=`: local Pod interfaces;
 * - `/ovsflows?table=T[,T]&pod=&namespace=` (or `?table-names-only`): flows in ovs-ofctl text;
 * - `/networkpolicies?name=&namespace=&source=`, `/addressgroups?name=`, `/appliedtogroups?name=`:
 *   what this agent holds, policies with per-rule packet/byte/session counts;
 * - `/healthz`, `/livez`, `/readyz` without credentials.
 *
 * Authentication: the loopback bearer token (random, written with mode 0600 to
 * `<dir>/loopback-client-token`, next to the CA certificate `<dir>/ca.crt`, for antctl on this
 * Node; it is the privileged `system:apiserver` user in `system:masters`), or any token the
 * Kubernetes API accepts in a TokenReview when a Kubernetes client is configured. Authorization of
 * other users: a SubjectAccessReview for the non-resource path and verb `get` (Antrea's `antctl`
 * ClusterRole grants exactly these paths). Errors are Kubernetes Status objects: 400 bad query, 401,
 * 403, 404, 405, 503 while the agent is starting.
 *
 * `run(signal)` never fails the agent: when the port cannot be bound (taken by another process) it
 * logs a clear error and tries again with backoff (up to every 30 s) until the signal aborts.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import type { Authn, Authz, UserInfo } from '../../apiserver/auth.ts';
import {
  bearerToken,
  forbidden,
  HttpError,
  notFound,
  requireMethod,
  sendHealth,
  sendJson,
  statusBody,
} from '../../apiserver/http.ts';
import { Backoff } from '../../util/backoff.ts';
import { type Clock, systemClock } from '../../util/clock.ts';
import { AntreaError, errorMessage, ValidationError } from '../../util/errors.ts';
import { type Logger, nullLogger } from '../../util/log.ts';
import { createServingPki } from '../../util/pki.ts';
import type { Runnable } from '../../util/runnable.ts';
import type { AgentQuerier } from './querier.ts';

export const DEFAULT_AGENT_API_PORT = 10350;
/** Antrea's directory for the loopback token (`/var/run/antrea/apiserver`). */
export const DEFAULT_AGENT_API_DIR = '/var/run/antrea/apiserver';
export const LOOPBACK_TOKEN_FILE = 'loopback-client-token';
export const CA_CERT_FILE = 'ca.crt';

/** The identity of the loopback token (as k8s.io/apiserver's loopback client). */
export const LOOPBACK_USER: UserInfo = { username: 'system:apiserver', groups: ['system:masters'], extra: {} };

export interface AgentApiServerOptions {
  readonly querier: AgentQuerier;
  /** Where the loopback token and the CA certificate are written (created if absent). */
  readonly dir: string;
  /** Delegated authentication (TokenReview); absent: only the loopback token is accepted. */
  readonly authenticator?: Authn;
  /** Delegated authorization (SubjectAccessReview); absent: only the loopback user is allowed. */
  readonly authorizer?: Authz;
  /** Extra /livez and /readyz checks (name → ok). */
  readonly livenessChecks?: () => Readonly<Record<string, boolean>>;
  readonly readinessChecks?: () => Readonly<Record<string, boolean>>;
  /** Default 0.0.0.0. */
  readonly host?: string;
  /** Default 10350; 0 picks a free port. */
  readonly port?: number;
  /** Longest delay between attempts to bind the port (default 30 s). */
  readonly maxRetryMs?: number;
  readonly logger?: Logger;
  readonly clock?: Clock;
}

/** A listen failure, with the address it was for. */
export class ListenError extends AntreaError<'API_LISTEN_FAILED'> {
  constructor(address: string, cause: unknown) {
    const code = (cause as { code?: unknown } | undefined)?.code;
    const why = code === 'EADDRINUSE' ? 'the port is already in use by another process' : errorMessage(cause);
    super('API_LISTEN_FAILED', `the agent API server cannot listen on ${address}: ${why}`, {
      cause,
      details: { address },
    });
  }
}

const ENDPOINT_QUERIES: Readonly<Record<string, readonly string[]>> = {
  '/agentinfo': [],
  '/podinterfaces': ['name', 'namespace'],
  '/ovsflows': ['table', 'pod', 'namespace', 'table-names-only'],
  '/networkpolicies': ['name', 'namespace', 'source'],
  '/addressgroups': ['name'],
  '/appliedtogroups': ['name'],
};

/** The single value of a query parameter ('' when absent); a ValidationError when repeated or unknown. */
function queryOf(params: URLSearchParams, allowed: readonly string[]): (k: string) => string | undefined {
  for (const k of params.keys()) {
    if (!allowed.includes(k)) {
      throw new ValidationError(
        k,
        `unknown query parameter${allowed.length === 0 ? '' : ` (supported: ${allowed.join(', ')})`}`,
      );
    }
    if (params.getAll(k).length > 1) throw new ValidationError(k, 'given more than once');
  }
  return (k) => {
    const v = params.get(k);
    return v === null || v === '' ? undefined : v;
  };
}

export class AgentApiServer implements Runnable {
  private readonly o: AgentApiServerOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly token = randomBytes(32).toString('base64url');
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private addr: AddressInfo | undefined;
  /** The last failure to listen (cleared once listening). */
  lastError: ListenError | undefined;

  constructor(opts: AgentApiServerOptions) {
    this.o = opts;
    this.log = (opts.logger ?? nullLogger).child({ component: 'agent-apiserver' });
    this.clock = opts.clock ?? systemClock;
  }

  get tokenPath(): string {
    return join(this.o.dir, LOOPBACK_TOKEN_FILE);
  }

  get caPath(): string {
    return join(this.o.dir, CA_CERT_FILE);
  }

  /** The bound address once listening. */
  get address(): AddressInfo | undefined {
    return this.addr;
  }

  /**
   * Serves until `signal` aborts. Writes the loopback token and CA files first and removes them at
   * the end. A port that cannot be bound is logged and retried; this never rejects for it.
   */
  async run(signal: AbortSignal): Promise<void> {
    const pki = createServingPki({
      now: this.clock.now(),
      dnsNames: ['localhost'],
      ips: ['127.0.0.1', '::1'],
      caCommonName: 'antrea-agent-api-ca',
      serverCommonName: 'antrea-agent-api',
    });
    this.writeFiles(pki.ca.certPem);
    const host = this.o.host ?? '0.0.0.0';
    const port = this.o.port ?? DEFAULT_AGENT_API_PORT;
    const backoff = new Backoff({ initialMs: 1000, maxMs: this.o.maxRetryMs ?? 30_000 });
    try {
      while (!signal.aborted) {
        try {
          await this.listen(pki.server.certPem + pki.ca.certPem, pki.server.keyPem, host, port);
          break;
        } catch (err) {
          this.lastError = new ListenError(`${host}:${port}`, err);
          const delay = backoff.next();
          this.log.error(`${this.lastError.message}; antctl in agent mode cannot reach this agent until it can`, {
            retryInMs: Math.round(delay),
          });
          await this.clock.sleep(delay, signal).catch(() => undefined);
        }
      }
      if (this.server !== undefined) {
        await new Promise<void>((resolve) => {
          if (signal.aborted) resolve();
          else signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }
    } finally {
      await this.stop();
      rmSync(this.tokenPath, { force: true });
    }
  }

  private writeFiles(caPem: string): void {
    mkdirSync(this.o.dir, { recursive: true, mode: 0o755 });
    const tmp = `${this.tokenPath}.tmp`;
    rmSync(tmp, { force: true });
    writeFileSync(tmp, this.token, { mode: 0o600 });
    renameSync(tmp, this.tokenPath);
    writeFileSync(this.caPath, caPem, { mode: 0o644 });
  }

  private async listen(cert: string, key: string, host: string, port: number): Promise<void> {
    const server = createServer({ cert, key, minVersion: 'TLSv1.2' });
    server.on('request', (req, res) => void this.handle(req, res));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('tlsClientError', (err) => this.log.debug('TLS handshake failed', { err: errorMessage(err) }));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error('agent API server error', { err: errorMessage(err) }));
    this.server = server;
    this.addr = server.address() as AddressInfo;
    this.lastError = undefined;
    this.log.info('agent API server listening', { address: this.addr.address, port: this.addr.port });
  }

  /** Stops listening and closes every connection. Idempotent. */
  private async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    this.addr = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  // ------------------------------------------------------------------ requests

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    try {
      await this.route(req, res, url, path);
    } catch (err) {
      this.fail(res, req, path, err);
    }
  }

  private fail(res: ServerResponse, req: IncomingMessage, path: string, err: unknown): void {
    let status = 500;
    let reason = 'InternalError';
    let message = errorMessage(err);
    if (err instanceof HttpError) {
      status = err.status;
      reason = err.reason;
    } else if (err instanceof ValidationError) {
      status = 400;
      reason = 'BadRequest';
    } else {
      this.log.error('request failed', { method: req.method, path, err: message });
      message = `internal error: ${message}`;
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendJson(res, status, statusBody(status, reason, message));
  }

  private async authenticate(req: IncomingMessage): Promise<UserInfo> {
    const token = bearerToken(req);
    const a = Buffer.from(token);
    const b = Buffer.from(this.token);
    if (a.length === b.length && timingSafeEqual(a, b)) return LOOPBACK_USER;
    const authn = this.o.authenticator;
    if (authn === undefined) {
      throw new HttpError(
        401,
        'Unauthorized',
        'Unauthorized: invalid bearer token (only the loopback token is accepted: the agent has no Kubernetes client for TokenReviews)',
      );
    }
    const r = await authn.authenticate(token);
    if (!r.ok) throw new HttpError(401, 'Unauthorized', `Unauthorized: ${r.reason}`);
    return r.user;
  }

  private async authorize(user: UserInfo, path: string): Promise<void> {
    if (user === LOOPBACK_USER) return;
    const authz = this.o.authorizer;
    if (authz === undefined) throw forbidden(`${user.username} cannot get path "${path}": no authorizer configured`);
    const d = await authz.authorize(user, { nonResource: { verb: 'get', path } });
    if (!d.allowed)
      throw forbidden(`${user.username} cannot get path "${path}"${d.reason === '' ? '' : `: ${d.reason}`}`);
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL, path: string): Promise<void> {
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      requireMethod(req, res, path, 'GET', 'HEAD');
      const checks: Record<string, boolean> = { ping: true };
      if (path !== '/healthz') Object.assign(checks, this.o.livenessChecks?.() ?? {});
      if (path === '/readyz') Object.assign(checks, this.o.readinessChecks?.() ?? {});
      sendHealth(res, path.slice(1), checks, url.searchParams.has('verbose'));
      return;
    }
    const allowed = ENDPOINT_QUERIES[path];
    const user = await this.authenticate(req);
    if (allowed === undefined) throw notFound(`the server could not find the requested resource (${path})`);
    requireMethod(req, res, path, 'GET');
    await this.authorize(user, path);
    const q = queryOf(url.searchParams, allowed);
    const querier = this.o.querier;
    switch (path) {
      case '/agentinfo':
        sendJson(res, 200, querier.agentInfo());
        return;
      case '/podinterfaces': {
        const name = q('name');
        const namespace = q('namespace');
        sendJson(
          res,
          200,
          querier.podInterfaces({
            ...(name === undefined ? {} : { name }),
            ...(namespace === undefined ? {} : { namespace }),
          }),
        );
        return;
      }
      case '/ovsflows':
        await this.ovsFlows(res, url.searchParams.has('table-names-only'), q);
        return;
      case '/networkpolicies': {
        const name = q('name');
        const namespace = q('namespace');
        const source = q('source');
        sendJson(
          res,
          200,
          await querier.networkPolicies({
            ...(name === undefined ? {} : { name }),
            ...(namespace === undefined ? {} : { namespace }),
            ...(source === undefined ? {} : { sourceName: source }),
          }),
        );
        return;
      }
      case '/addressgroups':
        sendJson(res, 200, querier.addressGroups(q('name')));
        return;
      default:
        sendJson(res, 200, querier.appliedToGroups(q('name')));
    }
  }

  private async ovsFlows(res: ServerResponse, namesOnly: boolean, q: (k: string) => string | undefined): Promise<void> {
    const querier = this.o.querier;
    if (namesOnly) {
      sendJson(
        res,
        200,
        Object.entries(querier.tables()).map(([name, id]) => ({ name, id })),
      );
      return;
    }
    const pod = q('pod');
    const namespace = q('namespace');
    if (namespace !== undefined && pod === undefined) throw new ValidationError('namespace', 'only valid with pod');
    const tables = querier.resolveTables(
      (q('table') ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    );
    const flows = await querier.ovsFlows({
      tables,
      ...(pod === undefined ? {} : { pod: { name: pod, namespace: namespace ?? 'default' } }),
    });
    sendJson(
      res,
      200,
      flows.map((flow) => ({ flow })),
    );
  }
}
