/**
 * The embedded Kubernetes API server of antrea-lab. `startApiServer(options)` serves HTTPS with a
 * self-signed CA (or plain HTTP on loopback, for tests), writes kubeconfigs with bearer tokens,
 * installs the bootstrap objects (namespaces, RBAC, the `kubernetes` Service, Antrea's CRDs) and,
 * with `dataDir`, keeps every object across restarts. `ApiServerRunner` is the Runnable form.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdirSync, renameSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { systemClock, type Clock } from '../../common/util/clock.ts';
import { ValidationError } from '../../common/util/errors.ts';
import { nullLogger, type Logger } from '../../common/util/log.ts';
import type { Runnable } from '../../common/util/runnable.ts';
import { aborted } from '../../common/util/runnable.ts';
import { ServiceAllocator } from './allocators.ts';
import { TokenAuthority, type UserInfo } from './auth.ts';
import { bootstrapObjects, createApiCore } from './core.ts';
import { ApiHandler } from './http.ts';
import { Persistence } from './persistence.ts';
import { certificateUsable, createServingPki, type Issuer, type ServingPki } from '../../common/util/pki.ts';
import type { Registry } from './registry.ts';
import type { ResourceRegistry } from './resources.ts';
import { ApiError } from './status.ts';
import { ObjectStore } from './store.ts';
import type { JsonObject } from './types.ts';

/** The CRDs installed at start-up unless told otherwise. */
export const DEFAULT_CRD_MANIFEST = fileURLToPath(new URL('../../../build/yamls/antrea-crds.yml', import.meta.url));

export const KUBERNETES_VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.4+antrea-lab' } as const;

export interface ApiServerOptions {
  /** Address to listen on (default 127.0.0.1). */
  readonly host?: string;
  /** Port to listen on (default 0: any free port). */
  readonly port?: number;
  /** Serve plain HTTP instead of HTTPS; only allowed on a loopback address (tests). */
  readonly insecureHttp?: boolean;
  /** Keep objects, certificates, keys and the admin token here across restarts; memory only when absent. */
  readonly dataDir?: string;
  /** The address other components use to reach the server (the `kubernetes` endpoint); default `host`. */
  readonly advertiseAddress?: string;
  /** Extra DNS names or IPs for the serving certificate. */
  readonly extraSANs?: readonly string[];
  /** ClusterIP range (default 10.96.0.0/12). */
  readonly serviceCIDR?: string;
  /** When set, Nodes created without a podCIDR get the next /nodeCIDRMaskSize of it. */
  readonly clusterCIDR?: string;
  readonly nodeCIDRMaskSize?: number;
  /** YAML files whose CustomResourceDefinitions are installed (created or updated) at start. */
  readonly crdManifests?: readonly string[];
  /** The admin (system:masters) token; generated (and kept in dataDir) when absent. */
  readonly adminToken?: string;
  /** More static tokens. */
  readonly staticTokens?: readonly { readonly token: string; readonly user: UserInfo }[];
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Events kept per resource type for resuming watches (default 20000). */
  readonly watchHistorySize?: number;
  /** Range of the server-chosen watch timeout when the client gives none (default 300-600 s). */
  readonly watchTimeoutSeconds?: readonly [number, number];
  readonly bookmarkIntervalSeconds?: number;
  /** A watcher with more than this many bytes waiting is cut off (default 16 MiB). */
  readonly maxWatchBufferBytes?: number;
  /** Batch watch output for this long before writing it (default 0: once per event-loop turn). */
  readonly watchFlushDelayMs?: number;
  /** Remove Pods whose deletion grace period has passed (default true). */
  readonly completePodDeletion?: boolean;
}

export interface KubeconfigOptions {
  /** Defaults to the admin token. */
  readonly token?: string;
  readonly user?: string;
  readonly namespace?: string;
  /** Defaults to the server's URL. */
  readonly server?: string;
  readonly contextName?: string;
}

export interface ApiServer {
  /** `https://host:port` (or http://). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** PEM of the CA that signed the serving certificate (undefined over plain HTTP). */
  readonly caCertPem: string | undefined;
  readonly adminToken: string;
  readonly registry: Registry;
  readonly types: ResourceRegistry;
  readonly store: ObjectStore;
  /** A kubeconfig (YAML) for this server. */
  kubeconfig(o?: KubeconfigOptions): string;
  /** Writes a kubeconfig (mode 0600, atomically). */
  writeKubeconfig(path: string, o?: KubeconfigOptions): void;
  /**
   * Issues a ServiceAccount token (as TokenRequest would), optionally bound to a Node (it carries the
   * Node's name in the user's extra and stops working when the Node is gone); 404 ApiError when the
   * account or the Node is absent.
   */
  issueToken(
    namespace: string,
    serviceAccount: string,
    o?: { audiences?: readonly string[]; expirationSeconds?: number; boundNode?: string },
  ): string;
  addStaticToken(token: string, user: UserInfo): void;
  /** Ends every watch cleanly (clients reconnect from their last resourceVersion). */
  closeWatches(): void;
  /** Drops the watch history, as a compaction would: resuming from an older revision gets 410. */
  expireWatchHistory(): void;
  /** Resets every client connection (fault injection). */
  dropConnections(): void;
  /** Resolves when the built-in controllers have nothing queued. */
  idle(): Promise<void>;
  /** Stops serving, ends watches, persists state. Idempotent. */
  stop(): Promise<void>;
}

function loadOrCreate(dir: string | undefined, file: string, create: () => string, mode = 0o600): string {
  if (dir !== undefined) {
    const p = join(dir, file);
    if (existsSync(p)) return readFileSync(p, 'utf8');
    const v = create();
    writeAtomic(p, v, mode);
    return v;
  }
  return create();
}

function writeAtomic(path: string, data: string, mode = 0o600): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
}

/** The CA and serving certificate: reused from `dir` while valid for the names, else created (and saved). */
function loadOrCreatePki(
  dir: string | undefined,
  now: number,
  sans: { dnsNames: string[]; ips: string[] },
): ServingPki {
  const file = (n: string): string | undefined => (dir === undefined ? undefined : join(dir, n));
  const read = (n: string): string | undefined => {
    const f = file(n);
    return f !== undefined && existsSync(f) ? readFileSync(f, 'utf8') : undefined;
  };
  const caCert = read('ca.crt');
  const caKey = read('ca.key');
  const ca: Issuer | undefined =
    caCert !== undefined && caKey !== undefined ? { certPem: caCert, keyPem: caKey } : undefined;
  const cert = read('apiserver.crt');
  const key = read('apiserver.key');
  if (
    ca !== undefined &&
    cert !== undefined &&
    key !== undefined &&
    certificateUsable(cert, ca.certPem, now, sans.dnsNames, sans.ips)
  ) {
    return { ca, server: { certPem: cert, keyPem: key } };
  }
  const pki = createServingPki({ now, dnsNames: sans.dnsNames, ips: sans.ips, ...(ca === undefined ? {} : { ca }) });
  if (dir !== undefined) {
    writeAtomic(join(dir, 'ca.crt'), pki.ca.certPem, 0o644);
    writeAtomic(join(dir, 'ca.key'), pki.ca.keyPem);
    writeAtomic(join(dir, 'apiserver.crt'), pki.server.certPem, 0o644);
    writeAtomic(join(dir, 'apiserver.key'), pki.server.keyPem);
  }
  return pki;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** Starts the API server and resolves once it is listening and bootstrapped. */
export async function startApiServer(opts: ApiServerOptions = {}): Promise<ApiServer> {
  const clock = opts.clock ?? systemClock;
  const logger = (opts.logger ?? nullLogger).child({ component: 'apiserver' });
  const host = opts.host ?? '127.0.0.1';
  if (opts.insecureHttp === true && !isLoopback(host)) {
    throw new ValidationError('host', `plain HTTP is only allowed on a loopback address, got ${host}`);
  }
  if (opts.port !== undefined && (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535)) {
    throw new ValidationError('port', `must be 0-65535, got ${opts.port}`);
  }
  const advertise = opts.advertiseAddress ?? (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host);
  const dataDir = opts.dataDir;
  if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const pkiDir = dataDir === undefined ? undefined : join(dataDir, 'pki');

  // Objects.
  const persistence = dataDir === undefined ? undefined : new Persistence(join(dataDir, 'store'), logger);
  const loaded = persistence?.load();
  const store = new ObjectStore(opts.watchHistorySize === undefined ? {} : { historyCapacity: opts.watchHistorySize });
  if (loaded !== undefined) {
    for (const o of loaded.objects) store.restore(o.sk, o.key, o.obj, o.json);
    store.setRevision(loaded.rv, loaded.lastModified);
    logger.info('restored state', { objects: loaded.objects.length, resourceVersion: loaded.rv });
  }

  // Credentials.
  const serviceCIDR = opts.serviceCIDR ?? '10.96.0.0/12';
  const sans = {
    dnsNames: [
      'localhost',
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      'kubernetes.default.svc.cluster.local',
      ...(opts.extraSANs ?? []).filter((s) => isIP(s) === 0),
    ],
    ips: [
      ...new Set([
        '127.0.0.1',
        '::1',
        new ServiceAllocator(serviceCIDR).firstIP,
        ...(isIP(advertise) !== 0 ? [advertise] : []),
        ...(isIP(host) !== 0 && host !== '0.0.0.0' && host !== '::' ? [host] : []),
        ...(opts.extraSANs ?? []).filter((s) => isIP(s) !== 0),
      ]),
    ],
  };
  const pki = opts.insecureHttp === true ? undefined : loadOrCreatePki(pkiDir, clock.now(), sans);
  const adminToken =
    opts.adminToken ?? loadOrCreate(pkiDir, 'admin.token', () => randomBytes(24).toString('base64url')).trim();
  const core = createApiCore({
    clock,
    logger,
    store,
    serviceCIDR,
    saKeyPem: loadOrCreate(pkiDir, 'sa.key', () => TokenAuthority.generateKeyPem()),
    adminToken,
    ...(opts.clusterCIDR === undefined ? {} : { clusterCIDR: opts.clusterCIDR }),
    ...(opts.nodeCIDRMaskSize === undefined ? {} : { nodeCIDRMaskSize: opts.nodeCIDRMaskSize }),
    ...(opts.staticTokens === undefined ? {} : { staticTokens: opts.staticTokens }),
    ...(opts.watchTimeoutSeconds === undefined ? {} : { watchTimeoutSeconds: opts.watchTimeoutSeconds }),
    ...(opts.bookmarkIntervalSeconds === undefined ? {} : { bookmarkIntervalSeconds: opts.bookmarkIntervalSeconds }),
    ...(opts.maxWatchBufferBytes === undefined ? {} : { maxWatchBufferBytes: opts.maxWatchBufferBytes }),
    ...(opts.watchFlushDelayMs === undefined ? {} : { watchFlushDelayMs: opts.watchFlushDelayMs }),
    ...(opts.completePodDeletion === undefined ? {} : { completePodDeletion: opts.completePodDeletion }),
    ...(pki === undefined ? {} : { caPem: pki.ca.certPem }),
  });
  const { registry, types, tokens, authz, controllers } = core;
  persistence?.attach(store);
  controllers.start();

  // HTTP(S).
  let port = opts.port ?? 0;
  const handler = new ApiHandler({
    registry,
    types,
    tokens,
    authz,
    clock,
    logger,
    version: {
      ...KUBERNETES_VERSION,
      gitCommit: '0000000000000000000000000000000000000000',
      gitTreeState: 'clean',
      buildDate: '2026-01-01T00:00:00Z',
      goVersion: `node${process.version}`,
      compiler: 'node',
      platform: `linux/${process.arch === 'x64' ? 'amd64' : process.arch}`,
    },
    serverAddress: () => `${urlHost(advertise)}:${port}`,
  });
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => handler.handle(req, res);
  const server: Server =
    pki === undefined
      ? createHttpServer(onRequest)
      : createHttpsServer({ key: pki.server.keyPem, cert: pki.server.certPem }, onRequest);
  server.keepAliveTimeout = 65_000;
  const sockets = new Set<Socket>();
  server.on(pki === undefined ? 'connection' : 'secureConnection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  port = typeof addr === 'object' && addr !== null ? addr.port : port;
  const url = `${pki === undefined ? 'http' : 'https'}://${urlHost(host === '0.0.0.0' || host === '::' ? advertise : host)}:${port}`;

  // Bootstrap objects.
  try {
    bootstrapObjects(core, {
      advertiseAddress: advertise,
      port,
      crdFiles: opts.crdManifests ?? [DEFAULT_CRD_MANIFEST],
      logger,
    });
    await controllers.idle();
  } catch (err) {
    server.close();
    server.closeAllConnections();
    controllers.stop();
    persistence?.close();
    throw err;
  }
  logger.info('API server listening', { url, dataDir: dataDir ?? null, resourceVersion: store.rv });

  let stopped: Promise<void> | undefined;
  const api: ApiServer = {
    url,
    host,
    port,
    caCertPem: pki?.ca.certPem,
    adminToken,
    registry,
    types,
    store,
    kubeconfig: (o = {}) => kubeconfigYaml(o.server ?? url, pki?.ca.certPem, o.token ?? adminToken, o),
    writeKubeconfig: (path, o = {}) =>
      writeAtomic(path, kubeconfigYaml(o.server ?? url, pki?.ca.certPem, o.token ?? adminToken, o)),
    issueToken: (namespace, name, o = {}) => {
      const sa = store.get('/serviceaccounts', `${namespace}/${name}`);
      if (sa === undefined)
        throw new ApiError(404, 'NotFound', `serviceaccounts "${name}" not found`, { name, kind: 'serviceaccounts' });
      const { boundNode, ...rest } = o;
      if (boundNode === undefined) return tokens.issue({ namespace, name, uid: sa.obj.metadata.uid ?? '' }, rest).token;
      const node = store.get('/nodes', boundNode);
      if (node === undefined)
        throw new ApiError(404, 'NotFound', `nodes "${boundNode}" not found`, { name: boundNode, kind: 'nodes' });
      return tokens.issue(
        { namespace, name, uid: sa.obj.metadata.uid ?? '' },
        { ...rest, boundNode: { name: boundNode, uid: node.obj.metadata.uid ?? '' } },
      ).token;
    },
    addStaticToken: (token, user) => tokens.addStaticToken(token, user),
    closeWatches: () => {
      for (const ts of store.allTypes()) for (const w of [...ts.watchers]) w.close('server');
    },
    expireWatchHistory: () => {
      for (const ts of store.allTypes()) ts.expireHistory(store.rv);
    },
    dropConnections: () => {
      for (const ts of store.allTypes()) for (const w of [...ts.watchers]) w.detach();
      for (const s of sockets) s.destroy();
    },
    idle: () => controllers.idle(),
    stop: () => {
      stopped ??= (async () => {
        for (const ts of store.allTypes()) for (const w of [...ts.watchers]) w.close('server');
        controllers.stop();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          setImmediate(() => {
            server.closeIdleConnections();
            for (const s of sockets) s.end();
          });
          const t = setTimeout(() => {
            for (const s of sockets) s.destroy();
          }, 2000);
          t.unref();
        });
        persistence?.close();
        logger.info('API server stopped', { url });
      })();
      return stopped;
    },
  };
  return api;
}

function kubeconfigYaml(server: string, caPem: string | undefined, token: string, o: KubeconfigOptions): string {
  const name = o.contextName ?? 'antrea-lab';
  const user = o.user ?? 'admin';
  const cluster: JsonObject = { server };
  if (caPem !== undefined) cluster['certificate-authority-data'] = Buffer.from(caPem).toString('base64');
  else cluster['insecure-skip-tls-verify'] = true;
  const context: JsonObject = { cluster: name, user };
  if (o.namespace !== undefined) context['namespace'] = o.namespace;
  return toYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster }],
    contexts: [{ name, context }],
    'current-context': name,
    users: [{ name: user, user: { token } }],
    preferences: {},
  });
}

/** The API server as a Runnable: serves until the signal aborts. */
export class ApiServerRunner implements Runnable {
  private readonly opts: ApiServerOptions;
  private readonly onReady: ((s: ApiServer) => void) | undefined;

  constructor(opts: ApiServerOptions, onReady?: (s: ApiServer) => void) {
    this.opts = opts;
    this.onReady = onReady;
  }

  async run(signal: AbortSignal): Promise<void> {
    const s = await startApiServer(this.opts);
    try {
      this.onReady?.(s);
      await aborted(signal);
    } finally {
      await s.stop();
    }
  }
}
