/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- client-node model classes are plain data shapes; object literals are how its API is used. */
/**
 * What antrea-controller asks of the Kubernetes API besides its informers: TokenReviews and
 * SubjectAccessReviews (delegated auth), the Secret holding its self-signed certificate, the
 * `antrea-ca` ConfigMap and the AntreaControllerInfo heartbeat. {@link ControllerKubeClient} is the
 * small interface the components use (unit tests fake it); {@link createControllerKubeClient}
 * implements it on @kubernetes/client-node for whatever API server the kubeconfig names.
 *
 * Errors are {@link KubeApiError}s carrying the HTTP status (404 and 409 are what callers branch on);
 * every call times out after `timeoutMs` so a hung API server cannot stall the controller.
 */
import { ApiException, CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { AntreaError, errorMessage } from '../common/util/errors.ts';
import type { AccessReviewer, TokenReviewer } from '../common/apiserver/auth.ts';
import { createKubeReviewer } from '../common/k8s/reviews.ts';

export class KubeApiError extends AntreaError<'K8S_API_ERROR'> {
  readonly status: number;

  constructor(message: string, status: number, options: { cause?: unknown } = {}) {
    super('K8S_API_ERROR', message, { ...options, details: { status } });
    this.status = status;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 404;
}

export function isConflict(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 409;
}

export interface KubeMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly resourceVersion?: string;
  readonly labels?: Readonly<Record<string, string>>;
}

export interface KubeSecret {
  readonly metadata: KubeMeta;
  readonly type?: string;
  /** Values base64-encoded, as in the API. */
  readonly data?: Readonly<Record<string, string>>;
}

export interface KubeConfigMap {
  readonly metadata: KubeMeta;
  readonly data?: Readonly<Record<string, string>>;
}

/** A cluster-scoped custom object (AntreaControllerInfo). */
export interface KubeCustomObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: KubeMeta;
  readonly [field: string]: unknown;
}

export interface CustomResource {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
}

/** Namespaced objects by kind; `get` resolves undefined when absent, `update` needs a resourceVersion. */
export interface ObjectClient<T> {
  get(namespace: string, name: string): Promise<T | undefined>;
  create(obj: T): Promise<T>;
  update(obj: T): Promise<T>;
}

export interface ClusterObjectClient<T> {
  get(name: string): Promise<T | undefined>;
  create(obj: T): Promise<T>;
  update(obj: T): Promise<T>;
}

export interface ControllerKubeClient extends TokenReviewer, AccessReviewer {
  readonly secrets: ObjectClient<KubeSecret>;
  readonly configMaps: ObjectClient<KubeConfigMap>;
  customObjects(resource: CustomResource): ClusterObjectClient<KubeCustomObject>;
}

function toKubeError(what: string, err: unknown): KubeApiError {
  if (err instanceof KubeApiError) return err;
  if (err instanceof ApiException) {
    const body = typeof err.body === 'string' ? err.body : JSON.stringify(err.body);
    let message = body;
    try {
      const parsed = JSON.parse(body) as { message?: unknown };
      if (typeof parsed.message === 'string') message = parsed.message;
    } catch {
      // Not JSON: keep the body.
    }
    return new KubeApiError(`${what}: HTTP ${err.code}: ${message.slice(0, 300)}`, err.code, { cause: err });
  }
  return new KubeApiError(`${what}: ${errorMessage(err)}`, 0, { cause: err });
}

async function call<T>(what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KubeApiError(`${what}: no answer within ${timeoutMs} ms`, 0)), timeoutMs);
  });
  try {
    return await Promise.race([fn(), timeout]);
  } catch (err) {
    throw toKubeError(what, err);
  } finally {
    clearTimeout(timer);
  }
}

async function orUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** The plain JSON of a client-node model object (its classes carry Dates and undefined fields). */
function plain(v: unknown): never {
  return JSON.parse(JSON.stringify(v)) as never;
}

export interface ControllerKubeClientOptions {
  /** Per-call timeout (default 10 s). */
  readonly timeoutMs?: number;
}

export function createControllerKubeClient(
  kc: KubeConfig,
  opts: ControllerKubeClientOptions = {},
): ControllerKubeClient {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const core = kc.makeApiClient(CoreV1Api);
  const reviewer = createKubeReviewer(kc, (what, fn) => call(what, timeoutMs, fn));
  const custom = kc.makeApiClient(CustomObjectsApi);
  const ns = (m: KubeMeta): string => m.namespace ?? '';

  return {
    ...reviewer,

    secrets: {
      get: (namespace, name) =>
        orUndefined(
          call(`get Secret ${namespace}/${name}`, timeoutMs, async () =>
            plain(await core.readNamespacedSecret({ name, namespace })),
          ),
        ),
      create: (s) =>
        call(`create Secret ${ns(s.metadata)}/${s.metadata.name}`, timeoutMs, async () =>
          plain(await core.createNamespacedSecret({ namespace: ns(s.metadata), body: { ...s } })),
        ),
      update: (s) =>
        call(`update Secret ${ns(s.metadata)}/${s.metadata.name}`, timeoutMs, async () =>
          plain(
            await core.replaceNamespacedSecret({ name: s.metadata.name, namespace: ns(s.metadata), body: { ...s } }),
          ),
        ),
    },

    configMaps: {
      get: (namespace, name) =>
        orUndefined(
          call(`get ConfigMap ${namespace}/${name}`, timeoutMs, async () =>
            plain(await core.readNamespacedConfigMap({ name, namespace })),
          ),
        ),
      create: (c) =>
        call(`create ConfigMap ${ns(c.metadata)}/${c.metadata.name}`, timeoutMs, async () =>
          plain(await core.createNamespacedConfigMap({ namespace: ns(c.metadata), body: { ...c } })),
        ),
      update: (c) =>
        call(`update ConfigMap ${ns(c.metadata)}/${c.metadata.name}`, timeoutMs, async () =>
          plain(
            await core.replaceNamespacedConfigMap({ name: c.metadata.name, namespace: ns(c.metadata), body: { ...c } }),
          ),
        ),
    },

    customObjects(res: CustomResource): ClusterObjectClient<KubeCustomObject> {
      const what = (verb: string, name: string): string => `${verb} ${res.plural}.${res.group} ${name}`;
      return {
        get: (name) =>
          orUndefined(
            call(what('get', name), timeoutMs, async () =>
              plain(await custom.getClusterCustomObject({ ...res, name })),
            ),
          ),
        create: (o) =>
          call(what('create', o.metadata.name), timeoutMs, async () =>
            plain(await custom.createClusterCustomObject({ ...res, body: o })),
          ),
        update: (o) =>
          call(what('update', o.metadata.name), timeoutMs, async () =>
            plain(await custom.replaceClusterCustomObject({ ...res, name: o.metadata.name, body: o })),
          ),
      };
    },
  };
}
