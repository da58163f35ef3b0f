/**
 * The embedded Kubernetes API server of antrea-lab. Start it with {@link startApiServer} (or run it
 * as a Runnable with {@link ApiServerRunner}); write kubeconfigs for components and users with
 * `ApiServer.writeKubeconfig`; issue ServiceAccount tokens with `ApiServer.issueToken`.
 */
export {
  ApiServerRunner,
  DEFAULT_CRD_MANIFEST,
  KUBERNETES_VERSION,
  startApiServer,
  type ApiServer,
  type ApiServerOptions,
  type KubeconfigOptions,
} from './server.ts';
export { bootstrapObjects, createApiCore, typeOf, type ApiCore, type ApiCoreOptions } from './core.ts';
export type { UserInfo } from './auth.ts';
export { ApiError, type StatusReason } from './status.ts';
export type { KObject, ObjectMeta } from './types.ts';
