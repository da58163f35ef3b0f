/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- client-node model classes are plain data shapes; object literals are how its API is used. */
/**
 * TokenReview and SubjectAccessReview calls on @kubernetes/client-node, for whatever API server the
 * kubeconfig names: the {@link TokenReviewer} and {@link AccessReviewer} behind delegated auth
 * (antrea-controller's API and the agent API). `call` wraps each request (timeout, error mapping);
 * the default one fails with K8S_API_ERROR after `timeoutMs`.
 */
import { AuthenticationV1Api, AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type {
  AccessAttributes,
  AccessReviewer,
  AccessReviewResult,
  TokenReviewer,
  TokenReviewResult,
  UserInfo,
} from '../apiserver/auth.ts';
import { AntreaError, errorMessage } from '../util/errors.ts';

/** Runs one API request (named `what`) with the caller's timeout and error mapping. */
export type KubeCall = <T>(what: string, fn: () => Promise<T>) => Promise<T>;

/** A KubeCall that fails with a K8S_API_ERROR after `timeoutMs` or when the request fails. */
export function timedCall(timeoutMs: number): KubeCall {
  return async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new AntreaError('K8S_API_ERROR', `${what}: no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([fn(), timeout]);
    } catch (err) {
      if (err instanceof AntreaError) throw err;
      throw new AntreaError('K8S_API_ERROR', `${what}: ${errorMessage(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  };
}

export function createKubeReviewer(kc: KubeConfig, call: KubeCall = timedCall(10_000)): TokenReviewer & AccessReviewer {
  const authn = kc.makeApiClient(AuthenticationV1Api);
  const authz = kc.makeApiClient(AuthorizationV1Api);
  return {
    async reviewToken(token: string, audiences: readonly string[]): Promise<TokenReviewResult> {
      const r = await call('TokenReview', () =>
        authn.createTokenReview({
          body: {
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenReview',
            spec: { token, ...(audiences.length > 0 ? { audiences: [...audiences] } : {}) },
          },
        }),
      );
      const s = r.status;
      if (s?.authenticated !== true || s.user === undefined) {
        return { authenticated: false, ...(s?.error === undefined ? {} : { error: s.error }) };
      }
      const user: UserInfo = {
        username: s.user.username ?? '',
        ...(s.user.uid === undefined ? {} : { uid: s.user.uid }),
        groups: s.user.groups ?? [],
        extra: s.user.extra ?? {},
      };
      return { authenticated: true, user };
    },

    async reviewAccess(user: UserInfo, attrs: AccessAttributes): Promise<AccessReviewResult> {
      const spec = {
        user: user.username,
        groups: [...user.groups],
        ...(user.uid === undefined ? {} : { uid: user.uid }),
        extra: Object.fromEntries(Object.entries(user.extra).map(([k, v]) => [k, [...v]])),
        ...(attrs.resource !== undefined
          ? { resourceAttributes: { ...attrs.resource } }
          : { nonResourceAttributes: { ...attrs.nonResource } }),
      };
      const r = await call('SubjectAccessReview', () =>
        authz.createSubjectAccessReview({
          body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec },
        }),
      );
      const s = r.status;
      return {
        allowed: s?.allowed === true,
        ...(s?.denied === undefined ? {} : { denied: s.denied }),
        ...(s?.reason === undefined ? {} : { reason: s.reason }),
        ...(s?.evaluationError === undefined ? {} : { evaluationError: s.evaluationError }),
      };
    },
  };
}
