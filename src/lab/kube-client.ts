/**
 * A small JSON client for the Kubernetes API, used by the lab's cluster components (kubelet
 * stand-ins, scheduler, EndpointSlice controller) and by the CLI (demo, probes, conformance). It
 * speaks plain REST with a bearer token over HTTPS (keep-alive), from a kubeconfig the lab wrote.
 * Watching goes through the shared Informer (src/common/k8s); this client does the reads and writes.
 */
import { Agent, request } from 'node:https';
import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { AntreaError } from '../common/util/errors.ts';
import type { KubeObject } from '../common/k8s/objects.ts';

export type KubeApiErrorCode = 'K8S_API_ERROR' | 'K8S_UNREACHABLE';

/** A non-2xx answer: `status` is the HTTP code, `reason` the Status reason (NotFound, AlreadyExists...). */
export class KubeApiError extends AntreaError<KubeApiErrorCode> {
  readonly status: number;
  readonly reason: string;

  constructor(code: KubeApiErrorCode, message: string, status: number, reason: string, cause?: unknown) {
    super(code, message, { details: { status, reason }, cause });
    this.status = status;
    this.reason = reason;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 404;
}
export function isConflict(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 409;
}

export interface KubeList<T> {
  readonly metadata?: { readonly resourceVersion?: string };
  readonly items: T[];
}

export type PatchKind = 'merge' | 'strategic' | 'json';
const PATCH_TYPES: Record<PatchKind, string> = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
};

/** Where a resource lives: `/api/v1/...` for the core group, `/apis/G/V/...` otherwise. */
export interface ResourceRef {
  readonly apiVersion: string;
  readonly resource: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly subresource?: string;
}

export function resourcePath(r: ResourceRef): string {
  const base = r.apiVersion.includes('/') ? `/apis/${r.apiVersion}` : `/api/${r.apiVersion}`;
  let p = base;
  if (r.namespace !== undefined) p += `/namespaces/${encodeURIComponent(r.namespace)}`;
  p += `/${r.resource}`;
  if (r.name !== undefined) p += `/${encodeURIComponent(r.name)}`;
  if (r.subresource !== undefined) p += `/${r.subresource}`;
  return p;
}

export interface RequestOptions {
  readonly body?: unknown;
  readonly contentType?: string;
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export class KubeClient {
  readonly server: string;
  private readonly token: string | undefined;
  private readonly agent: Agent | HttpAgent;
  private readonly secure: boolean;

  constructor(o: { server: string; token?: string; caPem?: string }) {
    this.server = o.server.replace(/\/+$/, '');
    this.token = o.token;
    this.secure = this.server.startsWith('https:');
    this.agent = this.secure
      ? new Agent({ keepAlive: true, maxSockets: 16, ...(o.caPem === undefined ? {} : { ca: o.caPem }) })
      : new HttpAgent({ keepAlive: true, maxSockets: 16 });
  }

  /** A client for the current context of a kubeconfig file (token users only, as the lab writes them). */
  static fromKubeconfig(path: string): KubeClient {
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    const cluster = kc.getCurrentCluster();
    if (cluster === null) throw new AntreaError('K8S_CONFIG', `${path}: no current cluster`);
    const user = kc.getCurrentUser();
    const ca = cluster.caData === undefined ? undefined : Buffer.from(cluster.caData, 'base64').toString('utf8');
    return new KubeClient({
      server: cluster.server,
      ...(user?.token === undefined ? {} : { token: user.token }),
      ...(ca === undefined ? {} : { caPem: ca }),
    });
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  async request<T>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const body = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.token !== undefined) headers['Authorization'] = `Bearer ${this.token}`;
    if (body !== undefined) {
      headers['Content-Type'] = o.contentType ?? 'application/json';
      headers['Content-Length'] = String(body.length);
    }
    const send = this.secure ? request : httpRequest;
    const text = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = send(
        url,
        {
          method,
          headers,
          agent: this.agent,
          timeout: o.timeoutMs ?? 30_000,
          ...(o.signal === undefined ? {} : { signal: o.signal }),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${o.timeoutMs ?? 30_000}ms`)));
      req.on('error', (err) =>
        reject(new KubeApiError('K8S_UNREACHABLE', `${method} ${path}: ${err.message}`, 0, 'Unreachable', err)),
      );
      req.end(body);
    });
    if (text.status < 200 || text.status > 299) {
      let reason = 'Unknown';
      let message = text.text.slice(0, 300);
      try {
        const st = JSON.parse(text.text) as { reason?: string; message?: string };
        reason = st.reason ?? reason;
        message = st.message ?? message;
      } catch {
        // not a Status
      }
      throw new KubeApiError(
        'K8S_API_ERROR',
        `${method} ${path}: ${text.status} ${reason}: ${message}`,
        text.status,
        reason,
      );
    }
    return (text.text === '' ? undefined : JSON.parse(text.text)) as T;
  }

  get<T>(r: ResourceRef): Promise<T> {
    return this.request<T>('GET', resourcePath(r));
  }

  /** The object, or undefined when it does not exist. */
  async find<T>(r: ResourceRef): Promise<T | undefined> {
    try {
      return await this.get<T>(r);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  list<T>(r: ResourceRef, o: { labelSelector?: string; fieldSelector?: string } = {}): Promise<KubeList<T>> {
    return this.request<KubeList<T>>('GET', resourcePath(r), { query: o });
  }

  /** POST to the collection of `r` (its name is ignored), or to its subresource (e.g. pods/NAME/binding). */
  create<T>(r: ResourceRef, obj: unknown): Promise<T> {
    const { name, ...collection } = r;
    return this.request<T>('POST', resourcePath(r.subresource === undefined || name === undefined ? collection : r), {
      body: obj,
    });
  }

  replace<T>(r: ResourceRef, obj: unknown): Promise<T> {
    return this.request<T>('PUT', resourcePath(r), { body: obj });
  }

  patch<T>(r: ResourceRef, patch: unknown, kind: PatchKind = 'merge'): Promise<T> {
    return this.request<T>('PATCH', resourcePath(r), { body: patch, contentType: PATCH_TYPES[kind] });
  }

  /** Deletes; resolves to false when the object did not exist. */
  async delete(
    r: ResourceRef,
    o: { gracePeriodSeconds?: number; uid?: string; propagationPolicy?: string } = {},
  ): Promise<boolean> {
    const body: Record<string, unknown> = { apiVersion: 'v1', kind: 'DeleteOptions' };
    if (o.gracePeriodSeconds !== undefined) body['gracePeriodSeconds'] = o.gracePeriodSeconds;
    if (o.uid !== undefined) body['preconditions'] = { uid: o.uid };
    if (o.propagationPolicy !== undefined) body['propagationPolicy'] = o.propagationPolicy;
    try {
      await this.request('DELETE', resourcePath(r), { body });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Creates the object, or replaces it (keeping its resourceVersion) when it exists. */
  async createOrReplace<T>(r: ResourceRef, obj: KubeObject): Promise<T> {
    try {
      return await this.create<T>(r, obj);
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 409 && err.reason === 'AlreadyExists')) throw err;
    }
    for (let attempt = 0; ; attempt++) {
      const cur = await this.get<KubeObject>(r);
      const next = { ...obj, metadata: { ...obj.metadata, resourceVersion: cur.metadata?.resourceVersion } };
      try {
        return await this.replace<T>(r, next);
      } catch (err) {
        if (!isConflict(err) || attempt >= 5) throw err;
      }
    }
  }
}
