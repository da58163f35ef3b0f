/**
 * antrea-controller's API server: HTTPS on port 10349, serving what Antrea's controller serves to
 * agents and antctl:
 *
 * - `controlplane.antrea.io/v1beta2` networkpolicies, addressgroups, appliedtogroups: get, list and
 *   watch (per Node with `fieldSelector=nodeName=<node>`), in protobuf or JSON by the Accept header;
 *   `networkpolicies/{name}/status`: POST an agent's realization report, GET every Node's reports;
 * - `system.antrea.io/v1beta1` controllerinfos (the AntreaControllerInfo object);
 * - discovery (`/apis`, the group and version documents);
 * - `/livez`, `/healthz`, `/readyz` (no credentials needed), `/metrics`, `/endpoint?namespace=&pod=`
 *   (which policies select a Pod), `/networkpolicyrealization` (realization summaries), `/loglevel`.
 *
 * Every other request needs a bearer token (checked with a TokenReview) and an authorization (a
 * SubjectAccessReview), plus the Node binding of {@link NodeAccessPolicy}. Errors are Kubernetes
 * Status objects (JSON) with the usual codes: 400 bad query or body, 401 no or bad token, 403
 * refused, 404 unknown object or path, 405, 406 unsupported Accept, 413 body too large, 415
 * unsupported Content-Type.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { SecureVersion } from 'node:tls';
import {
  API_GROUP,
  API_VERSION,
  CONTENT_TYPES,
  type ControlplaneEncoder,
  type ControlplaneResource,
  decodeObject,
  type Encoding,
  GROUP_VERSION,
  isControlplaneResource,
  type Kind,
  type KindTypes,
} from '../../common/apis/controlplane/codec.ts';
import type { NetworkPolicyStatus } from '../../common/apis/controlplane/types.ts';
import { PROTOBUF_WATCH_CONTENT_TYPE } from '../../common/apis/protobuf/k8s.ts';
import { type Clock, systemClock } from '../../common/util/clock.ts';
import { errorMessage, isAntreaError, ValidationError } from '../../common/util/errors.ts';
import { type Logger, type LogLevel, nullLogger, parseLogLevel } from '../../common/util/log.ts';
import { METRICS_CONTENT_TYPE, type MetricsRegistry } from '../../common/util/metrics.ts';
import type { NetworkPolicyController } from '../networkpolicy/controller.ts';
import { addressGroupObject, appliedToGroupObject } from '../networkpolicy/watch-events.ts';
import type { StatusAggregator } from '../status/aggregator.ts';
import type { CertificateProvider } from '../certificate.ts';
import {
  bearerToken,
  forbidden,
  HttpError,
  notFound,
  requireMethod,
  sendHealth,
  sendJson,
  sendText,
  statusBody,
} from '../../common/apiserver/http.ts';
import type { AccessAttributes, Authn, Authz, NodeAccessPolicy, UserInfo } from './auth.ts';
import { checkNoQuery, checkObjectName, parseListWatchQuery } from './query.ts';
import type { WatchCloseReason, WatchHandle, WatchHub, WatchSink } from './watch.ts';

export const DEFAULT_API_PORT = 10349;

export { HttpError };

export interface ControlplaneServerOptions {
  readonly controller: NetworkPolicyController;
  readonly hub: WatchHub;
  readonly encoder: ControlplaneEncoder;
  readonly authenticator: Authn;
  readonly authorizer: Authz;
  readonly nodePolicy: NodeAccessPolicy;
  readonly status: StatusAggregator;
  readonly metrics: MetricsRegistry;
  readonly certificate: CertificateProvider;
  /** The AntreaControllerInfo object served under system.antrea.io (absent: 404). */
  readonly controllerInfo?: () => Record<string, unknown>;
  /** Extra readiness checks (name → ok), next to the computation being published. */
  readonly readinessChecks?: () => Readonly<Record<string, boolean>>;
  readonly host?: string;
  /** Default 10349; 0 picks a free port. */
  readonly port?: number;
  readonly tlsMinVersion?: SecureVersion;
  /** OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are not configurable). */
  readonly tlsCipherSuites?: string;
  /** Watches last between this and twice this long (default 2 h, as Antrea's). */
  readonly minWatchTimeoutSeconds?: number;
  /** A watcher is cut off when more events than this wait in its buffer (default 1000). */
  readonly maxBufferedEvents?: number;
  /** ... or more bytes than this (default 64 MiB). */
  readonly maxBufferedBytes?: number;
  /** Largest request body (default 3 MiB, as kube-apiserver). */
  readonly maxBodyBytes?: number;
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly random?: () => number;
}

/** Parses an Accept header into the encoding to answer with (406 when none fits). */
export function negotiate(accept: string | undefined): Encoding {
  if (accept === undefined || accept.trim() === '') return 'json';
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.split(';').map((s) => s.trim());
    // Tables and partial object metadata are not served: skip those alternatives.
    if (params.some((p) => p.startsWith('as='))) continue;
    const t = type.toLowerCase();
    if (t === CONTENT_TYPES.protobuf) return 'protobuf';
    if (t === 'application/json' || t === '*/*' || t === 'application/*') return 'json';
  }
  throw new HttpError(
    406,
    'NotAcceptable',
    `none of the accepted types is served (${accept}); use application/json or ${CONTENT_TYPES.protobuf}`,
  );
}

function contentEncoding(type: string | undefined): Encoding {
  const t = (type ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (t === CONTENT_TYPES.protobuf) return 'protobuf';
  if (t === 'application/json') return 'json';
  throw new HttpError(
    415,
    'UnsupportedMediaType',
    `unsupported Content-Type "${type ?? ''}"; use application/json or ${CONTENT_TYPES.protobuf}`,
  );
}

/** A watcher's HTTP response, with the buffer bound of {@link WatchSink}. */
class HttpWatchSink implements WatchSink {
  private readonly res: ServerResponse;
  private readonly maxEvents: number;
  private readonly maxBytes: number;
  private backlogged = false;
  private queuedEvents = 0;
  private queuedBytes = 0;
  closed = false;

  constructor(res: ServerResponse, maxEvents: number, maxBytes: number) {
    this.res = res;
    this.maxEvents = maxEvents;
    this.maxBytes = maxBytes;
  }

  write(frame: Buffer, live: boolean): boolean {
    if (this.closed) return true;
    if (this.backlogged && live) {
      this.queuedEvents++;
      this.queuedBytes += frame.length;
      if (this.queuedEvents > this.maxEvents || this.queuedBytes > this.maxBytes) return false;
    }
    if (!this.res.write(frame) && !this.backlogged) {
      this.backlogged = true;
      this.res.once('drain', () => {
        this.backlogged = false;
        this.queuedEvents = 0;
        this.queuedBytes = 0;
      });
    }
    return true;
  }

  close(reason: WatchCloseReason): void {
    if (this.closed) return;
    this.closed = true;
    // A watcher cut off for being slow loses its connection at once (its buffer is dropped).
    if (reason === 'overflow') this.res.destroy();
    else this.res.end();
  }
}

interface Request {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly method: string;
  user?: UserInfo;
}

export class ControlplaneServer {
  private readonly o: ControlplaneServerOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly requestCounter;
  private readonly watchAborts = new Set<AbortController>();

  constructor(opts: ControlplaneServerOptions) {
    this.o = opts;
    this.log = (opts.logger ?? nullLogger).child({ component: 'controlplane-apiserver' });
    this.clock = opts.clock ?? systemClock;
    this.requestCounter = opts.metrics.counter(
      'antrea_controller_apiserver_requests_total',
      'Requests to the antrea-controller API server, by verb, resource and HTTP code.',
    );
  }

  /** Starts listening (once a certificate is available). Resolves with the bound address. */
  async start(signal?: AbortSignal): Promise<AddressInfo> {
    if (this.server !== undefined) throw new Error('the server is already started');
    await this.o.certificate.waitReady(signal);
    const cert = this.o.certificate.current();
    if (cert === undefined) throw new Error('no serving certificate');
    const server = createServer({
      cert: cert.certPem,
      key: cert.keyPem,
      minVersion: this.o.tlsMinVersion ?? 'TLSv1.2',
      ...(this.o.tlsCipherSuites === undefined || this.o.tlsCipherSuites === ''
        ? {}
        : { ciphers: this.o.tlsCipherSuites }),
    });
    server.on('request', (req, res) => void this.handle(req, res));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.setKeepAlive(true, 30_000);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('tlsClientError', (err) => this.log.debug('TLS handshake failed', { err: errorMessage(err) }));
    this.server = server;
    this.o.certificate.onChange((c) => {
      server.setSecureContext({ cert: c.certPem, key: c.keyPem });
      this.log.info('serving a new certificate', { notAfter: new Date(c.notAfter).toISOString() });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.port ?? DEFAULT_API_PORT, this.o.host ?? '0.0.0.0', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    this.log.info('API server listening', { address: addr.address, port: addr.port });
    return addr;
  }

  /** Ends every watch, stops listening and closes every connection. Idempotent. */
  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    for (const a of this.watchAborts) a.abort();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    // Give answers in flight a moment, then drop what is left.
    const t = this.clock.setTimer(1000, () => {
      for (const s of this.sockets) s.destroy();
    });
    await closed;
    t.cancel();
  }

  /** Serves until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    try {
      await this.start(signal);
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await this.stop();
  }

  // ------------------------------------------------------------------ request handling

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const r: Request = {
      req,
      res,
      url: new URL(req.url ?? '/', 'https://localhost'),
      method: req.method ?? 'GET',
    };
    let label = 'other';
    try {
      label = await this.route(r);
    } catch (err) {
      this.fail(r, err);
    } finally {
      res.once('finish', () =>
        this.requestCounter.inc({ verb: r.method, resource: label, code: String(res.statusCode) }),
      );
    }
  }

  private fail(r: Request, err: unknown): void {
    let status = 500;
    let reason = 'InternalError';
    let message = errorMessage(err);
    if (err instanceof HttpError) {
      status = err.status;
      reason = err.reason;
    } else if (
      err instanceof ValidationError ||
      isAntreaError(err, 'PROTOBUF_MALFORMED') ||
      isAntreaError(err, 'JSON_MALFORMED')
    ) {
      status = 400;
      reason = 'BadRequest';
    } else {
      this.log.error('request failed', { method: r.method, path: r.url.pathname, err: message });
      message = `internal error: ${message}`;
    }
    if (r.res.headersSent) {
      r.res.destroy();
      return;
    }
    this.sendJson(r, status, statusBody(status, reason, message));
  }

  private sendJson(r: Request, status: number, body: unknown): void {
    sendJson(r.res, status, body);
  }

  private sendText(r: Request, status: number, text: string, type?: string): void {
    sendText(r.res, status, text, type);
  }

  private sendObject<K extends Kind>(r: Request, status: number, encoding: Encoding, kind: K, obj: KindTypes[K]): void {
    const data = this.o.encoder.object(encoding, kind, obj);
    r.res.writeHead(status, { 'Content-Type': CONTENT_TYPES[encoding], 'Content-Length': data.length });
    r.res.end(data);
  }

  private async authenticate(r: Request): Promise<UserInfo> {
    const a = await this.o.authenticator.authenticate(bearerToken(r.req));
    if (!a.ok) throw new HttpError(401, 'Unauthorized', `Unauthorized: ${a.reason}`);
    r.user = a.user;
    return a.user;
  }

  private async authorize(user: UserInfo, attrs: AccessAttributes): Promise<void> {
    const d = await this.o.authorizer.authorize(user, attrs);
    if (d.allowed) return;
    const what =
      attrs.resource !== undefined
        ? `${attrs.resource.verb} resource "${attrs.resource.resource}${attrs.resource.subresource === undefined ? '' : '/' + attrs.resource.subresource}" in API group "${attrs.resource.group}"`
        : `${attrs.nonResource.verb} path "${attrs.nonResource.path}"`;
    throw forbidden(`${user.username} cannot ${what}${d.reason === '' ? '' : `: ${d.reason}`}`);
  }

  private nonResource(r: Request, user: UserInfo, verb = 'get'): Promise<void> {
    return this.authorize(user, { nonResource: { verb, path: r.url.pathname } });
  }

  private requireMethod(r: Request, ...methods: string[]): void {
    requireMethod(r.req, r.res, r.url.pathname, ...methods);
  }

  /** Routes a request; returns a label for the request metric. */
  private async route(r: Request): Promise<string> {
    const path = r.url.pathname.replace(/\/+$/, '') || '/';
    if (path === '/livez' || path === '/healthz' || path === '/readyz') {
      this.requireMethod(r, 'GET', 'HEAD');
      this.health(r, path);
      return path.slice(1);
    }
    const user = await this.authenticate(r);
    const parts = path.split('/').filter((p) => p !== '');
    if (parts[0] === 'apis') {
      if (parts.length === 1) {
        this.requireMethod(r, 'GET');
        await this.nonResource(r, user);
        this.sendJson(r, 200, this.apiGroupList());
        return 'discovery';
      }
      if (parts[1] === API_GROUP) return this.routeControlplane(r, user, parts.slice(2));
      if (parts[1] === 'system.antrea.io') return this.routeSystem(r, user, parts.slice(2));
      throw notFound(`the server could not find the requested resource (${path})`);
    }
    switch (path) {
      case '/metrics':
        this.requireMethod(r, 'GET');
        checkNoQuery(r.url.searchParams);
        await this.nonResource(r, user);
        this.sendText(r, 200, this.o.metrics.render(), METRICS_CONTENT_TYPE);
        return 'metrics';
      case '/endpoint':
        this.requireMethod(r, 'GET');
        await this.nonResource(r, user);
        this.endpointQuery(r);
        return 'endpoint';
      case '/networkpolicyrealization':
        this.requireMethod(r, 'GET');
        checkNoQuery(r.url.searchParams, ['name']);
        await this.nonResource(r, user);
        this.realization(r);
        return 'networkpolicyrealization';
      case '/loglevel':
        this.requireMethod(r, 'GET', 'PUT');
        checkNoQuery(r.url.searchParams, ['level']);
        await this.nonResource(r, user, r.method === 'PUT' ? 'put' : 'get');
        this.logLevel(r);
        return 'loglevel';
      default:
        throw notFound(`the server could not find the requested resource (${path})`);
    }
  }

  private health(r: Request, path: string): void {
    const checks: Record<string, boolean> = { ping: true };
    if (path === '/readyz') {
      checks['networkpolicy-computation-published'] = this.o.controller.networkPolicies.ready;
      checks['serving-certificate'] = this.o.certificate.current() !== undefined;
      Object.assign(checks, this.o.readinessChecks?.() ?? {});
    }
    sendHealth(r.res, path.slice(1), checks, r.url.searchParams.has('verbose'));
  }

  private apiGroupList(): Record<string, unknown> {
    const group = (name: string, version: string): Record<string, unknown> => ({
      name,
      versions: [{ groupVersion: `${name}/${version}`, version }],
      preferredVersion: { groupVersion: `${name}/${version}`, version },
    });
    return {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: [group(API_GROUP, API_VERSION), group('system.antrea.io', 'v1beta1')],
    };
  }

  private async routeControlplane(r: Request, user: UserInfo, parts: string[]): Promise<string> {
    if (parts.length === 0) {
      this.requireMethod(r, 'GET');
      await this.nonResource(r, user);
      this.sendJson(r, 200, {
        kind: 'APIGroup',
        apiVersion: 'v1',
        name: API_GROUP,
        versions: [{ groupVersion: GROUP_VERSION, version: API_VERSION }],
        preferredVersion: { groupVersion: GROUP_VERSION, version: API_VERSION },
      });
      return 'discovery';
    }
    if (parts[0] !== API_VERSION) throw notFound(`API version ${API_GROUP}/${parts[0] ?? ''} is not served`);
    if (parts.length === 1) {
      this.requireMethod(r, 'GET');
      await this.nonResource(r, user);
      this.sendJson(r, 200, this.resourceList());
      return 'discovery';
    }
    const resource = parts[1] ?? '';
    if (!isControlplaneResource(resource)) {
      throw notFound(`the server could not find the requested resource (${resource}.${API_GROUP})`);
    }
    if (parts.length === 2) {
      this.requireMethod(r, 'GET');
      await this.listOrWatch(r, user, resource);
      return resource;
    }
    const name = checkObjectName('name', decodeURIComponent(parts[2] ?? ''));
    if (parts.length === 3) {
      this.requireMethod(r, 'GET');
      checkNoQuery(r.url.searchParams, ['resourceVersion']);
      await this.getObject(r, user, resource, name);
      return resource;
    }
    if (parts.length === 4 && parts[3] === 'status' && resource === 'networkpolicies') {
      this.requireMethod(r, 'GET', 'POST');
      checkNoQuery(r.url.searchParams, ['fieldManager', 'fieldValidation', 'dryRun']);
      if (r.method === 'POST') await this.postStatus(r, user, name);
      else await this.getStatus(r, user, name);
      return 'networkpolicies/status';
    }
    throw notFound(`the server could not find the requested resource (${r.url.pathname})`);
  }

  private resourceList(): Record<string, unknown> {
    const res = (name: string, kind: string, singular: string, verbs: string[]): Record<string, unknown> => ({
      name,
      singularName: singular,
      namespaced: false,
      kind,
      verbs,
    });
    return {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: GROUP_VERSION,
      resources: [
        res('addressgroups', 'AddressGroup', 'addressgroup', ['get', 'list', 'watch']),
        res('appliedtogroups', 'AppliedToGroup', 'appliedtogroup', ['get', 'list', 'watch']),
        res('networkpolicies', 'NetworkPolicy', 'networkpolicy', ['get', 'list', 'watch']),
        res('networkpolicies/status', 'NetworkPolicyStatus', '', ['create', 'get']),
      ],
    };
  }

  private resourceAttrs(
    verb: string,
    resource: string,
    extra: { name?: string; subresource?: string } = {},
  ): AccessAttributes {
    return { resource: { verb, group: API_GROUP, version: API_VERSION, resource, ...extra } };
  }

  private async listOrWatch(r: Request, user: UserInfo, resource: ControlplaneResource): Promise<void> {
    const q = parseListWatchQuery(r.url.searchParams);
    const encoding = negotiate(r.req.headers.accept);
    const refusal = this.o.nodePolicy.check(user, {
      kind: q.watch && q.node !== undefined ? 'watch' : 'read',
      nodes: q.node === undefined ? [] : [q.node],
    });
    if (refusal !== undefined) throw forbidden(refusal);
    await this.authorize(
      user,
      this.resourceAttrs(q.watch ? 'watch' : 'list', resource, q.name === undefined ? {} : { name: q.name }),
    );
    if (!q.watch) {
      this.list(r, resource, encoding, q.node, q.name);
      return;
    }
    await this.watch(
      r,
      resource,
      encoding,
      q.node,
      q.name,
      q.timeoutSeconds,
      q.sendInitialEvents && q.allowWatchBookmarks,
    );
  }

  private list(
    r: Request,
    resource: ControlplaneResource,
    encoding: Encoding,
    node: string | undefined,
    name: string | undefined,
  ): void {
    const c = this.o.controller;
    const match = (n: string, span: ReadonlySet<string>): boolean =>
      (name === undefined || n === name) && (node === undefined || span.has(node));
    if (resource === 'networkpolicies') {
      const items = [...c.networkPolicies.list()].filter((v) => match(v.name, v.span)).map((v) => v.object);
      this.sendObject(r, 200, encoding, 'NetworkPolicyList', {
        metadata: { resourceVersion: String(c.networkPolicies.resourceVersion) },
        items,
      });
    } else if (resource === 'addressgroups') {
      const items = [...c.addressGroups.list()].filter((g) => match(g.name, g.span)).map((g) => addressGroupObject(g));
      this.sendObject(r, 200, encoding, 'AddressGroupList', {
        metadata: { resourceVersion: String(c.addressGroups.resourceVersion) },
        items,
      });
    } else {
      const items = [...c.appliedToGroups.list()]
        .filter((g) => match(g.name, g.span))
        .map((g) => appliedToGroupObject(g, node));
      this.sendObject(r, 200, encoding, 'AppliedToGroupList', {
        metadata: { resourceVersion: String(c.appliedToGroups.resourceVersion) },
        items,
      });
    }
  }

  private async getObject(r: Request, user: UserInfo, resource: ControlplaneResource, name: string): Promise<void> {
    const encoding = negotiate(r.req.headers.accept);
    const refusal = this.o.nodePolicy.check(user, { kind: 'read', nodes: [] });
    if (refusal !== undefined) throw forbidden(refusal);
    await this.authorize(user, this.resourceAttrs('get', resource, { name }));
    const c = this.o.controller;
    const missing = (): HttpError => notFound(`${resource}.${API_GROUP} "${name}" not found`);
    if (resource === 'networkpolicies') {
      const v = c.networkPolicies.get(name);
      if (v === undefined) throw missing();
      this.sendObject(r, 200, encoding, 'NetworkPolicy', v.object);
    } else if (resource === 'addressgroups') {
      const g = c.addressGroups.get(name);
      if (g === undefined) throw missing();
      this.sendObject(r, 200, encoding, 'AddressGroup', addressGroupObject(g));
    } else {
      const g = c.appliedToGroups.get(name);
      if (g === undefined) throw missing();
      this.sendObject(r, 200, encoding, 'AppliedToGroup', appliedToGroupObject(g, undefined));
    }
  }

  private async watch(
    r: Request,
    resource: ControlplaneResource,
    encoding: Encoding,
    node: string | undefined,
    name: string | undefined,
    timeoutSeconds: number | undefined,
    annotateBookmark: boolean,
  ): Promise<void> {
    const min = this.o.minWatchTimeoutSeconds ?? 7200;
    const random = this.o.random ?? Math.random;
    const serverTimeout = min * (1 + random());
    const seconds =
      timeoutSeconds === undefined || timeoutSeconds === 0 ? serverTimeout : Math.min(timeoutSeconds, serverTimeout);
    const abort = new AbortController();
    this.watchAborts.add(abort);
    const res = r.res;
    const sink = new HttpWatchSink(res, this.o.maxBufferedEvents ?? 1000, this.o.maxBufferedBytes ?? 64 * 1024 * 1024);
    res.writeHead(200, {
      'Content-Type': encoding === 'protobuf' ? PROTOBUF_WATCH_CONTENT_TYPE : 'application/json',
      'Cache-Control': 'no-cache, private',
      'Transfer-Encoding': 'chunked',
    });
    res.flushHeaders();
    let handle: WatchHandle | undefined;
    const onClose = (): void => {
      sink.closed = true;
      abort.abort();
      handle?.stop('client');
    };
    res.once('close', onClose);
    const timer = this.clock.setTimer(seconds * 1000, () => {
      if (handle !== undefined) handle.stop('timeout');
      else {
        abort.abort();
        sink.close('timeout');
      }
    });
    try {
      handle = await this.o.hub.watch(
        {
          resource,
          encoding,
          ...(node === undefined ? {} : { node }),
          ...(name === undefined ? {} : { name }),
          annotateBookmark,
        },
        sink,
        abort.signal,
      );
      if (abort.signal.aborted) handle.stop('shutdown');
      const h = handle;
      abort.signal.addEventListener('abort', () => h.stop('shutdown'), { once: true });
      await h.done;
    } catch (err) {
      if (!abort.signal.aborted) throw err;
      if (!sink.closed) sink.close('shutdown');
    } finally {
      timer.cancel();
      this.watchAborts.delete(abort);
      res.off('close', onClose);
    }
  }

  private async readBody(r: Request): Promise<Buffer> {
    const max = this.o.maxBodyBytes ?? 3 * 1024 * 1024;
    const declared = Number(r.req.headers['content-length'] ?? '0');
    if (declared > max)
      throw new HttpError(413, 'RequestEntityTooLarge', `request body of ${declared} bytes exceeds ${max}`);
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const chunk of r.req as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > max) throw new HttpError(413, 'RequestEntityTooLarge', `request body exceeds ${max} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  private async postStatus(r: Request, user: UserInfo, name: string): Promise<void> {
    const encoding = negotiate(r.req.headers.accept);
    const bodyEncoding = contentEncoding(r.req.headers['content-type']);
    const body = await this.readBody(r);
    const status = decodeObject(bodyEncoding, body, ['NetworkPolicyStatus']).object as NetworkPolicyStatus;
    if (status.metadata.name !== name) {
      throw new ValidationError(
        'metadata.name',
        `"${status.metadata.name}" does not match the name in the path "${name}"`,
      );
    }
    if (status.nodes.length === 0) throw new ValidationError('nodes', 'at least one Node status is required');
    for (const [i, n] of status.nodes.entries()) checkObjectName(`nodes[${i}].nodeName`, n.nodeName);
    const refusal = this.o.nodePolicy.check(user, { kind: 'report', nodes: status.nodes.map((n) => n.nodeName) });
    if (refusal !== undefined) throw forbidden(refusal);
    await this.authorize(user, this.resourceAttrs('create', 'networkpolicies', { name, subresource: 'status' }));
    if (!this.o.status.update(status)) throw notFound(`networkpolicies.${API_GROUP} "${name}" not found`);
    this.sendObject(r, 201, encoding, 'NetworkPolicyStatus', status);
  }

  private async getStatus(r: Request, user: UserInfo, name: string): Promise<void> {
    const encoding = negotiate(r.req.headers.accept);
    const refusal = this.o.nodePolicy.check(user, { kind: 'read', nodes: [] });
    if (refusal !== undefined) throw forbidden(refusal);
    await this.authorize(user, this.resourceAttrs('get', 'networkpolicies', { name, subresource: 'status' }));
    const s = this.o.status.get(name);
    if (s === undefined) throw notFound(`networkpolicies.${API_GROUP} "${name}" not found`);
    this.sendObject(r, 200, encoding, 'NetworkPolicyStatus', s);
  }

  private async routeSystem(r: Request, user: UserInfo, parts: string[]): Promise<string> {
    if (parts[0] !== 'v1beta1' || (parts[1] !== undefined && parts[1] !== 'controllerinfos') || parts.length > 3) {
      throw notFound(`the server could not find the requested resource (${r.url.pathname})`);
    }
    this.requireMethod(r, 'GET');
    if (parts.length === 1) {
      await this.nonResource(r, user);
      this.sendJson(r, 200, {
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: 'system.antrea.io/v1beta1',
        resources: [
          {
            name: 'controllerinfos',
            singularName: 'controllerinfo',
            namespaced: false,
            kind: 'AntreaControllerInfo',
            verbs: ['get', 'list'],
          },
        ],
      });
      return 'discovery';
    }
    const name = parts[2];
    await this.authorize(user, {
      resource: {
        verb: name === undefined ? 'list' : 'get',
        group: 'system.antrea.io',
        version: 'v1beta1',
        resource: 'controllerinfos',
        ...(name === undefined ? {} : { name }),
      },
    });
    const info = this.o.controllerInfo?.();
    const obj =
      info === undefined
        ? undefined
        : { ...info, apiVersion: 'system.antrea.io/v1beta1', kind: 'AntreaControllerInfo' };
    if (name === undefined) {
      this.sendJson(r, 200, {
        kind: 'AntreaControllerInfoList',
        apiVersion: 'system.antrea.io/v1beta1',
        metadata: {},
        items: obj === undefined ? [] : [obj],
      });
    } else {
      if (obj === undefined || name !== 'antrea-controller')
        throw notFound(`controllerinfos.system.antrea.io "${name}" not found`);
      this.sendJson(r, 200, obj);
    }
    return 'controllerinfos';
  }

  /** `/endpoint?namespace=&pod=`: the policies applied to a Pod and the rules naming it as a peer. */
  private endpointQuery(r: Request): void {
    checkNoQuery(r.url.searchParams, ['namespace', 'pod']);
    const pod = r.url.searchParams.get('pod') ?? '';
    if (pod === '') throw new ValidationError('pod', 'a Pod name is required');
    const namespace = r.url.searchParams.get('namespace') ?? 'default';
    checkObjectName('pod', pod);
    checkObjectName('namespace', namespace);
    const g = this.o.controller.groupsOfPod(namespace, pod);
    const ref = (o: { metadata: { name: string }; sourceRef?: unknown }): Record<string, unknown> => ({
      name: o.metadata.name,
      ...(o.sourceRef === undefined ? {} : { sourceRef: o.sourceRef }),
    });
    const agNames = new Set(g.addressGroups.map((a) => a.name));
    const ingress: Record<string, unknown>[] = [];
    const egress: Record<string, unknown>[] = [];
    for (const p of g.peerPolicies) {
      p.object.rules.forEach((rule, ruleIndex) => {
        const peer = rule.direction === 'In' ? rule.from : rule.to;
        if (!peer.addressGroups.some((n) => agNames.has(n))) return;
        (rule.direction === 'In' ? ingress : egress).push({
          policyRef: ref(p.object),
          direction: rule.direction,
          ruleIndex,
        });
      });
    }
    if (g.appliedPolicies.length === 0 && ingress.length === 0 && egress.length === 0) {
      throw notFound(`no policy selects Pod ${namespace}/${pod}`);
    }
    this.sendJson(r, 200, {
      endpoints: [
        {
          namespace,
          name: pod,
          policies: g.appliedPolicies.map((p) => ref(p.object)),
          ingressSrcRules: ingress,
          egressDstRules: egress,
          appliedToGroups: g.appliedToGroups.map((x) => x.name),
          addressGroups: g.addressGroups.map((x) => x.name),
        },
      ],
    });
  }

  private realization(r: Request): void {
    const name = r.url.searchParams.get('name');
    if (name !== null) {
      const s = this.o.status.summary(checkObjectName('name', name));
      if (s === undefined) throw notFound(`networkpolicies.${API_GROUP} "${name}" not found`);
      this.sendJson(r, 200, s);
      return;
    }
    this.sendJson(r, 200, { items: this.o.status.summaries() });
  }

  private logLevel(r: Request): void {
    if (r.method === 'PUT') {
      const v = r.url.searchParams.get('level');
      if (v === null) throw new ValidationError('level', 'required');
      let level: LogLevel;
      try {
        level = parseLogLevel(v);
      } catch (err) {
        throw new ValidationError('level', errorMessage(err));
      }
      this.log.setLevel(level);
      this.log.info('log level changed', { level });
    }
    this.sendJson(r, 200, { level: this.log.level });
  }
}
