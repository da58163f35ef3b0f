/**
 * The HTTP face of the API server: routes Kubernetes API paths to the registry, authenticates bearer
 * tokens (401 otherwise), authorizes with RBAC (403), negotiates JSON, Table and
 * PartialObjectMetadata output, streams watches (headers flushed at once, one JSON event per line)
 * and renders every failure as a Status object. Non-resource paths: discovery, /version, /healthz,
 * /livez, /readyz and the OpenAPI v2 stub kubectl needs for a validating apply.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseYaml } from 'yaml';
import type { Clock } from '../../common/util/clock.ts';
import type { Logger } from '../../common/util/log.ts';
import {
  ANONYMOUS,
  forbiddenMessage,
  type RbacAuthorizer,
  type RequestAttributes,
  type TokenAuthority,
  type UserInfo,
} from './auth.ts';
import { apiGroup, apiGroupList, apiResourceList, apiVersions } from './discovery.ts';
import { toTable } from './printers.ts';
import { decodeK8sProtobuf } from './protobuf.ts';
import {
  PATCH_CONTENT_TYPES,
  type DeleteOptions,
  type FieldValidation,
  type ListOptions,
  type Registry,
  type WatchOptions,
} from './registry.ts';
import { apiVersionOf, type ResourceRegistry, type ResourceType } from './resources.ts';
import {
  ApiError,
  badRequest,
  conflict,
  fieldErr,
  invalid,
  methodNotAllowed,
  notAcceptable,
  notFound,
  pathNotFound,
  toApiError,
  tooLarge,
  unauthorized,
  unsupportedMediaType,
  type Qualified,
} from './status.ts';
import type { StoredEntry } from './store.ts';
import { clone, getPath, isObject, rfc3339, scalarString, type JsonObject, type KObject } from './types.ts';
import type { WatchEncoder } from './watch.ts';

/** 0a 03 32 2e 30: an OpenAPI v2 document saying only `swagger: "2.0"` (enough for kubectl). */
const OPENAPI_V2_STUB = Buffer.from([0x0a, 0x03, 0x32, 0x2e, 0x30]);
const OPENAPI_V2_PROTO = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf';
const PUBLIC_PATHS = new Set(['/healthz', '/livez', '/readyz', '/version']);

export interface HttpDeps {
  readonly registry: Registry;
  readonly types: ResourceRegistry;
  readonly tokens: TokenAuthority;
  readonly authz: RbacAuthorizer;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly version: JsonObject;
  /** host:port clients use (discovery's serverAddressByClientCIDRs). */
  readonly serverAddress: () => string;
  readonly maxBodyBytes?: number;
}

type Output = { mode: 'json' } | { mode: 'table'; version: string } | { mode: 'partial' };

interface ResourceRoute {
  readonly t: ResourceType;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly subresource: string | undefined;
  readonly watchPath: boolean;
}

function q(t: ResourceType): Qualified {
  return { group: t.group, resource: t.resource };
}

function parseAccept(accept: string | undefined): Output | undefined {
  if (accept === undefined || accept.trim() === '') return { mode: 'json' };
  for (const range of accept.split(',')) {
    const [type = '', ...rawParams] = range.split(';').map((s) => s.trim());
    const params = new Map(rawParams.map((p) => p.split('=').map((s) => s.trim()) as [string, string]));
    const as = params.get('as');
    if (as !== undefined) {
      if (as === 'Table' && params.get('g') === 'meta.k8s.io' && ['v1', 'v1beta1'].includes(params.get('v') ?? '')) {
        return { mode: 'table', version: params.get('v') ?? 'v1' };
      }
      if ((as === 'PartialObjectMetadata' || as === 'PartialObjectMetadataList') && params.get('g') === 'meta.k8s.io') {
        return { mode: 'partial' };
      }
      continue;
    }
    if (['application/json', '*/*', 'application/*'].includes(type.toLowerCase())) return { mode: 'json' };
  }
  return undefined;
}

function intParam(u: URLSearchParams, name: string): number | undefined {
  const v = u.get(name);
  if (v === null || v === '') return undefined;
  if (!/^-?\d+$/.test(v)) throw badRequest(`invalid ${name} parameter: ${JSON.stringify(v)}`);
  return Number(v);
}

function boolParam(u: URLSearchParams, name: string): boolean | undefined {
  const v = u.get(name);
  if (v === null || v === '') return undefined;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw badRequest(`invalid ${name} parameter: ${JSON.stringify(v)}`);
}

function listOptions(u: URLSearchParams): ListOptions {
  const o: { -readonly [K in keyof ListOptions]: ListOptions[K] } = {};
  const ls = u.get('labelSelector');
  if (ls !== null) o.labelSelector = ls;
  const fs = u.get('fieldSelector');
  if (fs !== null) o.fieldSelector = fs;
  const limit = intParam(u, 'limit');
  if (limit !== undefined) o.limit = limit;
  const c = u.get('continue');
  if (c !== null && c !== '') o.continue = c;
  const rv = u.get('resourceVersion');
  if (rv !== null) o.resourceVersion = rv;
  const m = u.get('resourceVersionMatch');
  if (m !== null && m !== '') o.resourceVersionMatch = m;
  return o;
}

export class ApiHandler {
  private readonly d: HttpDeps;
  private requests = 0;

  constructor(deps: HttpDeps) {
    this.d = deps;
  }

  /** Number of requests served (for logs and tests). */
  get served(): number {
    return this.requests;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests++;
    this.dispatch(req, res).catch((err: unknown) => {
      const e = toApiError(err);
      if (e.httpCode >= 500) this.d.logger.warn('request failed', { method: req.method, url: req.url, err: e });
      this.sendError(res, e);
    });
  }

  private sendError(res: ServerResponse, e: ApiError): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    this.send(res, e.httpCode, JSON.stringify(e.toStatus()));
  }

  private send(
    res: ServerResponse,
    code: number,
    body: string | Buffer,
    contentType = 'application/json',
    warnings: readonly string[] = [],
  ): void {
    const headers: Record<string, string | string[]> = {
      'Content-Type': contentType,
      'Cache-Control': 'no-cache, private',
      'Content-Length': String(Buffer.byteLength(body)),
    };
    if (warnings.length > 0) headers['Warning'] = warnings.map((w) => `299 - ${JSON.stringify(w)}`);
    res.writeHead(code, headers);
    res.end(body);
  }

  private async readBody(req: IncomingMessage): Promise<Buffer> {
    const max = this.d.maxBodyBytes ?? 3 * 1024 * 1024;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      // Past the limit the rest is read and dropped (so the client gets the 413), up to a bound.
      if (size <= max) chunks.push(chunk);
      else if (size > 4 * max) {
        req.destroy();
        break;
      }
    }
    if (size > max) throw tooLarge(`Request entity too large: limit is ${max}`);
    return Buffer.concat(chunks);
  }

  private parseBody(buf: Buffer, contentType: string | undefined, patch: boolean): unknown {
    const ct = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    if (!patch) {
      if (ct === 'application/vnd.kubernetes.protobuf') return buf.length === 0 ? undefined : decodeK8sProtobuf(buf);
      if (ct !== '' && ct !== 'application/json' && ct !== 'application/yaml' && ct !== '*/*') {
        throw unsupportedMediaType(ct, ['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf']);
      }
    }
    const text = buf.toString('utf8');
    if (text.trim() === '') return undefined;
    if (ct === 'application/yaml' || ct === 'application/apply-patch+yaml') {
      try {
        return parseYaml(text) as unknown;
      } catch (err) {
        throw badRequest(`error converting YAML to JSON: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw badRequest(
        `couldn't get version/kind; json parse error: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  private authenticate(req: IncomingMessage, path: string): UserInfo {
    const h = req.headers.authorization;
    if (h === undefined || h === '') {
      if (PUBLIC_PATHS.has(path) || /^\/(healthz|livez|readyz)\//.test(path)) return ANONYMOUS;
      throw unauthorized();
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    const user = m === null ? undefined : this.d.tokens.authenticate(m[1] ?? '');
    if (user === undefined) throw unauthorized();
    return user;
  }

  /**
   * Impersonation headers (`kubectl --as/--as-group`): the caller must be allowed to `impersonate` the
   * user (or ServiceAccount), each group, the uid and each extra key; the request then runs as them.
   */
  private impersonate(req: IncomingMessage, caller: UserInfo): UserInfo {
    const h = req.headers;
    const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
    const list = (v: string | string[] | undefined): string[] =>
      (Array.isArray(v) ? v : v === undefined ? [] : [v])
        .flatMap((x) => x.split(','))
        .map((x) => x.trim())
        .filter((x) => x !== '');
    const name = one(h['impersonate-user']);
    const groups = list(h['impersonate-group']);
    const extraKeys = Object.keys(h).filter((k) => k.startsWith('impersonate-extra-'));
    if (name === undefined) {
      if (groups.length > 0 || extraKeys.length > 0)
        throw badRequest('requested impersonation of groups or extras without a user');
      return caller;
    }
    const check = (resource: string, objName: string, group = '', namespace?: string): void =>
      this.authorize(
        {
          user: caller,
          verb: 'impersonate',
          resourceRequest: true,
          apiGroup: group,
          resource,
          name: objName,
          ...(namespace === undefined ? {} : { namespace }),
        },
        { group, resource },
      );
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(name);
    if (sa !== null) check('serviceaccounts', sa[2] ?? '', '', sa[1]);
    else check('users', name);
    for (const g of groups) check('groups', g);
    const uid = one(h['impersonate-uid']);
    if (uid !== undefined) check('uids', uid, 'authentication.k8s.io');
    const extra: Record<string, string[]> = {};
    for (const k of extraKeys) {
      const key = decodeURIComponent(k.slice('impersonate-extra-'.length));
      extra[key] = list(h[k]);
      for (const v of extra[key]) check(`userextras/${key}`, v, 'authentication.k8s.io');
    }
    const base = sa === null ? [] : ['system:serviceaccounts', `system:serviceaccounts:${sa[1] ?? ''}`];
    return {
      name,
      groups: [...new Set([...base, ...groups, ...(name === 'system:anonymous' ? [] : ['system:authenticated'])])],
      ...(uid === undefined ? {} : { uid }),
      ...(extraKeys.length === 0 ? {} : { extra }),
    };
  }

  private authorize(a: RequestAttributes, q2: Qualified | undefined): void {
    const d = this.d.authz.authorize(a);
    if (d.allowed) return;
    const msg = forbiddenMessage(a);
    if (!a.resourceRequest || q2 === undefined) throw new ApiError(403, 'Forbidden', `forbidden: ${msg}`, {});
    const what =
      a.name !== undefined && a.name !== ''
        ? `${q2.group === '' ? q2.resource : `${q2.resource}.${q2.group}`} "${a.name}"`
        : q2.group === ''
          ? q2.resource
          : `${q2.resource}.${q2.group}`;
    throw new ApiError(403, 'Forbidden', `${what} is forbidden: ${msg}`, {
      name: a.name ?? '',
      group: q2.group,
      kind: q2.resource,
    });
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://apiserver');
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
    const segs = path
      .split('/')
      .filter((s) => s !== '')
      .map((s) => decodeURIComponent(s));
    const method = (req.method ?? 'GET').toUpperCase();
    const user = this.impersonate(req, this.authenticate(req, path));
    const route = this.route(segs);
    if (route === undefined) {
      const verb = method === 'HEAD' ? 'get' : method.toLowerCase();
      this.authorize({ user, verb, resourceRequest: false, path }, undefined);
      this.nonResource(req, res, segs, path, method);
      return;
    }
    const watch = route.watchPath || boolParam(url.searchParams, 'watch') === true;
    const verb = this.verbOf(method, route, watch);
    this.authorize(
      {
        user,
        verb,
        resourceRequest: true,
        apiGroup: route.t.group,
        resource: route.t.resource,
        ...(route.subresource === undefined ? {} : { subresource: route.subresource }),
        ...(route.namespace === undefined ? {} : { namespace: route.namespace }),
        ...(route.name === undefined ? {} : { name: route.name }),
      },
      q(route.t),
    );
    await this.resource(req, res, url.searchParams, route, verb, user);
  }

  private verbOf(method: string, r: ResourceRoute, watch: boolean): string {
    switch (method) {
      case 'GET':
      case 'HEAD':
        return r.name === undefined ? (watch ? 'watch' : 'list') : watch ? 'watch' : 'get';
      case 'POST':
        return 'create';
      case 'PUT':
        return 'update';
      case 'PATCH':
        return 'patch';
      case 'DELETE':
        return r.name === undefined ? 'deletecollection' : 'delete';
      default:
        throw methodNotAllowed('');
    }
  }

  /** Maps path segments to a resource, or undefined for non-resource paths. Unknown resources are 404. */
  private route(segs: string[]): ResourceRoute | undefined {
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === 'api' && segs.length >= 3) {
      group = '';
      version = segs[1] ?? '';
      rest = segs.slice(2);
    } else if (segs[0] === 'apis' && segs.length >= 4) {
      group = segs[1] ?? '';
      version = segs[2] ?? '';
      rest = segs.slice(3);
    } else return undefined;
    let watchPath = false;
    if (rest[0] === 'watch') {
      watchPath = true;
      rest = rest.slice(1);
    }
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      const t = this.d.types.get(group, version, rest[2] ?? '');
      if (t !== undefined && t.namespaced) {
        namespace = rest[1];
        rest = rest.slice(2);
      }
    }
    const t = this.d.types.get(group, version, rest[0] ?? '');
    if (t === undefined || rest.length > 3) throw pathNotFound();
    if (namespace === undefined && t.namespaced && rest.length > 1) throw pathNotFound();
    return { t, namespace, name: rest[1], subresource: rest[2], watchPath };
  }

  private nonResource(req: IncomingMessage, res: ServerResponse, segs: string[], path: string, method: string): void {
    if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('');
    const json = (o: JsonObject): void => this.send(res, 200, JSON.stringify(o));
    const head = segs[0] ?? '';
    if (segs.length === 0) {
      const paths = [
        '/api',
        '/api/v1',
        '/apis',
        ...this.d.types
          .groups()
          .flatMap((g) => [`/apis/${g.group}`, ...g.versions.map((v) => `/apis/${g.group}/${v}`)]),
        '/healthz',
        '/livez',
        '/openapi/v2',
        '/readyz',
        '/version',
      ];
      json({ paths: paths.sort() });
      return;
    }
    if (head === 'healthz' || head === 'livez' || head === 'readyz') {
      this.send(res, 200, 'ok', 'text/plain; charset=utf-8');
      return;
    }
    if (path === '/version') return json(this.d.version);
    if (path === '/openapi/v2') {
      const accept = req.headers.accept ?? '';
      if (accept.includes('protobuf') || accept === '' || accept.includes('*/*')) {
        this.send(res, 200, OPENAPI_V2_STUB, OPENAPI_V2_PROTO);
      } else {
        json({
          swagger: '2.0',
          info: { title: 'Kubernetes', version: scalarString(this.d.version['gitVersion']) },
          paths: {},
          definitions: {},
        });
      }
      return;
    }
    if (path === '/api') return json(apiVersions(this.d.serverAddress()));
    if (path === '/api/v1') {
      const doc = apiResourceList(this.d.types, '', 'v1');
      if (doc !== undefined) return json(doc);
    }
    if (path === '/apis') return json(apiGroupList(this.d.types));
    if (head === 'apis' && segs.length === 2) {
      const doc = apiGroup(this.d.types, segs[1] ?? '');
      if (doc !== undefined) return json(doc);
    }
    if (head === 'apis' && segs.length === 3) {
      const doc = apiResourceList(this.d.types, segs[1] ?? '', segs[2] ?? '');
      if (doc !== undefined) return json(doc);
    }
    if (head === 'api' || head === 'apis') throw pathNotFound();
    this.send(res, 404, '404 page not found\n', 'text/plain; charset=utf-8');
  }

  private writeOptions(
    u: URLSearchParams,
    subresource: string | undefined,
    warnings: string[],
  ): {
    dryRun: boolean;
    fieldValidation?: FieldValidation;
    subresource?: string;
    warnings: string[];
  } {
    const dry = u.getAll('dryRun');
    if (dry.some((d) => d !== 'All'))
      throw badRequest(`Invalid dryRun value: ${dry.join(',')}; supported values: "All"`);
    const fv = u.get('fieldValidation');
    if (fv !== null && fv !== '' && !['Ignore', 'Warn', 'Strict'].includes(fv)) {
      throw badRequest(`fieldValidation must be one of "Ignore", "Warn", or "Strict", got ${JSON.stringify(fv)}`);
    }
    return {
      dryRun: dry.length > 0,
      ...(fv !== null && fv !== '' ? { fieldValidation: fv as FieldValidation } : {}),
      ...(subresource === undefined ? {} : { subresource }),
      warnings,
    };
  }

  private async resource(
    req: IncomingMessage,
    res: ServerResponse,
    u: URLSearchParams,
    r: ResourceRoute,
    verb: string,
    user: UserInfo,
  ): Promise<void> {
    const { t, namespace, name, subresource } = r;
    const reg = this.d.registry;
    if (subresource !== undefined) {
      const verbs = t.subresources[subresource];
      if (verbs === undefined) throw pathNotFound();
      if (!verbs.includes(verb as never)) throw methodNotAllowed('');
    } else if (!t.verbs.includes(verb as never)) {
      throw methodNotAllowed('');
    }
    if ((verb === 'update' || verb === 'patch') && name === undefined) throw methodNotAllowed('');
    if (verb === 'create' && name !== undefined && subresource === undefined) throw methodNotAllowed('');
    const warnings: string[] = [];
    const now = this.d.clock.now();
    switch (verb) {
      case 'get': {
        const out = this.output(req);
        const e = reg.get(t, namespace, name ?? '');
        this.sendObjects(res, 200, t, out, e, now, u);
        return;
      }
      case 'list': {
        const out = this.output(req);
        const lr = await reg.list(t, namespace, listOptions(u));
        const meta: JsonObject = { resourceVersion: String(lr.resourceVersion) };
        if (lr.continue !== undefined) meta['continue'] = lr.continue;
        if (lr.remainingItemCount !== undefined) meta['remainingItemCount'] = lr.remainingItemCount;
        if (out.mode === 'table') {
          const table = toTable(
            t,
            lr.items.map((e) => e.obj),
            now,
            includeObject(u),
            meta,
          );
          table['apiVersion'] = `meta.k8s.io/${out.version}`;
          this.send(res, 200, JSON.stringify(table));
        } else if (out.mode === 'partial') {
          const items = lr.items.map((e) => ({
            kind: 'PartialObjectMetadata',
            apiVersion: 'meta.k8s.io/v1',
            metadata: e.obj.metadata,
          }));
          this.send(
            res,
            200,
            JSON.stringify({ kind: 'PartialObjectMetadataList', apiVersion: 'meta.k8s.io/v1', metadata: meta, items }),
          );
        } else {
          const head = `{"kind":${JSON.stringify(t.listKind)},"apiVersion":${JSON.stringify(apiVersionOf(t))},"metadata":${JSON.stringify(meta)},"items":[`;
          this.send(res, 200, `${head}${lr.items.map((e) => e.json).join(',')}]}`);
        }
        return;
      }
      case 'watch':
        await this.watch(req, res, u, r);
        return;
      case 'create': {
        const body = this.parseBody(await this.readBody(req), req.headers['content-type'], false);
        if (t.virtual !== undefined) {
          if (!isObject(body)) throw badRequest('request body must be an object');
          const obj = { ...body, metadata: isObject(body['metadata']) ? body['metadata'] : {} } as KObject;
          this.send(res, 201, JSON.stringify(t.virtual(obj, { namespace, user })));
          return;
        }
        if (subresource === 'token') {
          this.send(res, 201, JSON.stringify(this.tokenRequest(namespace ?? '', name ?? '', body)));
          return;
        }
        if (subresource === 'binding') {
          this.bindPod(namespace ?? '', name ?? '', body);
          this.send(
            res,
            201,
            JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 }),
          );
          return;
        }
        const e = reg.create(t, namespace, body, this.writeOptions(u, undefined, warnings));
        this.send(res, 201, e.json, 'application/json', warnings);
        return;
      }
      case 'update': {
        const body = this.parseBody(await this.readBody(req), req.headers['content-type'], false);
        const { entry, created } = reg.update(
          t,
          namespace,
          name ?? '',
          body,
          this.writeOptions(u, subresource, warnings),
        );
        this.send(res, created ? 201 : 200, entry.json, 'application/json', warnings);
        return;
      }
      case 'patch': {
        const ct = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
        const type = PATCH_CONTENT_TYPES[ct];
        if (type === undefined) {
          throw unsupportedMediaType(
            ct,
            Object.keys(PATCH_CONTENT_TYPES).filter((k) => t.smp !== undefined || !k.includes('strategic')),
          );
        }
        const body = this.parseBody(await this.readBody(req), ct, true);
        const e = reg.patch(t, namespace, name ?? '', type, body, this.writeOptions(u, subresource, warnings));
        this.send(res, 200, e.json, 'application/json', warnings);
        return;
      }
      case 'delete': {
        const d = this.deleteOptions(u, this.parseBody(await this.readBody(req), req.headers['content-type'], false));
        const { entry } = reg.delete(t, namespace, name ?? '', d);
        this.send(res, 200, entry.json);
        return;
      }
      case 'deletecollection': {
        const d = this.deleteOptions(u, this.parseBody(await this.readBody(req), req.headers['content-type'], false));
        const items = await reg.deleteCollection(t, namespace, listOptions(u), d);
        const head = `{"kind":${JSON.stringify(t.listKind)},"apiVersion":${JSON.stringify(apiVersionOf(t))},"metadata":{},"items":[`;
        this.send(res, 200, `${head}${items.map((e) => e.json).join(',')}]}`);
        return;
      }
      default:
        throw methodNotAllowed('');
    }
  }

  private output(req: IncomingMessage): Output {
    const out = parseAccept(req.headers.accept);
    if (out === undefined)
      throw notAcceptable(['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf']);
    return out;
  }

  private sendObjects(
    res: ServerResponse,
    code: number,
    t: ResourceType,
    out: Output,
    e: StoredEntry,
    now: number,
    u: URLSearchParams,
  ): void {
    if (out.mode === 'table') {
      const table = toTable(t, [e.obj], now, includeObject(u), {
        resourceVersion: e.obj.metadata.resourceVersion ?? '',
      });
      table['apiVersion'] = `meta.k8s.io/${out.version}`;
      this.send(res, code, JSON.stringify(table));
    } else if (out.mode === 'partial') {
      this.send(
        res,
        code,
        JSON.stringify({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: e.obj.metadata }),
      );
    } else this.send(res, code, e.json);
  }

  private deleteOptions(u: URLSearchParams, body: unknown): DeleteOptions {
    const b = isObject(body) ? body : {};
    const out: { -readonly [K in keyof DeleteOptions]: DeleteOptions[K] } = {};
    const grace =
      intParam(u, 'gracePeriodSeconds') ??
      (typeof b['gracePeriodSeconds'] === 'number' ? b['gracePeriodSeconds'] : undefined);
    if (grace !== undefined) out.gracePeriodSeconds = grace;
    const pp =
      u.get('propagationPolicy') ?? (typeof b['propagationPolicy'] === 'string' ? b['propagationPolicy'] : undefined);
    const orphan =
      boolParam(u, 'orphanDependents') ??
      (typeof b['orphanDependents'] === 'boolean' ? b['orphanDependents'] : undefined);
    if (pp !== undefined) {
      if (pp !== 'Background' && pp !== 'Foreground' && pp !== 'Orphan') {
        throw invalid('DeleteOptions', 'meta.k8s.io', '', [
          fieldErr.notSupported('propagationPolicy', pp, ['Foreground', 'Background', 'Orphan']),
        ]);
      }
      out.propagationPolicy = pp;
    } else if (orphan === true) out.propagationPolicy = 'Orphan';
    const pre = b['preconditions'];
    if (isObject(pre)) {
      out.preconditions = {
        ...(typeof pre['uid'] === 'string' ? { uid: pre['uid'] } : {}),
        ...(typeof pre['resourceVersion'] === 'string' ? { resourceVersion: pre['resourceVersion'] } : {}),
      };
    }
    const dry = [...u.getAll('dryRun'), ...(Array.isArray(b['dryRun']) ? b['dryRun'].map(scalarString) : [])];
    if (dry.length > 0) out.dryRun = true;
    return out;
  }

  private async watch(req: IncomingMessage, res: ServerResponse, u: URLSearchParams, r: ResourceRoute): Promise<void> {
    const out = this.output(req);
    const lo = listOptions(u);
    const o: WatchOptions = {
      ...lo,
      ...(r.name !== undefined
        ? {
            fieldSelector: [lo.fieldSelector, `metadata.name=${r.name}`]
              .filter((x) => x !== undefined && x !== '')
              .join(','),
          }
        : {}),
      ...(boolParam(u, 'allowWatchBookmarks') === undefined
        ? {}
        : { allowWatchBookmarks: boolParam(u, 'allowWatchBookmarks') === true }),
      ...(intParam(u, 'timeoutSeconds') === undefined ? {} : { timeoutSeconds: intParam(u, 'timeoutSeconds') ?? 0 }),
      ...(boolParam(u, 'sendInitialEvents') === undefined
        ? {}
        : { sendInitialEvents: boolParam(u, 'sendInitialEvents') === true }),
    };
    const t = r.t;
    const now = (): number => this.d.clock.now();
    let encoder: WatchEncoder | undefined;
    if (out.mode === 'table') {
      const include = includeObject(u);
      encoder = (type, obj) => {
        const table = toTable(t, [obj], now(), include, { resourceVersion: obj.metadata.resourceVersion ?? '' });
        table['apiVersion'] = `meta.k8s.io/${out.version}`;
        return Buffer.from(`{"type":"${type}","object":${JSON.stringify(table)}}\n`);
      };
    } else if (out.mode === 'partial') {
      encoder = (type, obj) =>
        Buffer.from(
          `{"type":"${type}","object":${JSON.stringify({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata })}}\n`,
        );
    }
    // Validation errors (bad selectors, too-new revisions) are plain HTTP errors; once the watch
    // exists the status line is sent at once and failures become ERROR events. Events are framed
    // as HTTP/1.1 chunks here and written to the socket in one call per flush (Node's own chunking
    // costs three writes and a string conversion per chunk, which dominates with many watchers).
    let headWritten = false;
    const head = (): void => {
      if (headWritten) return;
      headWritten = true;
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
      res.flushHeaders();
    };
    const socket = res.socket;
    const writeAll = (parts: readonly Buffer[], total: number): boolean => {
      head();
      if (socket === null || socket.destroyed || !res.chunkedEncoding) return res.write(Buffer.concat(parts, total));
      const size = `${total.toString(16)}\r\n`;
      const frame = Buffer.allocUnsafe(size.length + total + 2);
      let off = frame.write(size, 0, 'latin1');
      for (const p of parts) off += p.copy(frame, off);
      frame.write('\r\n', off, 'latin1');
      return socket.write(frame);
    };
    const sink = {
      write: (b: Buffer): boolean => writeAll([b], b.length),
      writeAll,
      end: (): void => {
        head();
        res.end();
      },
      get writableLength(): number {
        return (socket?.writableLength ?? 0) + res.writableLength;
      },
      once: (ev: 'drain', fn: () => void): unknown => (socket ?? res).once(ev, fn),
    };
    const w = await this.d.registry.watch(t, r.namespace, o, sink, encoder);
    if (res.destroyed) {
      w.detach();
      return;
    }
    head();
    res.on('close', () => w.detach());
  }

  /** TokenRequest: a token for a ServiceAccount, optionally bound to a Pod or (1.31+) a Node. */
  private tokenRequest(namespace: string, name: string, body: unknown): JsonObject {
    const reg = this.d.registry;
    const sa = reg.find('/serviceaccounts', `${namespace}/${name}`);
    if (sa === undefined) throw notFound({ group: '', resource: 'serviceaccounts' }, name);
    const b = isObject(body) ? body : {};
    const spec = isObject(b['spec']) ? b['spec'] : {};
    const exp = typeof spec['expirationSeconds'] === 'number' ? spec['expirationSeconds'] : 3600;
    if (exp < 600) {
      throw invalid('TokenRequest', 'authentication.k8s.io', name, [
        fieldErr.invalid('spec.expirationSeconds', exp, 'may not specify a duration less than 10 minutes'),
      ]);
    }
    const audiences = Array.isArray(spec['audiences'])
      ? spec['audiences'].map(scalarString).filter((a) => a !== '')
      : [];
    const ref = isObject(spec['boundObjectRef']) ? spec['boundObjectRef'] : undefined;
    let boundPod: { name: string; uid: string; nodeName?: string } | undefined;
    let boundNode: { name: string; uid: string } | undefined;
    if (ref !== undefined) {
      if (ref['kind'] !== 'Pod' && ref['kind'] !== 'Node') {
        throw invalid('TokenRequest', 'authentication.k8s.io', name, [
          fieldErr.notSupported('spec.boundObjectRef.kind', ref['kind'], ['Pod', 'Node']),
        ]);
      }
      const kind = ref['kind'];
      const objName = scalarString(ref['name']);
      const obj = kind === 'Pod' ? reg.find('/pods', `${namespace}/${objName}`) : reg.find('/nodes', objName);
      const resource = kind === 'Pod' ? 'pods' : 'nodes';
      if (obj === undefined) throw notFound({ group: '', resource }, objName);
      const uid = scalarString(ref['uid']);
      if (uid !== '' && uid !== obj.obj.metadata.uid) {
        throw conflict(
          { group: '', resource },
          objName,
          `the UID in the bound object reference (${uid}) does not match the UID in record. The object might have been deleted and then recreated`,
        );
      }
      if (kind === 'Node') {
        boundNode = { name: objName, uid: obj.obj.metadata.uid ?? '' };
      } else {
        const nodeName = getPath(obj.obj, ['spec', 'nodeName']);
        boundPod = {
          name: objName,
          uid: obj.obj.metadata.uid ?? '',
          ...(typeof nodeName === 'string' && nodeName !== '' ? { nodeName } : {}),
        };
      }
    }
    const issued = this.d.tokens.issue(
      { namespace, name, uid: sa.obj.metadata.uid ?? '' },
      {
        audiences,
        expirationSeconds: exp,
        ...(boundPod === undefined ? {} : { boundPod }),
        ...(boundNode === undefined ? {} : { boundNode }),
      },
    );
    const outSpec: JsonObject = {
      audiences: audiences.length > 0 ? audiences : [...this.d.tokens.audiences],
      expirationSeconds: exp,
      boundObjectRef: ref === undefined ? null : clone(ref),
    };
    return {
      kind: 'TokenRequest',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { name, namespace, creationTimestamp: rfc3339(this.d.clock.now()) },
      spec: outSpec,
      status: { token: issued.token, expirationTimestamp: rfc3339(issued.expiration) },
    };
  }

  /** pods/binding: assigns an unscheduled Pod to a Node (the scheduler's write). */
  private bindPod(namespace: string, name: string, body: unknown): void {
    const b = isObject(body) ? body : {};
    const target = isObject(b['target']) ? b['target'] : {};
    const node = scalarString(target['name']);
    if (node === '') throw invalid('Binding', '', name, [fieldErr.required('target.name')]);
    this.d.registry.bindPod(namespace, name, node);
  }
}

function includeObject(u: URLSearchParams): 'None' | 'Metadata' | 'Object' {
  const v = u.get('includeObject');
  return v === 'None' || v === 'Object' ? v : 'Metadata';
}
