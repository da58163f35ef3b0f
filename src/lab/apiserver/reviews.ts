/**
 * Create-only, not-stored resources of the authentication and authorization groups: TokenReview,
 * SelfSubjectReview, SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectAccessReview and
 * SelfSubjectRulesReview. Each answers with the request object and its `status` filled in.
 */
import { type RbacAuthorizer, type RequestAttributes, type TokenAuthority, type UserInfo } from './auth.ts';
import { metaFieldLabels, type ResourceType, type VirtualCreate, type VirtualRequest } from './resources.ts';
import { badRequest, fieldErr, invalid } from './status.ts';
import { getPath, isObject, scalarString, type JsonObject, type KObject } from './types.ts';
import { pathSegmentName } from './validation.ts';

function virtual(
  group: string,
  resource: string,
  kind: string,
  namespaced: boolean,
  create: VirtualCreate,
): ResourceType {
  return {
    group,
    version: 'v1',
    resource,
    singular: '',
    kind,
    listKind: `${kind}List`,
    namespaced,
    shortNames: [],
    categories: [],
    verbs: ['create'],
    subresources: {},
    fieldLabels: metaFieldLabels(namespaced),
    strategy: { nameRule: pathSegmentName, statusSubresource: false, allowUnconditionalUpdate: true },
    smp: undefined,
    printer: undefined,
    virtual: create,
  };
}

function userJson(u: UserInfo): JsonObject {
  const out: JsonObject = { username: u.name, groups: [...u.groups] };
  if (u.uid !== undefined) out['uid'] = u.uid;
  if (u.extra !== undefined && Object.keys(u.extra).length > 0) {
    const extra: JsonObject = {};
    for (const [k, v] of Object.entries(u.extra)) extra[k] = [...v];
    out['extra'] = extra;
  }
  return out;
}

function respond(body: KObject, apiVersion: string, kind: string, status: JsonObject): KObject {
  const metadata = { ...body.metadata, creationTimestamp: null } as unknown as KObject['metadata'];
  return { ...body, apiVersion, kind, metadata, status };
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function specUser(spec: JsonObject): UserInfo {
  const extraIn = isObject(spec['extra']) ? spec['extra'] : {};
  const extra: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(extraIn)) extra[k] = strings(v);
  return {
    name: scalarString(spec['user']),
    groups: strings(spec['groups']),
    ...(typeof spec['uid'] === 'string' ? { uid: spec['uid'] } : {}),
    extra,
  };
}

function attributesFromSpec(
  spec: JsonObject,
  user: UserInfo,
  kind: string,
  namespaceRequired?: string,
): RequestAttributes {
  const ra = spec['resourceAttributes'];
  const nra = spec['nonResourceAttributes'];
  if (isObject(ra) === isObject(nra)) {
    throw invalid(kind, 'authorization.k8s.io', '', [
      fieldErr.invalid(
        'spec.resourceAttributes',
        isObject(ra) ? 'both' : 'none',
        'exactly one of nonResourceAttributes or resourceAttributes must be specified',
      ),
    ]);
  }
  if (isObject(ra)) {
    const ns = scalarString(ra['namespace']);
    if (namespaceRequired !== undefined && ns !== namespaceRequired) {
      throw invalid(kind, 'authorization.k8s.io', '', [
        fieldErr.invalid('spec.resourceAttributes.namespace', ns, 'must match metadata.namespace'),
      ]);
    }
    const out: RequestAttributes = {
      user,
      verb: scalarString(ra['verb']),
      resourceRequest: true,
      apiGroup: scalarString(ra['group']),
      resource: scalarString(ra['resource']),
      subresource: scalarString(ra['subresource']),
      name: scalarString(ra['name']),
      ...(ns === '' ? {} : { namespace: ns }),
    };
    return out;
  }
  const n = nra as JsonObject;
  return { user, verb: scalarString(n['verb']), resourceRequest: false, path: scalarString(n['path']) };
}

function decision(authz: RbacAuthorizer, a: RequestAttributes): JsonObject {
  const d = authz.authorize(a);
  return d.allowed ? { allowed: true, reason: d.reason } : { allowed: false };
}

/** The review resource types, answering with `tokens` and `authz`. */
export function reviewTypes(tokens: TokenAuthority, authz: RbacAuthorizer): ResourceType[] {
  const tokenReview: VirtualCreate = (body) => {
    const spec = isObject(body['spec']) ? body['spec'] : {};
    const token = spec['token'];
    if (typeof token !== 'string' || token === '') {
      throw invalid('TokenReview', 'authentication.k8s.io', '', [fieldErr.required('spec.token')]);
    }
    const r = tokens.review(token, strings(spec['audiences']));
    const status: JsonObject = r.ok
      ? { authenticated: true, user: userJson(r.user), audiences: r.audiences }
      : { user: {}, error: r.error };
    return respond(body, 'authentication.k8s.io/v1', 'TokenReview', status);
  };
  const selfSubjectReview: VirtualCreate = (body, req) =>
    respond(body, 'authentication.k8s.io/v1', 'SelfSubjectReview', { userInfo: userJson(req.user) });
  const sar =
    (kind: string, local: boolean): VirtualCreate =>
    (body, req: VirtualRequest) => {
      const spec = isObject(body['spec']) ? body['spec'] : {};
      const user = specUser(spec);
      if (user.name === '' && user.groups.length === 0) {
        throw invalid(kind, 'authorization.k8s.io', '', [
          fieldErr.invalid('spec.user', '', 'at least one of user or group must be specified'),
        ]);
      }
      const a = attributesFromSpec(spec, user, kind, local ? req.namespace : undefined);
      return respond(body, 'authorization.k8s.io/v1', kind, decision(authz, a));
    };
  const selfSar: VirtualCreate = (body, req) => {
    const spec = isObject(body['spec']) ? body['spec'] : {};
    const a = attributesFromSpec(spec, req.user, 'SelfSubjectAccessReview');
    return respond(body, 'authorization.k8s.io/v1', 'SelfSubjectAccessReview', decision(authz, a));
  };
  const selfRules: VirtualCreate = (body, req) => {
    const ns = getPath(body, ['spec', 'namespace']);
    if (typeof ns !== 'string') throw badRequest('spec.namespace: Required value: no namespace on request');
    const r = authz.rulesReview(req.user, ns);
    return respond(body, 'authorization.k8s.io/v1', 'SelfSubjectRulesReview', {
      resourceRules: r.resourceRules,
      nonResourceRules: r.nonResourceRules,
      incomplete: false,
    });
  };
  return [
    virtual('authentication.k8s.io', 'tokenreviews', 'TokenReview', false, tokenReview),
    virtual('authentication.k8s.io', 'selfsubjectreviews', 'SelfSubjectReview', false, selfSubjectReview),
    virtual(
      'authorization.k8s.io',
      'subjectaccessreviews',
      'SubjectAccessReview',
      false,
      sar('SubjectAccessReview', false),
    ),
    virtual(
      'authorization.k8s.io',
      'localsubjectaccessreviews',
      'LocalSubjectAccessReview',
      true,
      sar('LocalSubjectAccessReview', true),
    ),
    virtual('authorization.k8s.io', 'selfsubjectaccessreviews', 'SelfSubjectAccessReview', false, selfSar),
    virtual('authorization.k8s.io', 'selfsubjectrulesreviews', 'SelfSubjectRulesReview', false, selfRules),
  ];
}
