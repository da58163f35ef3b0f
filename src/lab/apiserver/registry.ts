/**
 * The REST semantics of the API server, independent of HTTP: create, get, list (with selectors and
 * limit/continue from a consistent snapshot), update with optimistic concurrency, the three patch
 * types, delete with finalizers and grace periods, and watch from a resourceVersion. Strategies
 * supply the per-kind rules; custom resources are pruned, defaulted and validated by their schema.
 * Every method either returns a result or throws an ApiError carrying the right Status.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '../../common/util/clock.ts';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch } from './patch.ts';
import {
  apiVersionOf,
  storageKeyOf,
  type ResourceRegistry,
  type ResourceType,
  type StrategyContext,
} from './resources.ts';
import { applyDefaults, OBJECT_META_FIELDS, prune, validateValue } from './schema.ts';
import { parseFieldSelector, parseLabelSelector, type FieldSelector, type LabelSelector } from './selectors.ts';
import {
  alreadyExists,
  ApiError,
  badRequest,
  conflict,
  fieldErr,
  forbidden,
  gone,
  internalError,
  invalid,
  methodNotAllowed,
  notFound,
  STALE_OBJECT_MESSAGE,
  unsupportedMediaType,
  type FieldError,
} from './status.ts';
import type { ObjectStore, StoredEntry } from './store.ts';
import {
  clone,
  deepEqual,
  deleteKey,
  isObject,
  objectKey,
  rfc3339,
  scalarString,
  type Json,
  type JsonObject,
  type KObject,
} from './types.ts';
import { validateObjectMeta } from './validation.ts';
import { FlushScheduler, Watcher, type WatchEncoder, type WatchSink } from './watch.ts';

export type FieldValidation = 'Ignore' | 'Warn' | 'Strict';

export interface WriteOptions {
  readonly dryRun?: boolean;
  readonly fieldValidation?: FieldValidation;
  /** `status` or `finalize` when writing a subresource. */
  readonly subresource?: string;
  /** Collects `Warning` header texts. */
  readonly warnings?: string[];
}

export interface DeleteOptions {
  readonly gracePeriodSeconds?: number;
  readonly propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  readonly preconditions?: { readonly uid?: string; readonly resourceVersion?: string };
  readonly dryRun?: boolean;
}

export interface ListOptions {
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly limit?: number;
  readonly continue?: string;
  readonly resourceVersion?: string;
  readonly resourceVersionMatch?: string;
}

export interface ListResult {
  readonly items: readonly StoredEntry[];
  readonly resourceVersion: number;
  readonly continue?: string;
  readonly remainingItemCount?: number;
}

export interface WatchOptions extends ListOptions {
  readonly allowWatchBookmarks?: boolean;
  readonly timeoutSeconds?: number;
  readonly sendInitialEvents?: boolean;
}

export type PatchType = 'json' | 'merge' | 'strategic' | 'apply';

export const PATCH_CONTENT_TYPES: Readonly<Record<string, PatchType>> = {
  'application/json-patch+json': 'json',
  'application/merge-patch+json': 'merge',
  'application/strategic-merge-patch+json': 'strategic',
  'application/apply-patch+yaml': 'apply',
};

export interface RegistryOptions {
  readonly clock: Clock;
  /** Default watch timeout range when the client gives none (ms). */
  readonly watchTimeoutMs?: readonly [number, number];
  readonly bookmarkIntervalMs?: number;
  readonly maxWatchBufferBytes?: number;
  /** How long a list snapshot for continue tokens is kept (ms). */
  readonly continueTtlMs?: number;
  /** How long a read with a too-new resourceVersion waits before a 504. */
  readonly tooNewWaitMs?: number;
  /** Batch watch output for this long before writing (0: once per event-loop turn). */
  readonly watchFlushDelayMs?: number;
}

interface Snapshot {
  readonly items: readonly StoredEntry[];
  readonly rv: number;
  readonly expires: number;
}

const GENERATE_CHARS = 'bcdfghjklmnpqrstvwxz2456789';
export const CRD_CLEANUP_FINALIZER = 'customresourcecleanup.apiextensions.k8s.io';

function randomSuffix(n = 5): string {
  const bytes = randomBytes(n);
  let out = '';
  for (const b of bytes) out += GENERATE_CHARS.charAt(b % GENERATE_CHARS.length);
  return out;
}

function parseRv(v: string | undefined, param: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v))
    throw badRequest(`Invalid value: ${JSON.stringify(v)}: ${param} must be a non-negative integer`);
  return Number(v);
}

/** Copies one metadata field from `from` (removing it from `to` when `from` lacks it). */
function copyMeta(
  to: KObject,
  from: KObject,
  key: 'uid' | 'creationTimestamp' | 'resourceVersion' | 'ownerReferences',
): void {
  const v = from.metadata[key];
  if (v === undefined) deleteKey(to.metadata, key);
  else (to.metadata as Record<string, unknown>)[key] = v; // stored objects are immutable: sharing is safe
}

function qualified(t: ResourceType): { group: string; resource: string } {
  return { group: t.group, resource: t.resource };
}

export class Registry {
  readonly store: ObjectStore;
  readonly types: ResourceRegistry;
  readonly ctx: StrategyContext;
  private readonly opts: RegistryOptions;
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly flusher: FlushScheduler;

  constructor(store: ObjectStore, types: ResourceRegistry, ctx: StrategyContext, opts: RegistryOptions) {
    this.store = store;
    this.types = types;
    this.ctx = ctx;
    this.opts = opts;
    this.flusher = new FlushScheduler(opts.watchFlushDelayMs ?? 0);
  }

  // -------------------------------------------------------------------------------------------
  // reads

  get(t: ResourceType, ns: string | undefined, name: string): StoredEntry {
    const e = this.store.get(storageKeyOf(t), objectKey(t.namespaced ? ns : undefined, name));
    if (e === undefined) throw notFound(qualified(t), name);
    return this.view(t, e);
  }

  /** The entry as the requested version serves it (custom resources may be stored under another version). */
  view(t: ResourceType, e: StoredEntry): StoredEntry {
    const apiVersion = apiVersionOf(t);
    if (e.obj.apiVersion === apiVersion) return e;
    const obj = { ...e.obj, apiVersion };
    return { obj, json: JSON.stringify(obj), rv: e.rv };
  }

  find(storageKey: string, key: string): StoredEntry | undefined {
    return this.store.get(storageKey, key);
  }

  /** Compiles selectors into a predicate over objects (400 on bad selectors or unsupported fields). */
  compileFilter(t: ResourceType, ns: string | undefined, o: ListOptions): (obj: KObject) => boolean {
    const labels: LabelSelector | undefined =
      o.labelSelector === undefined || o.labelSelector === '' ? undefined : parseLabelSelector(o.labelSelector);
    const fields: FieldSelector | undefined =
      o.fieldSelector === undefined || o.fieldSelector === ''
        ? undefined
        : parseFieldSelector(o.fieldSelector, new Set(t.fieldLabels.keys()));
    const byNs = t.namespaced && ns !== undefined && ns !== '';
    const labelFn = labels === undefined || labels.empty ? undefined : labels;
    const fieldFn = fields === undefined || fields.empty ? undefined : fields;
    const get = (obj: KObject) => (label: string) => t.fieldLabels.get(label)?.(obj) ?? '';
    return (obj) =>
      (!byNs || obj.metadata.namespace === ns) &&
      (labelFn === undefined || labelFn.matches(obj.metadata.labels)) &&
      (fieldFn === undefined || fieldFn.matches(get(obj)));
  }

  /** Waits until the store reaches `rv`, or fails with 504 Too large resource version. */
  async waitForRevision(rv: number | undefined): Promise<void> {
    if (rv === undefined || rv <= this.store.rv) return;
    const deadline = this.opts.clock.monotonic() + (this.opts.tooNewWaitMs ?? 3000);
    while (this.store.rv < rv && this.opts.clock.monotonic() < deadline) await this.opts.clock.sleep(50);
    if (this.store.rv < rv) {
      throw new ApiError(504, 'Timeout', `Too large resource version: ${rv}, current: ${this.store.rv}`, {
        causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
        retryAfterSeconds: 1,
      });
    }
  }

  async list(t: ResourceType, ns: string | undefined, o: ListOptions): Promise<ListResult> {
    const filter = this.compileFilter(t, ns, o);
    const limit = o.limit !== undefined && o.limit > 0 ? o.limit : undefined;
    if (o.continue !== undefined && o.continue !== '') return this.continueList(o.continue, limit);
    const want = parseRv(o.resourceVersion, 'resourceVersion');
    if (o.resourceVersionMatch !== undefined && o.resourceVersionMatch !== '') {
      if (!['Exact', 'NotOlderThan'].includes(o.resourceVersionMatch)) {
        throw invalid('ListOptions', 'meta.k8s.io', '', [
          fieldErr.notSupported('resourceVersionMatch', o.resourceVersionMatch, ['Exact', 'NotOlderThan']),
        ]);
      }
      if (want === undefined) {
        throw invalid('ListOptions', 'meta.k8s.io', '', [
          fieldErr.forbidden(
            'resourceVersionMatch',
            'resourceVersionMatch is forbidden unless resourceVersion is provided',
          ),
        ]);
      }
      if (o.resourceVersionMatch === 'Exact' && want < this.store.rv) {
        throw gone(`The resourceVersion for the provided list is too old.`);
      }
    }
    await this.waitForRevision(want);
    const ts = this.store.type(storageKeyOf(t));
    const prefix = t.namespaced && ns !== undefined && ns !== '' ? `${ns}/` : undefined;
    const items: StoredEntry[] = [];
    for (const key of ts.keys()) {
      if (prefix !== undefined && !key.startsWith(prefix)) continue;
      const e = ts.objects.get(key);
      if (e !== undefined && filter(e.obj)) items.push(this.view(t, e));
    }
    const rv = this.store.rv;
    if (limit === undefined || items.length <= limit) return { items, resourceVersion: rv };
    return this.page(items, rv, 0, limit);
  }

  private page(items: readonly StoredEntry[], rv: number, offset: number, limit: number | undefined): ListResult {
    const end = limit === undefined ? items.length : Math.min(items.length, offset + limit);
    const pageItems = items.slice(offset, end);
    if (end >= items.length) return { items: pageItems, resourceVersion: rv };
    this.expireSnapshots();
    const id = randomUUID();
    this.snapshots.set(id, { items, rv, expires: this.opts.clock.monotonic() + (this.opts.continueTtlMs ?? 300_000) });
    const last = items[end - 1];
    const token = Buffer.from(
      JSON.stringify({
        v: 'antrea-lab/v1',
        rv,
        id,
        offset: end,
        start: last === undefined ? '' : objectKey(last.obj.metadata.namespace, last.obj.metadata.name ?? ''),
      }),
    ).toString('base64url');
    return { items: pageItems, resourceVersion: rv, continue: token, remainingItemCount: items.length - end };
  }

  private continueList(token: string, limit: number | undefined): ListResult {
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    } catch {
      parsed = undefined;
    }
    if (!isObject(parsed) || typeof parsed['id'] !== 'string' || typeof parsed['offset'] !== 'number') {
      throw badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
    }
    this.expireSnapshots();
    const snap = this.snapshots.get(parsed['id']);
    if (snap === undefined) {
      throw gone(
        'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.',
      );
    }
    return this.page(snap.items, snap.rv, parsed['offset'], limit);
  }

  private expireSnapshots(): void {
    const now = this.opts.clock.monotonic();
    for (const [k, s] of this.snapshots) if (s.expires < now) this.snapshots.delete(k);
    while (this.snapshots.size > 64) {
      const first = this.snapshots.keys().next();
      if (first.done === true) break;
      this.snapshots.delete(first.value);
    }
  }

  // -------------------------------------------------------------------------------------------
  // watch

  /**
   * Starts a watch. Errors found before the stream starts (bad selectors, a too-new revision) are
   * thrown; an expired revision is reported the way the watch cache does it, as an ERROR event
   * (410 Expired) on a 200 stream that then ends.
   */
  async watch(
    t: ResourceType,
    ns: string | undefined,
    o: WatchOptions,
    sink: WatchSink,
    encoder?: WatchEncoder,
  ): Promise<Watcher> {
    const filter = this.compileFilter(t, ns, o);
    const want = parseRv(o.resourceVersion, 'resourceVersion');
    if (o.sendInitialEvents === true && (o.allowWatchBookmarks !== true || o.resourceVersionMatch !== 'NotOlderThan')) {
      throw invalid('ListOptions', 'meta.k8s.io', '', [
        fieldErr.forbidden(
          'sendInitialEvents',
          'sendInitialEvents is forbidden for watch unless allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan',
        ),
      ]);
    }
    await this.waitForRevision(want);
    const ts = this.store.type(storageKeyOf(t));
    const [lo, hi] = this.opts.watchTimeoutMs ?? [300_000, 600_000];
    const timeoutMs =
      o.timeoutSeconds !== undefined && o.timeoutSeconds > 0 ? o.timeoutSeconds * 1000 : lo + Math.random() * (hi - lo);
    const apiVersion = apiVersionOf(t);
    const storedVersion = (e: KObject): boolean => e.apiVersion === apiVersion;
    const enc: WatchEncoder | undefined =
      encoder ??
      ((type, obj, ev, fromPrev) =>
        ev !== undefined && storedVersion(obj)
          ? ev.line(type, fromPrev)
          : Buffer.from(`{"type":"${type}","object":${JSON.stringify({ ...obj, apiVersion })}}\n`));
    const w = new Watcher({
      sink,
      filter,
      clock: this.opts.clock,
      timeoutMs,
      encoder: enc,
      currentRevision: () => this.store.rv,
      ...(o.allowWatchBookmarks === true
        ? {
            bookmarkIntervalMs: this.opts.bookmarkIntervalMs ?? 60_000,
            bookmarkObject: (rv: number, annotations?: Record<string, string>) => ({
              kind: t.kind,
              apiVersion,
              metadata: { resourceVersion: String(rv), ...(annotations === undefined ? {} : { annotations }) },
            }),
          }
        : {}),
      ...(this.opts.maxWatchBufferBytes === undefined ? {} : { maxBufferedBytes: this.opts.maxWatchBufferBytes }),
      onClose: (x) => ts.watchers.delete(x),
      scheduler: this.flusher,
    });
    const initial = o.sendInitialEvents ?? (want === undefined || want === 0);
    if (want !== undefined && want !== 0 && o.sendInitialEvents !== true) {
      if (want < ts.evictedUpTo) {
        w.fail(gone(`too old resource version: ${want} (${ts.evictedUpTo + 1})`).toStatus(), 'expired');
        return w;
      }
      for (const ev of ts.eventsAfter(want)) w.deliver(ev);
    } else if (initial) {
      for (const key of ts.keys()) {
        const e = ts.objects.get(key);
        if (e !== undefined) w.deliverInitial(e);
      }
      if (o.sendInitialEvents === true) w.sendBookmark({ 'k8s.io/initial-events-end': 'true' });
    }
    ts.watchers.add(w);
    return w;
  }

  // -------------------------------------------------------------------------------------------
  // writes

  private decodeBody(t: ResourceType, body: unknown, ns: string | undefined): KObject {
    if (!isObject(body)) throw badRequest(`Object 'Kind' is missing in '${JSON.stringify(body)}'`);
    const apiVersion = apiVersionOf(t);
    if (body['kind'] !== undefined && body['kind'] !== t.kind) {
      throw badRequest(
        `the kind in the body (${scalarString(body['kind'])}) does not match the expected kind (${t.kind})`,
      );
    }
    if (body['apiVersion'] !== undefined && body['apiVersion'] !== apiVersion) {
      throw badRequest(
        `the API version in the data (${scalarString(body['apiVersion'])}) does not match the expected API version (${apiVersion})`,
      );
    }
    const meta = body['metadata'];
    if (meta !== undefined && !isObject(meta)) throw badRequest('metadata must be an object');
    const obj = { apiVersion, kind: t.kind, ...body, metadata: { ...(meta ?? {}) } } as KObject;
    obj.apiVersion = apiVersion;
    obj.kind = t.kind;
    for (const k of Object.keys(obj.metadata)) if (!OBJECT_META_FIELDS.has(k)) deleteKey(obj.metadata, k);
    delete obj.metadata.managedFields;
    delete obj.metadata['selfLink'];
    if (t.namespaced) {
      const given = obj.metadata.namespace;
      if (given !== undefined && given !== '' && ns !== undefined && given !== ns) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      if (ns !== undefined && ns !== '') obj.metadata.namespace = ns;
    } else {
      delete obj.metadata.namespace;
    }
    return obj;
  }

  /** Pruning, defaulting and schema validation of custom resources (no-op for built-ins). */
  private applySchema(t: ResourceType, obj: KObject, o: WriteOptions): FieldError[] {
    if (t.schema === undefined) return [];
    const removed = prune(obj, t.schema);
    const unknown = removed.filter((p) => !p.startsWith('metadata.'));
    if (unknown.length > 0) {
      if (o.fieldValidation === 'Strict') {
        throw badRequest(
          `${t.kind} in version "${t.version}" cannot be handled as a ${t.kind}: strict decoding error: ${unknown.map((p) => `unknown field "${p}"`).join(', ')}`,
        );
      }
      if (o.fieldValidation !== 'Ignore') for (const p of unknown) o.warnings?.push(`unknown field "${p}"`);
    }
    applyDefaults(obj, t.schema);
    const body: JsonObject = { ...obj };
    delete body['metadata'];
    delete body['apiVersion'];
    delete body['kind'];
    return validateValue(body, t.schema, '');
  }

  private checkNamespace(t: ResourceType, obj: KObject, verbName: string): void {
    if (!t.namespaced) return;
    const nsName = obj.metadata.namespace ?? '';
    const ns = this.store.get('/namespaces', nsName);
    if (ns === undefined) throw notFound({ group: '', resource: 'namespaces' }, nsName);
    if (ns.obj.metadata.deletionTimestamp !== undefined && verbName === 'create') {
      throw forbidden(
        qualified(t),
        obj.metadata.name ?? '',
        `unable to create new content in namespace ${nsName} because it is being terminated`,
      );
    }
  }

  private validateAll(
    t: ResourceType,
    obj: KObject,
    old: KObject | undefined,
    schemaErrs: FieldError[],
    statusWrite = false,
  ): void {
    const errs: FieldError[] = validateObjectMeta(obj.metadata, {
      nameRule: t.strategy.nameRule,
      namespaced: t.namespaced,
      creating: old === undefined,
    });
    errs.push(...(t.strategy.validate?.(obj, this.ctx) ?? []));
    // A /status write cannot change what validateUpdate guards (the spec comes from the old object).
    if (old !== undefined && !statusWrite) errs.push(...(t.strategy.validateUpdate?.(obj, old, this.ctx) ?? []));
    errs.push(...schemaErrs);
    if (errs.length > 0) throw invalid(t.kind, t.group, obj.metadata.name ?? obj.metadata.generateName ?? '', errs);
  }

  private crdTerminating(t: ResourceType): boolean {
    if (t.crd === undefined) return false;
    return (
      this.store.get('apiextensions.k8s.io/customresourcedefinitions', t.crd)?.obj.metadata.deletionTimestamp !==
      undefined
    );
  }

  create(t: ResourceType, ns: string | undefined, body: unknown, o: WriteOptions = {}): StoredEntry {
    if (!t.verbs.includes('create')) throw methodNotAllowed('');
    if (this.crdTerminating(t))
      throw methodNotAllowed(`: create not allowed while custom resource definition is terminating`);
    const obj = this.decodeBody(t, body, ns);
    const meta = obj.metadata;
    if (meta.resourceVersion !== undefined && meta.resourceVersion !== '') {
      throw internalError('resourceVersion should not be set on objects to be created');
    }
    for (const k of [
      'uid',
      'resourceVersion',
      'deletionTimestamp',
      'deletionGracePeriodSeconds',
      'creationTimestamp',
    ] as const) {
      deleteKey(meta, k);
    }
    if (
      (meta.name === undefined || meta.name === '') &&
      typeof meta.generateName === 'string' &&
      meta.generateName !== ''
    ) {
      meta.name = `${meta.generateName}${randomSuffix()}`;
    }
    if (t.strategy.statusSubresource && t.schema !== undefined) delete obj['status'];
    t.strategy.prepareForCreate?.(obj, this.ctx);
    const schemaErrs = this.applySchema(t, obj, o);
    if (t.strategy.generationOf !== undefined) meta.generation = 1;
    else delete meta.generation;
    this.validateAll(t, obj, undefined, schemaErrs);
    this.checkNamespace(t, obj, 'create');
    const sk = storageKeyOf(t);
    const key = objectKey(meta.namespace, meta.name ?? '');
    if (this.store.get(sk, key) !== undefined) throw alreadyExists(qualified(t), meta.name ?? '');
    meta.uid = randomUUID();
    meta.creationTimestamp = rfc3339(this.opts.clock.now());
    if (o.dryRun === true) {
      delete obj.metadata.resourceVersion;
      return { obj, json: JSON.stringify(obj), rv: this.store.rv };
    }
    t.strategy.allocate?.(obj, undefined, this.ctx);
    return this.store.create(sk, key, obj);
  }

  /**
   * PUT: replaces the object when the body's resourceVersion matches (409 otherwise; 422 when the kind
   * requires one and none is given). Leases and Events are created when absent.
   */
  update(
    t: ResourceType,
    ns: string | undefined,
    name: string,
    body: unknown,
    o: WriteOptions = {},
  ): { entry: StoredEntry; created: boolean } {
    if (!t.verbs.includes('update') && o.subresource === undefined) throw methodNotAllowed('');
    const sk = storageKeyOf(t);
    const key = objectKey(t.namespaced ? ns : undefined, name);
    const cur = this.store.get(sk, key);
    const obj = this.decodeBody(t, body, ns);
    if (obj.metadata.name !== undefined && obj.metadata.name !== name) {
      throw badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
    }
    obj.metadata.name = name;
    if (cur === undefined) {
      if (o.subresource === undefined && t.strategy.allowCreateOnUpdate === true) {
        delete obj.metadata.resourceVersion;
        return { entry: this.create(t, ns, obj, o), created: true };
      }
      throw notFound(qualified(t), name);
    }
    const rv = obj.metadata.resourceVersion;
    if (rv === undefined || rv === '') {
      if (!t.strategy.allowUnconditionalUpdate) {
        throw invalid(t.kind, t.group, name, [
          fieldErr.invalid('metadata.resourceVersion', '0x0', 'must be specified for an update'),
        ]);
      }
    } else if (rv !== cur.obj.metadata.resourceVersion) {
      throw conflict(qualified(t), name, STALE_OBJECT_MESSAGE);
    }
    const uid = obj.metadata.uid;
    if (uid !== undefined && uid !== '' && uid !== cur.obj.metadata.uid) {
      throw conflict(
        qualified(t),
        name,
        `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${cur.obj.metadata.uid ?? ''}`,
      );
    }
    return { entry: this.applyUpdate(t, cur, obj, o), created: false };
  }

  /** The shared tail of update and patch: subresource rules, generation, validation, no-op detection. */
  private applyUpdate(t: ResourceType, cur: StoredEntry, incoming: KObject, o: WriteOptions): StoredEntry {
    const old = cur.obj;
    let obj: KObject;
    if (o.subresource === 'status') {
      if (!t.strategy.statusSubresource) throw notFound(qualified(t), old.metadata.name ?? '');
      if (t.schema !== undefined) {
        obj = clone(old);
        if (incoming['status'] === undefined) delete obj['status'];
        else obj['status'] = incoming['status'];
      } else {
        obj = incoming;
        for (const k of t.strategy.statusKeepsOld ?? ['spec']) {
          if (old[k] === undefined) deleteKey(obj, k);
          else obj[k] = old[k]; // shared with the stored object, which is never mutated
        }
        copyMeta(obj, old, 'ownerReferences');
      }
    } else if (o.subresource === 'finalize') {
      obj = clone(old);
      const spec = isObject(obj['spec']) ? obj['spec'] : (obj['spec'] = {});
      spec['finalizers'] = clone(isObject(incoming['spec']) ? (incoming['spec']['finalizers'] ?? []) : []);
    } else {
      obj = incoming;
      if (t.strategy.statusSubresource) {
        if (old['status'] === undefined) delete obj['status'];
        else obj['status'] = clone(old['status']);
      }
      t.strategy.prepareForUpdate?.(obj, old, this.ctx);
    }
    const m = obj.metadata;
    copyMeta(obj, old, 'uid');
    copyMeta(obj, old, 'creationTimestamp');
    if (old.metadata.deletionTimestamp !== undefined) {
      m.deletionTimestamp = old.metadata.deletionTimestamp;
      if (old.metadata.deletionGracePeriodSeconds !== undefined)
        m.deletionGracePeriodSeconds = old.metadata.deletionGracePeriodSeconds;
      const added = (m.finalizers ?? []).filter((f) => !(old.metadata.finalizers ?? []).includes(f));
      if (added.length > 0) {
        throw invalid(t.kind, t.group, m.name ?? '', [
          fieldErr.forbidden(
            'metadata.finalizers',
            `no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map((f) => JSON.stringify(f)).join(', ')}}`,
          ),
        ]);
      }
    } else {
      delete m.deletionTimestamp;
      delete m.deletionGracePeriodSeconds;
    }
    if (m.finalizers !== undefined && m.finalizers.length === 0) delete m.finalizers;
    if (m.labels !== undefined && Object.keys(m.labels).length === 0) delete m.labels;
    if (m.annotations !== undefined && Object.keys(m.annotations).length === 0) delete m.annotations;
    const schemaErrs = this.applySchema(t, obj, o);
    const genOf = t.strategy.generationOf;
    if (genOf !== undefined) {
      const g = typeof old.metadata.generation === 'number' ? old.metadata.generation : 1;
      m.generation = deepEqual(genOf(obj), genOf(old)) ? g : g + 1;
    } else delete m.generation;
    this.validateAll(t, obj, old, schemaErrs, o.subresource === 'status');
    copyMeta(obj, old, 'resourceVersion');
    const sk = storageKeyOf(t);
    const key = objectKey(m.namespace, m.name ?? '');
    const finishing =
      m.deletionTimestamp !== undefined && (m.finalizers ?? []).length === 0 && !this.gracePending(t, obj);
    if (deepEqual(obj, old) && !finishing) return cur;
    if (o.dryRun === true) return { obj, json: JSON.stringify(obj), rv: cur.rv };
    if (finishing) return this.remove(t, sk, key, obj);
    if (o.subresource === undefined) t.strategy.allocate?.(obj, old, this.ctx);
    const entry = this.store.update(sk, key, obj);
    t.strategy.afterUpdate?.(obj, old, this.ctx);
    return entry;
  }

  /** A Pod whose graceful deletion still waits for its kubelet (or the grace period to pass). */
  private gracePending(t: ResourceType, obj: KObject): boolean {
    return t.kind === 'Pod' && t.group === '' && (obj.metadata.deletionGracePeriodSeconds ?? 0) > 0;
  }

  patch(
    t: ResourceType,
    ns: string | undefined,
    name: string,
    type: PatchType,
    patch: unknown,
    o: WriteOptions = {},
  ): StoredEntry {
    if (!t.verbs.includes('patch') && o.subresource === undefined) throw methodNotAllowed('');
    if (type === 'apply' || (type === 'strategic' && t.smp === undefined)) {
      throw unsupportedMediaType(
        type === 'apply' ? 'application/apply-patch+yaml' : 'application/strategic-merge-patch+json',
        [
          'application/json-patch+json',
          'application/merge-patch+json',
          ...(t.smp === undefined ? [] : ['application/strategic-merge-patch+json']),
        ],
      );
    }
    const sk = storageKeyOf(t);
    const cur = this.store.get(sk, objectKey(t.namespaced ? ns : undefined, name));
    if (cur === undefined) throw notFound(qualified(t), name);
    const base = this.view(t, cur).obj as Json;
    let result: Json;
    if (type === 'json') result = applyJsonPatch(base, patch);
    else if (type === 'merge') {
      if (!isObject(patch))
        throw badRequest('json: cannot unmarshal the patch into an object: merge patches must be JSON objects');
      result = applyMergePatch(base, patch);
    } else result = applyStrategicMergePatch(base, patch as Json, t.smp);
    if (!isObject(result)) throw badRequest('the patched object is not a JSON object');
    const obj = this.decodeBody(t, result, ns);
    if (obj.metadata.name !== name) {
      throw invalid(t.kind, t.group, name, [
        fieldErr.invalid('metadata.name', obj.metadata.name ?? '', 'field is immutable'),
      ]);
    }
    const rv = obj.metadata.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== cur.obj.metadata.resourceVersion) {
      throw conflict(qualified(t), name, STALE_OBJECT_MESSAGE);
    }
    if (obj.metadata.uid !== undefined && obj.metadata.uid !== cur.obj.metadata.uid) {
      throw conflict(
        qualified(t),
        name,
        `Precondition failed: UID in precondition: ${obj.metadata.uid}, UID in object meta: ${cur.obj.metadata.uid ?? ''}`,
      );
    }
    return this.applyUpdate(t, cur, obj, o);
  }

  /**
   * DELETE. Objects with finalizers, Pods on a Node with a grace period, Namespaces and CRDs get a
   * deletionTimestamp (MODIFIED) and stay until the finalizers are gone or the grace period is
   * completed; everything else is removed at once (DELETED). Returns the object's final state.
   */
  delete(
    t: ResourceType,
    ns: string | undefined,
    name: string,
    d: DeleteOptions = {},
  ): { entry: StoredEntry; deleted: boolean } {
    if (!t.verbs.includes('delete')) throw methodNotAllowed('');
    const sk = storageKeyOf(t);
    const key = objectKey(t.namespaced ? ns : undefined, name);
    const cur = this.store.get(sk, key);
    if (cur === undefined) throw notFound(qualified(t), name);
    const pre = d.preconditions;
    if (pre?.uid !== undefined && pre.uid !== cur.obj.metadata.uid) {
      throw conflict(
        qualified(t),
        name,
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.obj.metadata.uid ?? ''}`,
      );
    }
    if (pre?.resourceVersion !== undefined && pre.resourceVersion !== cur.obj.metadata.resourceVersion) {
      throw conflict(
        qualified(t),
        name,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${cur.obj.metadata.resourceVersion ?? ''}`,
      );
    }
    if (d.dryRun === true) return { entry: this.view(t, cur), deleted: false };
    const obj = clone(cur.obj);
    const m = obj.metadata;
    const nowIso = rfc3339(this.opts.clock.now());
    let defer = false;
    if (t.group === '' && t.kind === 'Namespace') {
      const fin = isObject(obj['spec']) && Array.isArray(obj['spec']['finalizers']) ? obj['spec']['finalizers'] : [];
      if (fin.length > 0) {
        defer = true;
        obj['status'] = { ...(isObject(obj['status']) ? obj['status'] : {}), phase: 'Terminating' };
      }
    } else if (t.group === 'apiextensions.k8s.io' && t.kind === 'CustomResourceDefinition') {
      defer = true;
      if (!(m.finalizers ?? []).includes(CRD_CLEANUP_FINALIZER))
        m.finalizers = [...(m.finalizers ?? []), CRD_CLEANUP_FINALIZER];
    }
    if (t.group === '' && t.kind === 'Pod') {
      const grace = this.podGrace(obj, d.gracePeriodSeconds);
      const had = cur.obj.metadata.deletionGracePeriodSeconds;
      if (grace > 0) {
        if (had !== undefined && had <= grace) return { entry: cur, deleted: false };
        m.deletionGracePeriodSeconds = grace;
        m.deletionTimestamp = rfc3339(this.opts.clock.now() + grace * 1000);
        defer = true;
      } else {
        m.deletionGracePeriodSeconds = 0;
      }
    }
    if ((m.finalizers ?? []).length > 0) defer = true;
    if (d.propagationPolicy === 'Orphan') this.orphanDependents(cur.obj);
    if (!defer) return { entry: this.remove(t, sk, key, cur.obj), deleted: true };
    if (m.deletionTimestamp === undefined) m.deletionTimestamp = nowIso;
    if (m.deletionGracePeriodSeconds === undefined) m.deletionGracePeriodSeconds = 0;
    if (cur.obj.metadata.deletionTimestamp !== undefined && deepEqual(obj, cur.obj))
      return { entry: cur, deleted: false };
    if (t.group === '' && t.kind === 'Pod' && (m.finalizers ?? []).length === 0 && m.deletionGracePeriodSeconds === 0) {
      return { entry: this.remove(t, sk, key, obj), deleted: true };
    }
    return { entry: this.store.update(sk, key, obj), deleted: false };
  }

  private podGrace(pod: KObject, requested: number | undefined): number {
    const spec = isObject(pod['spec']) ? pod['spec'] : {};
    const phase = isObject(pod['status']) ? pod['status']['phase'] : undefined;
    if (typeof spec['nodeName'] !== 'string' || spec['nodeName'] === '') return 0;
    if (phase === 'Succeeded' || phase === 'Failed') return 0;
    let grace =
      requested ??
      (typeof spec['terminationGracePeriodSeconds'] === 'number' ? spec['terminationGracePeriodSeconds'] : 30);
    if (grace < 0) grace = 1;
    return grace;
  }

  /** Removes an object now: DELETED event with its final content, release of allocations. */
  private remove(t: ResourceType, sk: string, key: string, last: KObject): StoredEntry {
    const ev = this.store.delete(sk, key, last);
    if (ev === undefined) throw notFound(qualified(t), last.metadata.name ?? '');
    t.strategy.release?.(ev.prev ?? ev.obj, this.ctx);
    return { obj: ev.obj, json: ev.json, rv: ev.rv };
  }

  /** DELETE on a collection: deletes every matching object, returning the final states. */
  async deleteCollection(
    t: ResourceType,
    ns: string | undefined,
    lo: ListOptions,
    d: DeleteOptions,
  ): Promise<StoredEntry[]> {
    if (!t.verbs.includes('deletecollection')) throw methodNotAllowed('');
    const res = await this.list(t, ns, { ...lo, limit: 0 });
    const out: StoredEntry[] = [];
    for (const e of res.items) {
      try {
        out.push(this.delete(t, e.obj.metadata.namespace, e.obj.metadata.name ?? '', d).entry);
      } catch (err) {
        if (!(err instanceof ApiError && err.httpCode === 404)) throw err;
      }
    }
    return out;
  }

  /** pods/binding: sets spec.nodeName of an unscheduled Pod (409 when it already has a Node). */
  bindPod(ns: string, name: string, node: string): StoredEntry {
    const key = objectKey(ns, name);
    const cur = this.store.get('/pods', key);
    if (cur === undefined) throw notFound({ group: '', resource: 'pods' }, name);
    const spec = isObject(cur.obj['spec']) ? cur.obj['spec'] : {};
    const q = { group: '', resource: 'pods/binding' };
    if (typeof spec['nodeName'] === 'string' && spec['nodeName'] !== '') {
      throw conflict(q, name, `pod ${name} is already assigned to node "${spec['nodeName']}"`);
    }
    if (cur.obj.metadata.deletionTimestamp !== undefined)
      throw conflict(q, name, `pod ${name} is being deleted, cannot be assigned to a host`);
    const next = clone(cur.obj);
    (next['spec'] as JsonObject)['nodeName'] = node;
    return this.store.update('/pods', key, next);
  }

  /** Removes owner references to `owner` from its dependents (propagationPolicy=Orphan). */
  private orphanDependents(owner: KObject): void {
    const uid = owner.metadata.uid;
    if (uid === undefined) return;
    for (const ts of this.store.allTypes()) {
      for (const [key, e] of ts.objects) {
        const refs = e.obj.metadata.ownerReferences;
        if (refs === undefined || !refs.some((r) => r.uid === uid)) continue;
        const next = clone(e.obj);
        const kept = refs.filter((r) => r.uid !== uid);
        if (kept.length === 0) delete next.metadata.ownerReferences;
        else next.metadata.ownerReferences = kept;
        this.store.update(ts.storageKey, key, next);
      }
    }
  }
}
