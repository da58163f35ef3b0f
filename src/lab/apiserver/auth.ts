/**
 * Authentication and authorization of the API server.
 * - Static bearer tokens (the admin token of the kubeconfig, and any the lab adds).
 * - ServiceAccount tokens issued by TokenRequest (`serviceaccounts/<name>/token`): ES256 JWTs signed
 *   by the server, bound to the ServiceAccount's uid (and optionally a Pod), with audiences and
 *   expiry; TokenReview verifies them and reports the user, groups and extra as kube-apiserver does.
 * - RBAC over Roles, ClusterRoles (with aggregation) and their bindings; `system:masters` may do
 *   anything. SubjectAccessReview and its local/self variants ask the same authorizer.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import type { Clock } from '../../common/util/clock.ts';
import type { ObjectStore } from './store.ts';
import { getPath, isObject, rfc3339, scalarString, type JsonObject, type KObject } from './types.ts';

export interface UserInfo {
  readonly name: string;
  readonly uid?: string;
  readonly groups: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

export const ANONYMOUS: UserInfo = { name: 'system:anonymous', groups: ['system:unauthenticated'] };

export interface TokenIssueOptions {
  readonly audiences?: readonly string[];
  readonly expirationSeconds?: number;
  readonly boundPod?: { readonly name: string; readonly uid: string; readonly nodeName?: string };
  /** A token bound to a Node object (Kubernetes 1.31+ ServiceAccountTokenNodeBinding); not with boundPod. */
  readonly boundNode?: { readonly name: string; readonly uid: string };
}

export type TokenCheck = { ok: true; user: UserInfo; audiences: string[] } | { ok: false; error: string };

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

/** Signs and verifies ServiceAccount tokens; also holds static tokens. */
export class TokenAuthority {
  readonly issuer: string;
  readonly audiences: readonly string[];
  private readonly key: KeyObject;
  private readonly pub: KeyObject;
  private readonly kid: string;
  private readonly clock: Clock;
  private readonly store: ObjectStore;
  private readonly statics = new Map<string, UserInfo>();

  constructor(opts: {
    keyPem: string;
    issuer: string;
    audiences: readonly string[];
    clock: Clock;
    store: ObjectStore;
  }) {
    this.key = createPrivateKey(opts.keyPem);
    this.pub = createPublicKey(this.key);
    this.kid = b64url(
      createHash('sha256')
        .update(this.pub.export({ type: 'spki', format: 'der' }))
        .digest(),
    );
    this.issuer = opts.issuer;
    this.audiences = opts.audiences;
    this.clock = opts.clock;
    this.store = opts.store;
  }

  /** A new PEM-encoded P-256 signing key. */
  static generateKeyPem(): string {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  }

  /** Registers a static token (idempotent: the same token maps to the latest user). */
  addStaticToken(token: string, user: UserInfo): void {
    this.statics.set(token, user);
  }

  /** Issues a token for a ServiceAccount. The caller checked that the account (and pod) exist. */
  issue(
    sa: { namespace: string; name: string; uid: string },
    o: TokenIssueOptions = {},
  ): { token: string; expiration: number } {
    const now = Math.floor(this.clock.now() / 1000);
    const exp = now + Math.max(600, o.expirationSeconds ?? 3600);
    const k8s: JsonObject = { namespace: sa.namespace, serviceaccount: { name: sa.name, uid: sa.uid } };
    if (o.boundPod !== undefined) {
      k8s['pod'] = { name: o.boundPod.name, uid: o.boundPod.uid };
      if (o.boundPod.nodeName !== undefined) k8s['node'] = { name: o.boundPod.nodeName };
    } else if (o.boundNode !== undefined) {
      k8s['node'] = { name: o.boundNode.name, uid: o.boundNode.uid };
    }
    const payload = {
      aud: o.audiences !== undefined && o.audiences.length > 0 ? [...o.audiences] : [...this.audiences],
      exp,
      iat: now,
      nbf: now,
      iss: this.issuer,
      jti: randomUUID(),
      'kubernetes.io': k8s,
      sub: `system:serviceaccount:${sa.namespace}:${sa.name}`,
    };
    const header = { alg: 'ES256', kid: this.kid };
    const data = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
    const sig = sign('sha256', Buffer.from(data), { key: this.key, dsaEncoding: 'ieee-p1363' });
    return { token: `${data}.${b64url(sig)}`, expiration: exp * 1000 };
  }

  /**
   * Checks a bearer token for the given audiences (the server's own when empty): static tokens, then
   * ServiceAccount JWTs (signature, expiry, issuer, audience, and that the account and bound pod
   * still exist with the same uid).
   */
  review(token: string, audiences: readonly string[] = []): TokenCheck {
    const wanted = audiences.length > 0 ? audiences : this.audiences;
    const st = this.statics.get(token);
    if (st !== undefined) {
      return audiences.length === 0 || audiences.some((a) => this.audiences.includes(a))
        ? { ok: true, user: st, audiences: wanted.filter((a) => this.audiences.includes(a)) }
        : { ok: false, error: 'token audiences are invalid for the target audiences' };
    }
    const parts = token.split('.');
    if (parts.length !== 3) return { ok: false, error: 'invalid bearer token' };
    const [h, p, s] = parts as [string, string, string];
    let header: unknown;
    let payload: unknown;
    try {
      header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
      payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
    } catch {
      return { ok: false, error: 'invalid bearer token' };
    }
    if (!isObject(header) || header['alg'] !== 'ES256' || !isObject(payload))
      return { ok: false, error: 'invalid bearer token' };
    const okSig = verify(
      'sha256',
      Buffer.from(`${h}.${p}`),
      { key: this.pub, dsaEncoding: 'ieee-p1363' },
      Buffer.from(s, 'base64url'),
    );
    if (!okSig) return { ok: false, error: 'invalid bearer token, square/go-jose: error in cryptographic primitive' };
    const now = Math.floor(this.clock.now() / 1000);
    if (payload['iss'] !== this.issuer)
      return { ok: false, error: 'invalid bearer token, token issuer is not trusted' };
    if (typeof payload['exp'] !== 'number' || payload['exp'] < now)
      return { ok: false, error: 'invalid bearer token, service account token has expired' };
    if (typeof payload['nbf'] === 'number' && payload['nbf'] > now + 60)
      return { ok: false, error: 'invalid bearer token, token not valid yet' };
    const aud = Array.isArray(payload['aud']) ? payload['aud'].map(scalarString) : [scalarString(payload['aud'])];
    const matched = wanted.filter((a) => aud.includes(a));
    if (matched.length === 0) return { ok: false, error: 'token audiences are invalid for the target audiences' };
    const k8s = payload['kubernetes.io'];
    if (!isObject(k8s)) return { ok: false, error: 'invalid bearer token' };
    const ns = scalarString(k8s['namespace']);
    const saName = scalarString(getPath(k8s, ['serviceaccount', 'name']));
    const saUid = scalarString(getPath(k8s, ['serviceaccount', 'uid']));
    const sa = this.store.get('/serviceaccounts', `${ns}/${saName}`);
    if (sa === undefined) return { ok: false, error: `invalid bearer token, serviceaccounts "${saName}" not found` };
    if (sa.obj.metadata.uid !== saUid)
      return { ok: false, error: 'invalid bearer token, service account UID does not match' };
    const extra: Record<string, string[]> = {
      'authentication.kubernetes.io/credential-id': [`JTI=${scalarString(payload['jti'])}`],
    };
    const pod = k8s['pod'];
    if (isObject(pod)) {
      const podName = scalarString(pod['name']);
      const live = this.store.get('/pods', `${ns}/${podName}`);
      if (live === undefined) return { ok: false, error: `invalid bearer token, pods "${podName}" not found` };
      if (live.obj.metadata.uid !== pod['uid'])
        return { ok: false, error: 'invalid bearer token, the Pod UID does not match' };
      if (live.obj.metadata.deletionTimestamp !== undefined)
        return { ok: false, error: 'invalid bearer token, pod is being deleted' };
      extra['authentication.kubernetes.io/pod-name'] = [podName];
      extra['authentication.kubernetes.io/pod-uid'] = [scalarString(pod['uid'])];
    }
    const node = k8s['node'];
    if (isObject(node)) {
      const nodeName = scalarString(node['name']);
      // A Node-bound token (not one bound to a Pod on the Node) dies with its Node.
      if (!isObject(pod) && node['uid'] !== undefined) {
        const live = this.store.get('/nodes', nodeName);
        if (live === undefined) return { ok: false, error: `invalid bearer token, nodes "${nodeName}" not found` };
        if (live.obj.metadata.uid !== node['uid'])
          return { ok: false, error: 'invalid bearer token, the Node UID does not match' };
        extra['authentication.kubernetes.io/node-uid'] = [scalarString(node['uid'])];
      }
      extra['authentication.kubernetes.io/node-name'] = [nodeName];
    }
    return {
      ok: true,
      audiences: matched,
      user: {
        name: `system:serviceaccount:${ns}:${saName}`,
        uid: saUid,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
        extra,
      },
    };
  }

  /** The user of an API request's bearer token, or undefined when the token is not valid. */
  authenticate(token: string): UserInfo | undefined {
    const r = this.review(token);
    if (!r.ok) return undefined;
    const groups = r.user.groups.includes('system:authenticated')
      ? r.user.groups
      : [...r.user.groups, 'system:authenticated'];
    return { ...r.user, groups };
  }
}

// ---------------------------------------------------------------------------------------------
// RBAC

export interface RequestAttributes {
  readonly user: UserInfo;
  readonly verb: string;
  /** Resource requests. */
  readonly resourceRequest: boolean;
  readonly apiGroup?: string;
  readonly resource?: string;
  readonly subresource?: string;
  readonly namespace?: string;
  readonly name?: string;
  /** Non-resource requests. */
  readonly path?: string;
}

export interface Decision {
  readonly allowed: boolean;
  readonly reason: string;
}

interface Rule {
  readonly verbs: readonly string[];
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly resourceNames: readonly string[];
  readonly nonResourceURLs: readonly string[];
}

function strs(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function rulesOf(role: KObject): Rule[] {
  const rules = Array.isArray(role['rules']) ? role['rules'].filter(isObject) : [];
  return rules.map((r) => ({
    verbs: strs(r['verbs']),
    apiGroups: strs(r['apiGroups']),
    resources: strs(r['resources']),
    resourceNames: strs(r['resourceNames']),
    nonResourceURLs: strs(r['nonResourceURLs']),
  }));
}

/** Evaluates a metav1.LabelSelector object (matchLabels and matchExpressions) against labels. */
export function matchesLabelSelectorObject(sel: unknown, labels: Readonly<Record<string, string>>): boolean {
  if (!isObject(sel)) return false;
  const ml = isObject(sel['matchLabels']) ? sel['matchLabels'] : {};
  for (const [k, v] of Object.entries(ml)) if (labels[k] !== v) return false;
  const exprs = Array.isArray(sel['matchExpressions']) ? sel['matchExpressions'].filter(isObject) : [];
  for (const e of exprs) {
    const key = scalarString(e['key']);
    const has = Object.hasOwn(labels, key);
    const vals = strs(e['values']);
    switch (scalarString(e['operator'])) {
      case 'In':
        if (!has || !vals.includes(labels[key] ?? '')) return false;
        break;
      case 'NotIn':
        if (has && vals.includes(labels[key] ?? '')) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

function ruleAllows(r: Rule, a: RequestAttributes): boolean {
  if (!r.verbs.includes('*') && !r.verbs.includes(a.verb)) return false;
  if (!a.resourceRequest) {
    const path = a.path ?? '';
    return r.nonResourceURLs.some(
      (u) => u === '*' || u === path || (u.endsWith('*') && path.startsWith(u.slice(0, -1))),
    );
  }
  if (r.nonResourceURLs.length > 0 && r.resources.length === 0) return false;
  const group = a.apiGroup ?? '';
  if (!r.apiGroups.includes('*') && !r.apiGroups.includes(group)) return false;
  const res = a.resource ?? '';
  const full = a.subresource !== undefined && a.subresource !== '' ? `${res}/${a.subresource}` : res;
  const resOk = r.resources.some(
    (x) =>
      x === '*' ||
      x === full ||
      (a.subresource !== undefined && a.subresource !== '' && (x === `${res}/*` || x === `*/${a.subresource}`)),
  );
  if (!resOk) return false;
  if (r.resourceNames.length > 0) return a.name !== undefined && a.name !== '' && r.resourceNames.includes(a.name);
  return true;
}

function subjectMatches(s: JsonObject, user: UserInfo, bindingNs: string | undefined): boolean {
  const kind = s['kind'];
  const name = scalarString(s['name']);
  if (kind === 'User') return name === user.name;
  if (kind === 'Group') return user.groups.includes(name);
  if (kind === 'ServiceAccount') {
    const ns = scalarString(s['namespace']) || (bindingNs ?? '');
    return user.name === `system:serviceaccount:${ns}:${name}`;
  }
  return false;
}

export class RbacAuthorizer {
  private readonly store: ObjectStore;

  constructor(store: ObjectStore) {
    this.store = store;
  }

  private clusterRoleRules(name: string): Rule[] {
    const role = this.store.get('rbac.authorization.k8s.io/clusterroles', name)?.obj;
    if (role === undefined) return [];
    const agg = role['aggregationRule'];
    if (!isObject(agg)) return rulesOf(role);
    // Aggregated roles carry the union of every ClusterRole their selectors pick (and their own rules).
    const selectors = Array.isArray(agg['clusterRoleSelectors']) ? agg['clusterRoleSelectors'] : [];
    const out = rulesOf(role);
    for (const e of this.store.type('rbac.authorization.k8s.io/clusterroles').objects.values()) {
      if (e.obj.metadata.name === name) continue;
      if (selectors.some((sel) => matchesLabelSelectorObject(sel, e.obj.metadata.labels ?? {})))
        out.push(...rulesOf(e.obj));
    }
    return out;
  }

  /** The rules that apply to a user in a namespace (cluster-wide when namespace is undefined). */
  rulesFor(user: UserInfo, namespace: string | undefined): Rule[] {
    const out: Rule[] = [];
    for (const e of this.store.type('rbac.authorization.k8s.io/clusterrolebindings').objects.values()) {
      const subjects = Array.isArray(e.obj['subjects']) ? e.obj['subjects'].filter(isObject) : [];
      if (!subjects.some((s) => subjectMatches(s, user, undefined))) continue;
      out.push(...this.clusterRoleRules(scalarString(getPath(e.obj, ['roleRef', 'name']))));
    }
    if (namespace !== undefined && namespace !== '') {
      const prefix = `${namespace}/`;
      const ts = this.store.type('rbac.authorization.k8s.io/rolebindings');
      for (const [key, e] of ts.objects) {
        if (!key.startsWith(prefix)) continue;
        const subjects = Array.isArray(e.obj['subjects']) ? e.obj['subjects'].filter(isObject) : [];
        if (!subjects.some((s) => subjectMatches(s, user, namespace))) continue;
        const kind = getPath(e.obj, ['roleRef', 'kind']);
        const roleName = scalarString(getPath(e.obj, ['roleRef', 'name']));
        if (kind === 'ClusterRole')
          out.push(...this.clusterRoleRules(roleName).filter((r) => r.nonResourceURLs.length === 0));
        else {
          const role = this.store.get('rbac.authorization.k8s.io/roles', `${namespace}/${roleName}`)?.obj;
          if (role !== undefined) out.push(...rulesOf(role));
        }
      }
    }
    return out;
  }

  authorize(a: RequestAttributes): Decision {
    if (a.user.groups.includes('system:masters')) return { allowed: true, reason: '' };
    const rules = this.rulesFor(a.user, a.resourceRequest ? a.namespace : undefined);
    if (rules.some((r) => ruleAllows(r, a))) return { allowed: true, reason: 'RBAC: allowed by a matching role' };
    return { allowed: false, reason: '' };
  }

  /** Rules as SelfSubjectRulesReview reports them. */
  rulesReview(user: UserInfo, namespace: string): { resourceRules: JsonObject[]; nonResourceRules: JsonObject[] } {
    if (user.groups.includes('system:masters')) {
      return {
        resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }],
        nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }],
      };
    }
    const rules = this.rulesFor(user, namespace);
    return {
      resourceRules: rules
        .filter((r) => r.resources.length > 0)
        .map((r) => ({
          verbs: [...r.verbs],
          apiGroups: [...r.apiGroups],
          resources: [...r.resources],
          ...(r.resourceNames.length > 0 ? { resourceNames: [...r.resourceNames] } : {}),
        })),
      nonResourceRules: rules
        .filter((r) => r.nonResourceURLs.length > 0)
        .map((r) => ({ verbs: [...r.verbs], nonResourceURLs: [...r.nonResourceURLs] })),
    };
  }
}

/** The 403 text kube-apiserver uses for a denied request. */
export function forbiddenMessage(a: RequestAttributes): string {
  const who = `User "${a.user.name}"`;
  if (!a.resourceRequest) return `${who} cannot ${a.verb} path "${a.path ?? ''}"`;
  const res =
    a.subresource !== undefined && a.subresource !== '' ? `${a.resource ?? ''}/${a.subresource}` : (a.resource ?? '');
  const scope =
    a.namespace !== undefined && a.namespace !== '' ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  return `${who} cannot ${a.verb} resource "${res}" in API group "${a.apiGroup ?? ''}" ${scope}`;
}

/** A time in the API's format (used by TokenRequest). */
export function expirationTimestamp(ms: number): string {
  return rfc3339(ms);
}
