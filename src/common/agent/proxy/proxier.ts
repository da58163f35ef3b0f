/**
 * The proxier (Antrea's AntreaProxy, facts §5): keeps OVS in step with Services and EndpointSlices.
 *
 * Services and EndpointSlices are fed in with {@link Proxier.setService} / {@link Proxier.setSlice}
 * (and their deletions); each change marks its Service dirty. {@link Proxier.sync} recomputes the
 * dirty Services only and applies everything that changed in ONE atomic bundle:
 *   - per Service port (`ns/name:port/PROTO`, flow-cache key `svc/...`): its ServiceLB flows
 *     (ClusterIP, NodePort) and its select groups (cluster, and local for a traffic policy Local);
 *   - per Endpoint (`ep/ip:port/PROTO`) its EndpointDNAT flow and per local Endpoint IP (`hp/ip`) its
 *     hairpin flow, reference-counted across the Service ports that use them.
 * Removals are planned before additions, so an address or NodePort moving from one Service to
 * another in the same sync never collides. The record changes only once the bundle committed; a
 * failed sync leaves everything as it was and keeps the Services dirty for the next attempt.
 *
 * Endpoint selection follows kube-proxy: ready Endpoints (ready unset counts as ready); when none is
 * ready, the serving and terminating ones. Headless Services, ExternalName Services, Services with
 * the `service.kubernetes.io/service-proxy-name` label and ports of other protocols or IP families
 * are skipped. A Service port without Endpoints gets a group whose only bucket makes the datapath
 * reject the connection.
 */
import { type Logger, nullLogger } from '../../util/log.ts';
import { errorMessage } from '../../util/errors.ts';
import { ipFamily } from '../../util/ip.ts';
import {
  type EndpointSlice,
  objectKey,
  SERVICE_NAME_LABEL,
  type Service,
  type ServicePort,
} from '../../k8s/objects.ts';
import type { Flow } from '../../ovs/openflow/flow.ts';
import type { Group } from '../../ovs/openflow/group.ts';
import type { RealizedPipeline } from '../openflow/framework.ts';
import type { PlanBuilder } from '../openflow/store.ts';
import {
  type EndpointSpec,
  isServiceProtocol,
  MAX_AFFINITY_TIMEOUT,
  type ServiceFeature,
  type ServiceProtocol,
} from '../openflow/service.ts';

/** What the proxier needs from the bridge client (BridgeClient implements it). */
export interface ServiceDatapath {
  readonly pipeline: RealizedPipeline;
  /** Applies the changes as one atomic bundle; on failure nothing changes. */
  change(build: (b: PlanBuilder) => void): Promise<void>;
}

/** Host configuration NodePorts need (Linux: DNAT of Node address:port to the virtual NodePort IP). */
export interface NodePortHost {
  /** Makes the set of NodePorts the host redirects into OVS exactly `ports`. Idempotent. */
  setNodePorts(ports: readonly NodePortKey[]): Promise<void>;
}

export interface NodePortKey {
  readonly port: number;
  readonly protocol: ServiceProtocol;
}

export interface ProxierOptions {
  readonly datapath: ServiceDatapath;
  readonly feature: ServiceFeature;
  /** This Node's name (Endpoints with this nodeName are local). */
  readonly nodeName: string;
  readonly nodePortHost?: NodePortHost;
  /** `ns/name` or ClusterIPs to ignore (antreaProxy.skipServices). */
  readonly skipServices?: readonly string[];
  readonly logger?: Logger;
}

/** Kubernetes' default session-affinity timeout (3 hours). */
export const DEFAULT_AFFINITY_TIMEOUT = 10800;

/** One Service port as the datapath needs it. */
export interface DesiredPort {
  readonly key: string;
  readonly clusterIP: string;
  readonly port: number;
  readonly protocol: ServiceProtocol;
  readonly nodePort?: number;
  readonly affinityTimeout?: number;
  readonly internalLocal: boolean;
  readonly externalLocal: boolean;
  /** Every usable Endpoint (sorted). */
  readonly cluster: readonly EndpointSpec[];
  /** The usable Endpoints on this Node (sorted). */
  readonly local: readonly EndpointSpec[];
}

interface InstalledPort {
  readonly desired: DesiredPort;
  readonly fingerprint: string;
  /** Group role ("cluster" | "local") → group id. */
  readonly groups: ReadonlyMap<string, number>;
  /** Reference-counted flow keys (Endpoint DNAT, hairpin) this port holds. */
  readonly refs: readonly string[];
}

/** The Service ports a Service contributes, given its slices (empty when the Service is skipped). */
export function desiredPorts(
  svc: Service,
  slices: Iterable<EndpointSlice>,
  nodeName: string,
  skip: ReadonlySet<string> = new Set(),
): DesiredPort[] {
  const spec = svc.spec;
  const ns = svc.metadata?.namespace ?? '';
  const name = svc.metadata?.name ?? '';
  const labels = svc.metadata?.labels ?? {};
  if (spec === undefined || spec.type === 'ExternalName') return [];
  if ('service.kubernetes.io/headless' in labels || 'service.kubernetes.io/service-proxy-name' in labels) return [];
  const clusterIP = spec.clusterIP ?? '';
  if (clusterIP === '' || clusterIP === 'None' || ipFamily(clusterIP) !== 4) return [];
  if (skip.has(`${ns}/${name}`) || skip.has(clusterIP)) return [];
  const sliceList = [...slices].filter((s) => s.addressType === 'IPv4');
  const affinity =
    spec.sessionAffinity === 'ClientIP'
      ? Math.min(
          Math.max(1, spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT),
          MAX_AFFINITY_TIMEOUT,
        )
      : undefined;
  const out: DesiredPort[] = [];
  for (const sp of spec.ports ?? []) {
    const protocol = sp.protocol ?? 'TCP';
    if (!isServiceProtocol(protocol)) continue;
    const cluster = endpointsOf(sliceList, sp, protocol, nodeName);
    const nodePort =
      (spec.type === 'NodePort' || spec.type === 'LoadBalancer') && (sp.nodePort ?? 0) > 0 ? sp.nodePort : undefined;
    out.push({
      key: `${ns}/${name}:${sp.name ?? ''}/${protocol}`,
      clusterIP,
      port: sp.port,
      protocol,
      ...(nodePort === undefined ? {} : { nodePort }),
      ...(affinity === undefined ? {} : { affinityTimeout: affinity }),
      internalLocal: spec.internalTrafficPolicy === 'Local',
      externalLocal: spec.externalTrafficPolicy === 'Local',
      cluster,
      local: cluster.filter((e) => e.local),
    });
  }
  return out;
}

function endpointsOf(
  slices: readonly EndpointSlice[],
  sp: ServicePort,
  protocol: ServiceProtocol,
  nodeName: string,
): EndpointSpec[] {
  const ready = new Map<string, EndpointSpec>();
  const terminating = new Map<string, EndpointSpec>();
  for (const slice of slices) {
    const port = (slice.ports ?? []).find(
      (p) => (p.name ?? '') === (sp.name ?? '') && (p.protocol ?? 'TCP') === protocol,
    );
    if (port?.port === undefined) continue;
    for (const ep of slice.endpoints ?? []) {
      const ip = ep.addresses[0];
      if (ip === undefined || ipFamily(ip) !== 4) continue;
      const c = ep.conditions ?? {};
      const spec: EndpointSpec = { ip, port: port.port, local: ep.nodeName === nodeName };
      const k = `${ip}:${port.port}`;
      if (c.ready !== false) ready.set(k, spec);
      else if ((c.serving ?? false) && (c.terminating ?? false)) terminating.set(k, spec);
    }
  }
  const chosen = ready.size > 0 ? ready : terminating;
  return [...chosen.values()].sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : a.port - b.port));
}

/** Allocates group ids: freed ids first, then the next unused one. */
export class GroupIdAllocator {
  private next = 1;
  private readonly free: number[] = [];

  allocate(): number {
    return this.free.pop() ?? this.next++;
  }
  release(id: number): void {
    this.free.push(id);
  }
}

export interface SyncResult {
  /** Service ports installed or changed. */
  readonly changed: number;
  /** Service ports removed. */
  readonly removed: number;
}

export class Proxier {
  private readonly o: ProxierOptions;
  private readonly logger: Logger;
  private readonly services = new Map<string, Service>();
  /** Service key → slice key → slice. */
  private readonly slices = new Map<string, Map<string, EndpointSlice>>();
  private readonly dirty = new Set<string>();
  private readonly installed = new Map<string, Map<string, InstalledPort>>();
  private readonly refCounts = new Map<string, number>();
  private readonly groupIds = new GroupIdAllocator();
  private readonly skip: ReadonlySet<string>;
  private installedNodePorts = '';
  private syncs = 0;

  constructor(o: ProxierOptions) {
    this.o = o;
    this.logger = (o.logger ?? nullLogger).child({ component: 'proxier' });
    this.skip = new Set(o.skipServices ?? []);
  }

  /** Number of successful syncs. */
  get syncCount(): number {
    return this.syncs;
  }

  get pendingChanges(): number {
    return this.dirty.size;
  }

  /** Adds or replaces a Service. */
  setService(svc: Service): void {
    const k = objectKey(svc);
    this.services.set(k, svc);
    this.dirty.add(k);
  }

  deleteService(svc: Service): void {
    const k = objectKey(svc);
    this.services.delete(k);
    this.dirty.add(k);
  }

  /** Adds or replaces an EndpointSlice (slices without the service-name label are ignored). */
  setSlice(slice: EndpointSlice, old?: EndpointSlice): void {
    if (old !== undefined) this.deleteSlice(old);
    const svcKey = sliceServiceKey(slice);
    if (svcKey === undefined) return;
    let m = this.slices.get(svcKey);
    if (m === undefined) {
      m = new Map<string, EndpointSlice>();
      this.slices.set(svcKey, m);
    }
    m.set(objectKey(slice), slice);
    this.dirty.add(svcKey);
  }

  deleteSlice(slice: EndpointSlice): void {
    const svcKey = sliceServiceKey(slice);
    if (svcKey === undefined) return;
    const m = this.slices.get(svcKey);
    if (m?.delete(objectKey(slice)) !== true) return;
    if (m.size === 0) this.slices.delete(svcKey);
    this.dirty.add(svcKey);
  }

  /** The Service ports installed now (for tests and antctl). */
  installedPorts(): DesiredPort[] {
    const out: DesiredPort[] = [];
    for (const m of this.installed.values()) for (const p of m.values()) out.push(p.desired);
    return out;
  }

  /** The group id of a Service port's role ("cluster" or "local"), if installed. */
  groupId(portKey: string, role: 'cluster' | 'local' = 'cluster'): number | undefined {
    const svcKey = portKey.slice(0, portKey.indexOf(':'));
    return this.installed.get(svcKey)?.get(portKey)?.groups.get(role);
  }

  /**
   * Programs the changes since the last successful sync in one bundle. Rejects (leaving the record
   * and OVS unchanged) if the bundle fails; the changes stay pending.
   */
  async sync(): Promise<SyncResult> {
    if (this.dirty.size === 0 && this.syncs > 0) {
      await this.syncNodePorts();
      return { changed: 0, removed: 0 };
    }
    const keys = [...this.dirty];
    this.dirty.clear();
    const p = this.o.datapath.pipeline;
    const f = this.o.feature;
    const newInstalled = new Map<string, Map<string, InstalledPort>>();
    const refDelta = new Map<string, number>();
    const refBuild = new Map<string, () => Flow[]>();
    const allocated: number[] = [];
    const released: number[] = [];
    const removals: { key: string; port: InstalledPort }[] = [];
    const upserts: { key: string; port: InstalledPort; old: InstalledPort | undefined; groups: Group[] }[] = [];
    let removed = 0;
    try {
      for (const svcKey of keys) {
        const svc = this.services.get(svcKey);
        const want =
          svc === undefined
            ? []
            : desiredPorts(svc, this.slices.get(svcKey)?.values() ?? [], this.o.nodeName, this.skip);
        const have = this.installed.get(svcKey) ?? new Map<string, InstalledPort>();
        const next = new Map<string, InstalledPort>();
        const wantKeys = new Set(want.map((d) => d.key));
        for (const [k, port] of have) {
          if (wantKeys.has(k)) continue;
          removals.push({ key: k, port });
          for (const r of port.refs) refDelta.set(r, (refDelta.get(r) ?? 0) - 1);
          for (const id of port.groups.values()) released.push(id);
          removed++;
        }
        for (const d of want) {
          const old = have.get(d.key);
          const fingerprint = JSON.stringify(d);
          if (old !== undefined && old.fingerprint === fingerprint) {
            next.set(d.key, old);
            continue;
          }
          const groups = new Map<string, number>();
          const idFor = (role: string): number => {
            const prev = old?.groups.get(role);
            if (prev !== undefined) return prev;
            const id = this.groupIds.allocate();
            allocated.push(id);
            return id;
          };
          groups.set('cluster', idFor('cluster'));
          if (d.internalLocal || (d.externalLocal && d.nodePort !== undefined)) groups.set('local', idFor('local'));
          for (const [role, id] of old?.groups ?? []) if (!groups.has(role)) released.push(id);
          const refs: string[] = [];
          for (const ep of d.cluster) {
            const k = `ep/${ep.ip}:${ep.port}/${d.protocol}`;
            refs.push(k);
            refBuild.set(k, () => f.endpointFlows(p, ep, d.protocol));
            if (ep.local) {
              const h = `hp/${ep.ip}`;
              if (!refs.includes(h)) refs.push(h);
              refBuild.set(h, () => f.hairpinFlows(p, ep.ip));
            }
          }
          for (const r of refs) refDelta.set(r, (refDelta.get(r) ?? 0) + 1);
          for (const r of old?.refs ?? []) refDelta.set(r, (refDelta.get(r) ?? 0) - 1);
          const affinity = d.affinityTimeout !== undefined;
          const groupList: Group[] = [f.serviceGroup(p, groups.get('cluster') ?? 0, d.cluster, affinity)];
          const localId = groups.get('local');
          if (localId !== undefined) groupList.push(f.serviceGroup(p, localId, d.local, affinity));
          const port: InstalledPort = { desired: d, fingerprint, groups, refs };
          upserts.push({ key: d.key, port, old, groups: groupList });
          next.set(d.key, port);
        }
        newInstalled.set(svcKey, next);
      }

      const flowsOf = (port: InstalledPort): Flow[] => {
        const d = port.desired;
        const cluster = port.groups.get('cluster') ?? 0;
        const local = port.groups.get('local');
        const base = {
          protocol: d.protocol,
          ...(d.affinityTimeout === undefined ? {} : { affinityTimeout: d.affinityTimeout }),
        };
        const flows = f.serviceFlows(p, {
          ...base,
          ip: d.clusterIP,
          port: d.port,
          nodePort: false,
          groupId: d.internalLocal && local !== undefined ? local : cluster,
        });
        if (d.nodePort !== undefined && f.nodePortEnabled) {
          const etpLocal = d.externalLocal && local !== undefined;
          flows.push(
            ...f.serviceFlows(p, {
              ...base,
              ip: d.clusterIP,
              port: d.nodePort,
              nodePort: true,
              groupId: etpLocal ? local : cluster,
              ...(etpLocal ? { localClientsGroupId: cluster } : {}),
            }),
          );
        }
        return flows;
      };
      const serviceFlows = upserts.map((u) => ({ u, flows: flowsOf(u.port) }));
      const newCounts = new Map<string, number>();
      for (const [k, d] of refDelta) newCounts.set(k, (this.refCounts.get(k) ?? 0) + d);

      await this.o.datapath.change((b) => {
        // Removals first: ServiceLB flows, then groups (after the flows that used them).
        for (const r of removals) b.deleteFlows(svcFlowKey(r.key));
        for (const [k, n] of newCounts) if (n <= 0 && (this.refCounts.get(k) ?? 0) > 0) b.deleteFlows(k);
        for (const r of removals) for (const id of r.port.groups.values()) b.deleteGroup(id);
        for (const { u } of serviceFlows) {
          for (const [role, id] of u.old?.groups ?? []) if (!u.port.groups.has(role)) b.deleteGroup(id);
        }
        // Then additions: Endpoint flows, groups, ServiceLB flows.
        for (const [k, n] of newCounts) {
          if (n > 0 && (this.refCounts.get(k) ?? 0) <= 0) b.addFlows(k, refBuild.get(k)?.() ?? []);
        }
        for (const { u, flows } of serviceFlows) {
          for (const g of u.groups) b.setGroup(g);
          b.replaceFlows(svcFlowKey(u.key), flows);
        }
      });
    } catch (err) {
      for (const id of allocated) this.groupIds.release(id);
      for (const k of keys) this.dirty.add(k);
      this.logger.warn('proxy sync failed', { err: errorMessage(err), services: keys.length });
      throw err;
    }
    // Committed: record it.
    for (const [svcKey, m] of newInstalled) {
      if (m.size === 0) this.installed.delete(svcKey);
      else this.installed.set(svcKey, m);
    }
    for (const [k, d] of refDelta) {
      const n = (this.refCounts.get(k) ?? 0) + d;
      if (n <= 0) this.refCounts.delete(k);
      else this.refCounts.set(k, n);
    }
    for (const id of released) this.groupIds.release(id);
    this.syncs++;
    await this.syncNodePorts();
    if (upserts.length + removed > 0) {
      this.logger.debug('proxy synced', { services: keys.length, changed: upserts.length, removed });
    }
    return { changed: upserts.length, removed };
  }

  private async syncNodePorts(): Promise<void> {
    const host = this.o.nodePortHost;
    if (host === undefined || !this.o.feature.nodePortEnabled) return;
    const ports = new Map<string, NodePortKey>();
    for (const m of this.installed.values()) {
      for (const port of m.values()) {
        const d = port.desired;
        if (d.nodePort !== undefined)
          ports.set(`${d.protocol}:${d.nodePort}`, { port: d.nodePort, protocol: d.protocol });
      }
    }
    const text = [...ports.keys()].sort().join(',');
    if (text === this.installedNodePorts) return;
    await host.setNodePorts([...ports.values()]);
    this.installedNodePorts = text;
  }
}

/** The flow-cache key of a Service port's ServiceLB flows. */
export function svcFlowKey(portKey: string): string {
  return `svc/${portKey}`;
}

function sliceServiceKey(slice: EndpointSlice): string | undefined {
  const svc = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
  const ns = slice.metadata?.namespace;
  if (svc === undefined || svc === '' || ns === undefined) return undefined;
  return `${ns}/${svc}`;
}
