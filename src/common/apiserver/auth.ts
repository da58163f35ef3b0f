/**
 * Delegated authentication and authorization (as Antrea's controller and agent API servers do
 * through the Kubernetes API): bearer tokens are checked with a TokenReview, permissions with a
 * SubjectAccessReview, and both answers are cached briefly (10 s by default, like
 * k8s.io/apiserver's delegating options). Concurrent requests with the same token or question share
 * one review. Shared by antrea-controller (port 10349) and the agent API (port 10350).
 */
import { createHash } from 'node:crypto';
import { type Clock, systemClock } from '../util/clock.ts';
import { errorMessage } from '../util/errors.ts';

export interface UserInfo {
  readonly username: string;
  readonly uid?: string;
  readonly groups: readonly string[];
  readonly extra: Readonly<Record<string, readonly string[]>>;
}

export interface TokenReviewResult {
  readonly authenticated: boolean;
  readonly user?: UserInfo;
  readonly error?: string;
}

/** The TokenReview call (authentication.k8s.io/v1). */
export interface TokenReviewer {
  reviewToken(token: string, audiences: readonly string[]): Promise<TokenReviewResult>;
}

export interface ResourceAttributes {
  readonly verb: string;
  readonly group: string;
  readonly version: string;
  readonly resource: string;
  readonly subresource?: string;
  readonly name?: string;
  readonly namespace?: string;
}

export interface NonResourceAttributes {
  readonly verb: string;
  readonly path: string;
}

export type AccessAttributes =
  | { readonly resource: ResourceAttributes; readonly nonResource?: undefined }
  | { readonly nonResource: NonResourceAttributes; readonly resource?: undefined };

export interface AccessReviewResult {
  readonly allowed: boolean;
  readonly denied?: boolean;
  readonly reason?: string;
  readonly evaluationError?: string;
}

/** The SubjectAccessReview call (authorization.k8s.io/v1). */
export interface AccessReviewer {
  reviewAccess(user: UserInfo, attrs: AccessAttributes): Promise<AccessReviewResult>;
}

/** The user extra that carries the Node a token is bound to. */
export const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

/** The Node a user's token is bound to, if any. */
export function boundNode(user: UserInfo): string | undefined {
  const v = user.extra[NODE_NAME_EXTRA];
  return v !== undefined && v.length === 1 && v[0] !== '' ? v[0] : undefined;
}

interface CacheEntry<T> {
  readonly value: Promise<T>;
  expires: number;
}

/** A TTL cache of promises with a bound on its size (oldest entries go first). */
class TtlCache<T> {
  private readonly entries = new Map<string, CacheEntry<T>>();
  private readonly clock: Clock;
  private readonly max: number;

  constructor(clock: Clock, max: number) {
    this.clock = clock;
    this.max = max;
  }

  /** The cached value of `key`, or `load()`'s, kept for `ttl(value)` ms once it settles. */
  get(key: string, load: () => Promise<T>, ttl: (v: T) => number): Promise<T> {
    const now = this.clock.monotonic();
    const e = this.entries.get(key);
    if (e !== undefined && e.expires > now) return e.value;
    if (e !== undefined) this.entries.delete(key);
    const value = load();
    const entry: CacheEntry<T> = { value, expires: Infinity };
    this.entries.set(key, entry);
    value.then(
      (v) => (entry.expires = this.clock.monotonic() + ttl(v)),
      () => this.entries.get(key) === entry && this.entries.delete(key),
    );
    if (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    return value;
  }

  get size(): number {
    return this.entries.size;
  }
}

export interface CacheOptions {
  readonly clock?: Clock;
  /** How long a positive answer is kept (default 10 s). */
  readonly successTtlMs?: number;
  /** How long a negative answer is kept (default 10 s). */
  readonly failureTtlMs?: number;
  /** Most entries kept (default 10,000). */
  readonly maxEntries?: number;
}

export interface Authenticated {
  readonly ok: true;
  readonly user: UserInfo;
}
export interface NotAuthenticated {
  readonly ok: false;
  readonly reason: string;
}

export class TokenAuthenticator {
  private readonly reviewer: TokenReviewer;
  private readonly audiences: readonly string[];
  private readonly cache: TtlCache<Authenticated | NotAuthenticated>;
  private readonly okTtl: number;
  private readonly failTtl: number;
  /** TokenReviews sent (for tests and metrics). */
  reviews = 0;

  constructor(reviewer: TokenReviewer, opts: CacheOptions & { readonly audiences?: readonly string[] } = {}) {
    this.reviewer = reviewer;
    this.audiences = opts.audiences ?? [];
    this.cache = new TtlCache(opts.clock ?? systemClock, opts.maxEntries ?? 10_000);
    this.okTtl = opts.successTtlMs ?? 10_000;
    this.failTtl = opts.failureTtlMs ?? 10_000;
  }

  /** Checks a bearer token. Never rejects: a failed review is "not authenticated" (not cached). */
  async authenticate(token: string): Promise<Authenticated | NotAuthenticated> {
    if (token === '') return { ok: false, reason: 'no bearer token' };
    const key = createHash('sha256').update(token).digest('base64');
    try {
      return await this.cache.get(
        key,
        async () => {
          this.reviews++;
          const r = await this.reviewer.reviewToken(token, this.audiences);
          if (!r.authenticated || r.user === undefined) {
            return { ok: false, reason: r.error === undefined || r.error === '' ? 'invalid bearer token' : r.error };
          }
          return { ok: true, user: r.user };
        },
        (v) => (v.ok ? this.okTtl : this.failTtl),
      );
    } catch (err) {
      return { ok: false, reason: `token review failed: ${errorMessage(err)}` };
    }
  }
}

export interface Decision {
  readonly allowed: boolean;
  readonly reason: string;
}

/** What an API server needs to authenticate a bearer token (TokenAuthenticator is one). */
export interface Authn {
  authenticate(token: string): Promise<Authenticated | NotAuthenticated>;
}

/** What an API server needs to authorize a request (DelegatingAuthorizer is one). */
export interface Authz {
  authorize(user: UserInfo, attrs: AccessAttributes): Promise<Decision>;
}

export class DelegatingAuthorizer {
  private readonly reviewer: AccessReviewer;
  private readonly cache: TtlCache<Decision>;
  private readonly okTtl: number;
  private readonly failTtl: number;
  reviews = 0;

  constructor(reviewer: AccessReviewer, opts: CacheOptions = {}) {
    this.reviewer = reviewer;
    this.cache = new TtlCache(opts.clock ?? systemClock, opts.maxEntries ?? 10_000);
    this.okTtl = opts.successTtlMs ?? 10_000;
    this.failTtl = opts.failureTtlMs ?? 10_000;
  }

  /** Asks whether `user` may do `attrs`. `system:masters` is always allowed. A failed review denies (uncached). */
  async authorize(user: UserInfo, attrs: AccessAttributes): Promise<Decision> {
    if (user.groups.includes('system:masters')) return { allowed: true, reason: 'system:masters' };
    const key = JSON.stringify([user.username, user.uid ?? '', [...user.groups].sort(), sortedExtra(user), attrs]);
    try {
      return await this.cache.get(
        key,
        async () => {
          this.reviews++;
          const r = await this.reviewer.reviewAccess(user, attrs);
          return { allowed: r.allowed && r.denied !== true, reason: r.reason ?? r.evaluationError ?? '' };
        },
        (d) => (d.allowed ? this.okTtl : this.failTtl),
      );
    } catch (err) {
      return { allowed: false, reason: `access review failed: ${errorMessage(err)}` };
    }
  }
}

function sortedExtra(user: UserInfo): [string, readonly string[]][] {
  return Object.keys(user.extra)
    .sort()
    .map((k) => [k, user.extra[k] ?? []]);
}
