/**
 * The EndpointSlice controller (kube-controller-manager's, simplified): for every Service with a
 * selector it keeps EndpointSlices listing the Pods the selector picks, in step with their
 * readiness.
 *
 * - One slice per distinct set of resolved target ports (a named targetPort can resolve differently
 *   per Pod), named `<service>-<hash of the ports>`, labelled `kubernetes.io/service-name` and
 *   `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`, owned by the Service
 *   (garbage collection removes them with it).
 * - An Endpoint per Pod with an IP that is not Succeeded/Failed: `ready` when its Ready condition is
 *   True and it is not terminating, `serving` = Ready, `terminating` = deletionTimestamp set;
 *   nodeName and targetRef as kube-controller-manager sets them.
 * - Services without a selector are left alone (their slices are the user's).
 * Slices are written only when their content changes; managed slices nobody needs are deleted.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../../common/util/log.ts';
import { errorMessage } from '../../common/util/errors.ts';
import type { Registry } from './registry.ts';
import type { ResourceRegistry, ResourceType } from './resources.ts';
import type { StoreEvent } from './store.ts';
import { getPath, isObject, type JsonObject, type KObject } from './types.ts';

export const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
export const MANAGED_BY = 'endpointslice-controller.k8s.io';
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const SLICES = 'discovery.k8s.io/endpointslices';

interface SlicePort {
  name: string;
  protocol: string;
  port: number;
}

export class EndpointSliceController {
  private readonly reg: Registry;
  private readonly types: ResourceRegistry;
  private readonly logger: Logger;
  private readonly enqueue: (key: string, fn: () => void) => void;

  constructor(reg: Registry, types: ResourceRegistry, logger: Logger, enqueue: (key: string, fn: () => void) => void) {
    this.reg = reg;
    this.types = types;
    this.logger = logger;
    this.enqueue = enqueue;
  }

  /** Reconciles every Service already stored. */
  start(): void {
    for (const key of this.reg.store.type('/services').objects.keys()) this.queue(key);
  }

  onChange(ev: StoreEvent): void {
    switch (ev.storageKey) {
      case '/services':
        this.queue(ev.key);
        break;
      case '/pods': {
        const ns = ev.obj.metadata.namespace ?? '';
        for (const key of this.reg.store.type('/services').objects.keys()) {
          if (key.startsWith(`${ns}/`)) this.queue(key);
        }
        break;
      }
      case SLICES: {
        const labels = ev.obj.metadata.labels ?? {};
        const svc = labels[SERVICE_NAME_LABEL];
        if (labels[MANAGED_BY_LABEL] === MANAGED_BY && svc !== undefined) {
          this.queue(`${ev.obj.metadata.namespace ?? ''}/${svc}`);
        }
        break;
      }
      default:
        break;
    }
  }

  private queue(svcKey: string): void {
    this.enqueue(`eps:${svcKey}`, () => this.sync(svcKey));
  }

  private sliceType(): ResourceType {
    const t = this.types.all().find((x) => x.group === 'discovery.k8s.io' && x.resource === 'endpointslices');
    if (t === undefined) throw new Error('endpointslices are not served');
    return t;
  }

  /** Makes the managed slices of one Service what its selector and Pods say. */
  sync(svcKey: string): void {
    const [ns = '', name = ''] = svcKey.split('/');
    const svc = this.reg.find('/services', svcKey)?.obj;
    const selector = svc === undefined ? undefined : getPath(svc, ['spec', 'selector']);
    const existing = new Map<string, KObject>();
    for (const [key, e] of this.reg.store.type(SLICES).objects) {
      const labels = e.obj.metadata.labels ?? {};
      if (key.startsWith(`${ns}/`) && labels[SERVICE_NAME_LABEL] === name && labels[MANAGED_BY_LABEL] === MANAGED_BY) {
        existing.set(e.obj.metadata.name ?? '', e.obj);
      }
    }
    const t = this.sliceType();
    const desired = new Map<string, JsonObject>();
    if (svc !== undefined && isObject(selector) && Object.keys(selector).length > 0) {
      for (const [sliceName, body] of this.desiredSlices(svc, ns, name, selector)) {
        desired.set(sliceName, body);
      }
    }
    try {
      for (const [sliceName, body] of desired) {
        const cur = existing.get(sliceName);
        if (cur === undefined) {
          this.reg.create(t, ns, body);
        } else if (
          JSON.stringify(cur['endpoints'] ?? []) !== JSON.stringify(body['endpoints']) ||
          JSON.stringify(cur['ports'] ?? []) !== JSON.stringify(body['ports'])
        ) {
          const next: JsonObject = {
            ...body,
            metadata: { ...(body['metadata'] as JsonObject), resourceVersion: cur.metadata.resourceVersion },
          };
          this.reg.update(t, ns, sliceName, next);
        }
      }
      for (const sliceName of existing.keys()) {
        if (!desired.has(sliceName)) this.reg.delete(t, ns, sliceName);
      }
    } catch (err) {
      // A conflict (someone else wrote meanwhile) or a race with deletion: the resulting event requeues us.
      this.logger.debug('endpointslice sync failed', { service: svcKey, err: errorMessage(err) });
    }
  }

  private desiredSlices(
    svc: KObject,
    ns: string,
    name: string,
    selector: Record<string, unknown>,
  ): Map<string, JsonObject> {
    const ports = (getPath(svc, ['spec', 'ports']) as JsonObject[] | undefined) ?? [];
    const groups = new Map<string, { ports: SlicePort[]; endpoints: JsonObject[] }>();
    const pods = [...this.reg.store.type('/pods').objects.entries()]
      .filter(([key]) => key.startsWith(`${ns}/`))
      .map(([, e]) => e.obj)
      .sort((a, b) => ((a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1));
    for (const pod of pods) {
      const labels = pod.metadata.labels ?? {};
      if (!Object.entries(selector).every(([k, v]) => labels[k] === v)) continue;
      const ip = getPath(pod, ['status', 'podIP']);
      const phase = getPath(pod, ['status', 'phase']);
      if (typeof ip !== 'string' || ip === '' || phase === 'Succeeded' || phase === 'Failed') continue;
      const resolved: SlicePort[] = [];
      for (const p of ports) {
        const port = resolveTargetPort(pod, p);
        if (port !== undefined) {
          resolved.push({
            name: typeof p['name'] === 'string' ? p['name'] : '',
            protocol: typeof p['protocol'] === 'string' ? p['protocol'] : 'TCP',
            port,
          });
        }
      }
      const key = JSON.stringify(resolved);
      let g = groups.get(key);
      if (g === undefined) {
        g = { ports: resolved, endpoints: [] };
        groups.set(key, g);
      }
      const conditions = (getPath(pod, ['status', 'conditions']) as JsonObject[] | undefined) ?? [];
      const podReady = conditions.some((c) => c['type'] === 'Ready' && c['status'] === 'True');
      const terminating = pod.metadata.deletionTimestamp !== undefined;
      const nodeName = getPath(pod, ['spec', 'nodeName']);
      g.endpoints.push({
        addresses: [ip],
        conditions: { ready: podReady && !terminating, serving: podReady, terminating },
        ...(typeof nodeName === 'string' && nodeName !== '' ? { nodeName } : {}),
        targetRef: { kind: 'Pod', namespace: ns, name: pod.metadata.name ?? '', uid: pod.metadata.uid ?? '' },
      });
    }
    const out = new Map<string, JsonObject>();
    for (const [key, g] of groups) {
      const sliceName = `${name}-${createHash('sha1').update(key).digest('hex').slice(0, 5)}`;
      out.set(sliceName, {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: {
          name: sliceName,
          namespace: ns,
          labels: { [SERVICE_NAME_LABEL]: name, [MANAGED_BY_LABEL]: MANAGED_BY },
          ownerReferences: [
            {
              apiVersion: 'v1',
              kind: 'Service',
              name,
              uid: svc.metadata.uid ?? '',
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
        addressType: 'IPv4',
        endpoints: g.endpoints,
        ports: g.ports.map((p) => ({ name: p.name, protocol: p.protocol, port: p.port })),
      });
    }
    return out;
  }
}

/** The Pod port a Service port targets: a number, or a named container port of the Pod. */
function resolveTargetPort(pod: KObject, sp: JsonObject): number | undefined {
  const target = sp['targetPort'] ?? sp['port'];
  if (typeof target === 'number') return target;
  if (typeof target !== 'string') return undefined;
  if (/^\d+$/.test(target)) return Number(target);
  const containers = (getPath(pod, ['spec', 'containers']) as JsonObject[] | undefined) ?? [];
  for (const c of containers) {
    for (const p of (c['ports'] as JsonObject[] | undefined) ?? []) {
      if (p['name'] === target && typeof p['containerPort'] === 'number') return p['containerPort'];
    }
  }
  return undefined;
}
