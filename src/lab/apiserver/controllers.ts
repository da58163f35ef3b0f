/**
 * The control loops a real cluster runs next to kube-apiserver that clients of the API rely on:
 * - namespaces: a `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap in each; deletion
 *   removes all content, then the `kubernetes` finalizer, then the namespace;
 * - CRDs: served types registered on create/update, status (NamesAccepted, Established) written,
 *   and on deletion all custom resources removed before the CRD goes;
 * - garbage collection: dependents (ownerReferences) of a deleted owner are deleted;
 * - graceful Pod deletion completed when the grace period ends, for Pods no kubelet finishes;
 * - EndpointSlices of Services with a selector, in step with their Pods (endpointslices.ts).
 * Work is queued and runs after the write that caused it (never inside a store callback).
 */
import type { Clock, TimerHandle } from '../../common/util/clock.ts';
import { errorMessage } from '../../common/util/errors.ts';
import type { Logger } from '../../common/util/log.ts';
import { CRD_STORAGE, crdStatusChanged, customResourceTypes, desiredCrdStatus } from './crd.ts';
import { EndpointSliceController } from './endpointslices.ts';
import { CRD_CLEANUP_FINALIZER, type Registry } from './registry.ts';
import { storageKeyOf, type ResourceRegistry, type ResourceType } from './resources.ts';
import { ApiError } from './status.ts';
import type { StoreEvent } from './store.ts';
import { clone, getPath, isObject, scalarString, type JsonObject, type KObject } from './types.ts';

export interface ControllerOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  /** PEM of the cluster CA published in every namespace's kube-root-ca.crt (none over plain HTTP). */
  readonly caPem?: string;
  /** Remove Pods whose grace period has ended (stand-in for a kubelet). Default true. */
  readonly completePodDeletion?: boolean;
}

export class Controllers {
  private readonly reg: Registry;
  private readonly types: ResourceRegistry;
  private readonly o: ControllerOptions;
  private readonly queue = new Map<string, () => void>();
  private scheduled = false;
  private running = false;
  private stopped = false;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly podTimers = new Map<string, TimerHandle>();
  private readonly retryTimers = new Map<string, TimerHandle>();
  /** owner uid → dependents as `storageKey\nkey`. */
  private readonly dependents = new Map<string, Set<string>>();
  private readonly endpointSlices: EndpointSliceController;

  constructor(reg: Registry, types: ResourceRegistry, o: ControllerOptions) {
    this.reg = reg;
    this.types = types;
    this.o = o;
    this.endpointSlices = new EndpointSliceController(reg, types, o.logger, (k, fn) => this.enqueue(k, fn));
  }

  /** Subscribes to changes and reconciles what is already stored. */
  start(): void {
    const store = this.reg.store;
    for (const ts of store.allTypes())
      for (const [key, e] of ts.objects) this.indexOwners(ts.storageKey, key, undefined, e.obj);
    store.onChange((ev) => this.onChange(ev));
    for (const e of store.type(CRD_STORAGE).objects.values()) this.crdChanged(e.obj);
    for (const e of store.type('/namespaces').objects.values()) this.namespaceChanged(e.obj);
    for (const e of store.type('/pods').objects.values()) this.podChanged(e.obj);
    this.endpointSlices.start();
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.podTimers.values()) t.cancel();
    for (const t of this.retryTimers.values()) t.cancel();
    this.podTimers.clear();
    this.retryTimers.clear();
    this.queue.clear();
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves when no controller work is queued. */
  idle(): Promise<void> {
    if (this.queue.size === 0 && !this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private enqueue(key: string, fn: () => void): void {
    if (this.stopped) return;
    this.queue.set(key, fn);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private drain(): void {
    this.scheduled = false;
    this.running = true;
    let rounds = 0;
    while (this.queue.size > 0 && rounds++ < 10_000) {
      const [key, fn] = this.queue.entries().next().value as [string, () => void];
      this.queue.delete(key);
      try {
        fn();
      } catch (err) {
        this.o.logger.warn('controller work failed', { key, err: errorMessage(err) });
      }
    }
    this.running = false;
    if (this.queue.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private retryLater(key: string, ms: number, fn: () => void): void {
    if (this.stopped || this.retryTimers.has(key)) return;
    this.retryTimers.set(
      key,
      this.o.clock.setTimer(ms, () => {
        this.retryTimers.delete(key);
        this.enqueue(key, fn);
      }),
    );
  }

  private type(group: string, resource: string): ResourceType {
    const t = this.types.all().find((x) => x.group === group && x.resource === resource && x.virtual === undefined);
    if (t === undefined) throw new Error(`resource ${resource}.${group} is not served`);
    return t;
  }

  private onChange(ev: StoreEvent): void {
    this.indexOwners(ev.storageKey, ev.key, ev.prev, ev.type === 'DELETED' ? undefined : ev.obj);
    this.endpointSlices.onChange(ev);
    const o = ev.obj;
    switch (ev.storageKey) {
      case '/namespaces':
        if (ev.type !== 'DELETED') this.namespaceChanged(o);
        break;
      case CRD_STORAGE:
        if (ev.type === 'DELETED') this.crdDeleted(o);
        else this.crdChanged(o);
        break;
      case '/pods':
        if (ev.type !== 'DELETED') this.podChanged(o);
        else this.podTimers.get(ev.key)?.cancel();
        break;
      case '/serviceaccounts':
      case '/configmaps':
        if (ev.type === 'DELETED' && o.metadata.namespace !== undefined) {
          const ns = this.reg.find('/namespaces', o.metadata.namespace)?.obj;
          if (ns !== undefined) this.namespaceChanged(ns);
        }
        break;
      default:
        break;
    }
    if (ev.type === 'DELETED') {
      const uid = (ev.prev ?? o).metadata.uid;
      if (uid !== undefined && this.dependents.has(uid)) this.enqueue(`gc:${uid}`, () => this.collect(uid));
      const ns = o.metadata.namespace;
      if (ns !== undefined && ns !== '') {
        const nsObj = this.reg.find('/namespaces', ns)?.obj;
        if (nsObj?.metadata.deletionTimestamp !== undefined) this.enqueue(`ns:${ns}`, () => this.finalizeNamespace(ns));
      }
      if (ev.storageKey !== CRD_STORAGE) this.recheckTerminatingCrd(ev.storageKey);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // namespaces

  private namespaceChanged(ns: KObject): void {
    const name = ns.metadata.name ?? '';
    if (ns.metadata.deletionTimestamp !== undefined) {
      this.enqueue(`ns:${name}`, () => this.finalizeNamespace(name));
      return;
    }
    this.enqueue(`ns-content:${name}`, () => this.ensureNamespaceContent(name));
  }

  private ensureNamespaceContent(ns: string): void {
    const nsObj = this.reg.find('/namespaces', ns)?.obj;
    if (nsObj === undefined || nsObj.metadata.deletionTimestamp !== undefined) return;
    if (this.reg.find('/serviceaccounts', `${ns}/default`) === undefined) {
      this.createQuietly(this.type('', 'serviceaccounts'), ns, { metadata: { name: 'default' } });
    }
    if (this.o.caPem !== undefined) {
      const cm = this.reg.find('/configmaps', `${ns}/kube-root-ca.crt`);
      const data = { 'ca.crt': this.o.caPem };
      if (cm === undefined) {
        this.createQuietly(this.type('', 'configmaps'), ns, {
          metadata: {
            name: 'kube-root-ca.crt',
            annotations: {
              'kubernetes.io/description':
                'Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.',
            },
          },
          data,
        });
      } else if (getPath(cm.obj, ['data', 'ca.crt']) !== this.o.caPem) {
        const next = clone(cm.obj);
        next['data'] = data;
        this.reg.update(this.type('', 'configmaps'), ns, 'kube-root-ca.crt', next);
      }
    }
  }

  private createQuietly(t: ResourceType, ns: string | undefined, body: JsonObject): void {
    try {
      this.reg.create(t, ns, body);
    } catch (err) {
      if (!(
        err instanceof ApiError &&
        (err.reason === 'AlreadyExists' || err.reason === 'Forbidden' || err.reason === 'NotFound')
      ))
        throw err;
    }
  }

  /** Deletes the content of a terminating namespace; when it is empty, finalizes and removes it. */
  private finalizeNamespace(ns: string): void {
    const nsEntry = this.reg.find('/namespaces', ns);
    if (nsEntry === undefined || nsEntry.obj.metadata.deletionTimestamp === undefined) return;
    for (const t of this.types.storages()) {
      if (!t.namespaced) continue;
      const ts = this.reg.store.type(storageKeyOf(t));
      const prefix = `${ns}/`;
      for (const [key, e] of [...ts.objects]) {
        if (!key.startsWith(prefix)) continue;
        if (e.obj.metadata.deletionTimestamp !== undefined) continue;
        try {
          this.reg.delete(t, ns, e.obj.metadata.name ?? '', { propagationPolicy: 'Background' });
        } catch (err) {
          if (!(err instanceof ApiError && err.httpCode === 404)) throw err;
        }
      }
    }
    let left = 0;
    for (const t of this.types.storages()) {
      if (!t.namespaced) continue;
      for (const key of this.reg.store.type(storageKeyOf(t)).objects.keys()) if (key.startsWith(`${ns}/`)) left++;
    }
    if (left > 0) {
      this.retryLater(`ns:${ns}`, 1000, () => this.finalizeNamespace(ns));
      return;
    }
    const nsType = this.type('', 'namespaces');
    const spec = isObject(nsEntry.obj['spec']) ? nsEntry.obj['spec'] : {};
    const fin = Array.isArray(spec['finalizers']) ? spec['finalizers'].filter((f) => f !== 'kubernetes') : [];
    if (Array.isArray(spec['finalizers']) && spec['finalizers'].includes('kubernetes')) {
      this.reg.update(
        nsType,
        undefined,
        ns,
        { ...clone(nsEntry.obj), spec: { ...spec, finalizers: fin } },
        { subresource: 'finalize' },
      );
    }
    const after = this.reg.find('/namespaces', ns);
    if (after === undefined) return;
    const afterSpec = isObject(after.obj['spec']) ? after.obj['spec'] : {};
    if (
      (Array.isArray(afterSpec['finalizers']) ? afterSpec['finalizers'] : []).length === 0 &&
      (after.obj.metadata.finalizers ?? []).length === 0
    ) {
      this.reg.delete(nsType, undefined, ns, {});
    }
  }

  // ---------------------------------------------------------------------------------------------
  // CRDs

  private crdChanged(crd: KObject): void {
    const name = crd.metadata.name ?? '';
    const others = [...this.reg.store.type(CRD_STORAGE).objects.values()].map((e) => e.obj);
    const status = desiredCrdStatus(crd, others, this.o.clock.now());
    const accepted = getPath(status, ['conditions']);
    const namesOk =
      Array.isArray(accepted) &&
      accepted.some((c) => isObject(c) && c['type'] === 'NamesAccepted' && c['status'] === 'True');
    // Serving starts with the write itself so a custom resource can follow its CRD immediately.
    if (namesOk) {
      const group = getPath(crd, ['spec', 'group']);
      const plural = getPath(crd, ['spec', 'names', 'plural']);
      const served = customResourceTypes(crd);
      for (const t of this.types.all()) {
        if (t.group === group && t.resource === plural && !served.some((s) => s.version === t.version))
          this.types.remove(t.group, t.version, t.resource);
      }
      for (const t of served) this.types.add(t);
    }
    this.enqueue(`crd:${name}`, () => this.reconcileCrd(name));
  }

  private reconcileCrd(name: string): void {
    const e = this.reg.find(CRD_STORAGE, name);
    if (e === undefined) return;
    const crd = e.obj;
    const t = this.type('apiextensions.k8s.io', 'customresourcedefinitions');
    const others = [...this.reg.store.type(CRD_STORAGE).objects.values()].map((x) => x.obj);
    const status = desiredCrdStatus(crd, others, this.o.clock.now());
    if (crdStatusChanged(crd['status'], status)) {
      this.reg.update(t, undefined, name, { ...clone(crd), status }, { subresource: 'status' });
    }
    if (crd.metadata.deletionTimestamp !== undefined) this.cleanupCrd(name);
  }

  /** Deletes every custom resource of a terminating CRD, then drops its cleanup finalizer. */
  private cleanupCrd(name: string): void {
    const e = this.reg.find(CRD_STORAGE, name);
    if (e === undefined) return;
    const group = scalarString(getPath(e.obj, ['spec', 'group']));
    const plural = scalarString(getPath(e.obj, ['spec', 'names', 'plural']));
    const t = this.types.all().find((x) => x.group === group && x.resource === plural);
    const ts = this.reg.store.type(`${group}/${plural}`);
    if (t !== undefined) {
      for (const cr of [...ts.objects.values()]) {
        if (cr.obj.metadata.deletionTimestamp !== undefined) continue;
        try {
          this.reg.delete(t, cr.obj.metadata.namespace, cr.obj.metadata.name ?? '', {});
        } catch (err) {
          if (!(err instanceof ApiError && err.httpCode === 404)) throw err;
        }
      }
    }
    if (ts.objects.size > 0) {
      this.retryLater(`crd-cleanup:${name}`, 1000, () => this.cleanupCrd(name));
      return;
    }
    const fresh = this.reg.find(CRD_STORAGE, name);
    if (fresh === undefined) return;
    const next = clone(fresh.obj);
    next.metadata.finalizers = (next.metadata.finalizers ?? []).filter((f) => f !== CRD_CLEANUP_FINALIZER);
    this.reg.update(this.type('apiextensions.k8s.io', 'customresourcedefinitions'), undefined, name, next);
  }

  private recheckTerminatingCrd(storageKey: string): void {
    for (const e of this.reg.store.type(CRD_STORAGE).objects.values()) {
      if (e.obj.metadata.deletionTimestamp === undefined) continue;
      const sk = `${scalarString(getPath(e.obj, ['spec', 'group']))}/${scalarString(getPath(e.obj, ['spec', 'names', 'plural']))}`;
      if (sk === storageKey) {
        const name = e.obj.metadata.name ?? '';
        this.enqueue(`crd-cleanup:${name}`, () => this.cleanupCrd(name));
      }
    }
  }

  private crdDeleted(crd: KObject): void {
    const group = scalarString(getPath(crd, ['spec', 'group']));
    const plural = scalarString(getPath(crd, ['spec', 'names', 'plural']));
    this.types.removeResource(group, plural);
  }

  // ---------------------------------------------------------------------------------------------
  // garbage collection

  private indexOwners(sk: string, key: string, prev: KObject | undefined, next: KObject | undefined): void {
    const id = `${sk}\n${key}`;
    for (const r of prev?.metadata.ownerReferences ?? []) this.dependents.get(r.uid)?.delete(id);
    for (const r of next?.metadata.ownerReferences ?? []) {
      let s = this.dependents.get(r.uid);
      if (s === undefined) this.dependents.set(r.uid, (s = new Set()));
      s.add(id);
    }
  }

  /** Deletes the dependents of a deleted owner (background propagation). */
  private collect(uid: string): void {
    const deps = this.dependents.get(uid);
    if (deps === undefined) return;
    this.dependents.delete(uid);
    for (const id of deps) {
      const [sk = '', key = ''] = id.split('\n');
      const e = this.reg.find(sk, key);
      if (e === undefined || e.obj.metadata.deletionTimestamp !== undefined) continue;
      if (!(e.obj.metadata.ownerReferences ?? []).some((r) => r.uid === uid)) continue;
      const t = this.types.storages().find((x) => storageKeyOf(x) === sk);
      if (t === undefined) continue;
      try {
        this.reg.delete(t, e.obj.metadata.namespace, e.obj.metadata.name ?? '', { propagationPolicy: 'Background' });
      } catch (err) {
        if (!(err instanceof ApiError && err.httpCode === 404)) throw err;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // graceful Pod deletion

  private podChanged(pod: KObject): void {
    if (this.o.completePodDeletion === false) return;
    const grace = pod.metadata.deletionGracePeriodSeconds ?? 0;
    const at = pod.metadata.deletionTimestamp;
    if (at === undefined || grace <= 0) return;
    const key = `${pod.metadata.namespace ?? ''}/${pod.metadata.name ?? ''}`;
    this.podTimers.get(key)?.cancel();
    const uid = pod.metadata.uid;
    const delay = Math.max(0, Date.parse(at) - this.o.clock.now());
    this.podTimers.set(
      key,
      this.o.clock.setTimer(delay, () => {
        this.podTimers.delete(key);
        this.enqueue(`pod-grace:${key}`, () => {
          const cur = this.reg.find('/pods', key);
          if (cur === undefined || cur.obj.metadata.uid !== uid) return;
          try {
            this.reg.delete(this.type('', 'pods'), pod.metadata.namespace, pod.metadata.name ?? '', {
              gracePeriodSeconds: 0,
            });
          } catch (err) {
            if (!(err instanceof ApiError && err.httpCode === 404)) throw err;
          }
        });
      }),
    );
  }
}
