/**
 * Kubernetes API access on @kubernetes/client-node: loading a kubeconfig, and the list/watch
 * transport of the informer ({@link kubeListWatch}). Lists are fetched as raw JSON, in pages, without
 * client-node's model classes (cheaper for 100k objects); watches use client-node's `Watch`.
 */
import {
  HttpMethod,
  IsomorphicFetchHttpLibrary,
  KubeConfig,
  RequestContext,
  type ResponseContext,
  Watch,
} from '@kubernetes/client-node';
import { AntreaError } from '../util/errors.ts';
import { GoneError, type ListPage, type ListWatchClient, type RawWatchEvent } from './informer.ts';
import type { KubeList, KubeObject } from './objects.ts';

/** Collection paths of the resources antrea-ts watches. */
export const ResourcePaths = {
  pods: '/api/v1/pods',
  namespaces: '/api/v1/namespaces',
  nodes: '/api/v1/nodes',
  networkPolicies: '/apis/networking.k8s.io/v1/networkpolicies',
  services: '/api/v1/services',
  endpointSlices: '/apis/discovery.k8s.io/v1/endpointslices',
} as const;

/**
 * Loads a kubeconfig: from `path` if given, else the usual places (KUBECONFIG, ~/.kube/config, the
 * in-cluster ServiceAccount).
 */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path !== undefined && path !== '') kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

const http = new IsomorphicFetchHttpLibrary();

/**
 * A ListWatchClient for the collection at `path` (for example {@link ResourcePaths}.pods). A list
 * request that takes longer than `listTimeoutMs` (default 60 s) fails, so a hung server cannot stall
 * the informer; watches time out after 30 s without data (client-node).
 */
export function kubeListWatch(kc: KubeConfig, path: string, listTimeoutMs = 60_000): ListWatchClient {
  const server = (): string => {
    const cluster = kc.getCurrentCluster();
    if (cluster === null) throw new AntreaError('K8S_CONFIG', 'the kubeconfig has no current cluster');
    return cluster.server.replace(/\/+$/, '');
  };
  return {
    async list({ limit, continue: cont, signal }): Promise<ListPage> {
      const url = new URL(server() + path);
      url.searchParams.set('limit', String(limit));
      if (cont !== undefined) url.searchParams.set('continue', cont);
      const ctx = new RequestContext(url.toString(), HttpMethod.GET);
      ctx.setHeaderParam('Accept', 'application/json');
      const timeout = AbortSignal.timeout(listTimeoutMs);
      ctx.setSignal(AbortSignal.any([signal, timeout]));
      await kc.applySecurityAuthentication(ctx);
      let res: ResponseContext;
      let text: string;
      try {
        res = await http.send(ctx).toPromise();
        text = await res.body.text();
      } catch (err) {
        if (timeout.aborted && !signal.aborted) {
          throw new AntreaError('K8S_API_TIMEOUT', `list ${path}: no answer within ${listTimeoutMs} ms`, {
            cause: err,
          });
        }
        throw err;
      }
      if (res.httpStatusCode === 410) throw new GoneError(`list ${path}: ${text.slice(0, 200)}`);
      if (res.httpStatusCode < 200 || res.httpStatusCode > 299) {
        throw new AntreaError('K8S_API_ERROR', `list ${path}: HTTP ${res.httpStatusCode}`, {
          details: { status: res.httpStatusCode, body: text.slice(0, 500) },
        });
      }
      const body = JSON.parse(text) as KubeList<KubeObject>;
      return {
        items: body.items ?? [],
        resourceVersion: body.metadata?.resourceVersion ?? '',
        ...(body.metadata?.continue === undefined || body.metadata.continue === ''
          ? {}
          : { continue: body.metadata.continue }),
      };
    },

    watch({ resourceVersion, timeoutSeconds, signal }, onEvent: RawWatchEvent): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        let controller: AbortController | undefined;
        let settled = false;
        const onAbort = (): void => controller?.abort();
        const done = (err: unknown): void => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          if (err === null || err === undefined || signal.aborted) {
            resolve();
            return;
          }
          if ((err as { statusCode?: unknown }).statusCode === 410) {
            reject(new GoneError(`watch ${path}: 410 Gone`));
            return;
          }
          reject(err instanceof Error ? err : new AntreaError('K8S_WATCH_ERROR', JSON.stringify(err)));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        new Watch(kc)
          .watch(
            path,
            { resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
            (type: string, obj: unknown) => onEvent(type, obj),
            done,
          )
          .then((c) => {
            controller = c;
            if (signal.aborted) c.abort();
          }, done);
      });
    },
  };
}
