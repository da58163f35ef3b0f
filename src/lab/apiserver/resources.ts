/**
 * What the server knows about each resource type: names and scope for discovery, the verbs and
 * subresources it serves, the field labels it can select on, how it prints as a table, and its
 * strategy (defaults, validation, generation and status rules). Built-in types are declared in
 * kinds-*.ts; custom resources get a type per served CRD version.
 */
import type { Clock } from '../../common/util/clock.ts';
import type { UserInfo } from './auth.ts';
import type { SmpNode } from './patch.ts';
import type { FieldError } from './status.ts';
import type { KObject } from './types.ts';
import type { NameRule } from './validation.ts';
import type { JSONSchemaProps } from './schema.ts';

export const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'] as const;
export type Verb = (typeof ALL_VERBS)[number];

/** Server services a strategy may use. */
export interface StrategyContext {
  readonly clock: Clock;
  /** Looks up a stored object of another type (for example a Pod's namespace). */
  readonly lookup: (storageKey: string, key: string) => KObject | undefined;
  readonly services: ServiceAllocators;
  readonly nodeCidrs: NodeCidrAllocator | undefined;
}

export interface ServiceAllocators {
  /** Reserves a specific ClusterIP, or any free one when `ip` is undefined. Returns the IP or an error text. */
  allocateIP(ip: string | undefined): { ip: string } | { error: string };
  releaseIP(ip: string): void;
  allocateNodePort(port: number | undefined): { port: number } | { error: string };
  releaseNodePort(port: number): void;
  readonly serviceCIDR: string;
}

export interface NodeCidrAllocator {
  allocate(): string | undefined;
  /** Marks a subnet a restored Node already has as used. */
  reserve(cidr: string): void;
  release(cidr: string): void;
}

export interface Strategy {
  readonly nameRule: NameRule;
  /** The kind has a status subresource: main writes keep the old status, /status writes only the status. */
  readonly statusSubresource: boolean;
  /** PUT without metadata.resourceVersion is allowed (custom resources say no: 422). */
  readonly allowUnconditionalUpdate: boolean;
  /** PUT of an absent object creates it (Leases and Events, as in kube-apiserver). */
  readonly allowCreateOnUpdate?: boolean;
  /** What part of the object bumps metadata.generation when it changes; undefined = no generation. */
  readonly generationOf?: (obj: KObject) => unknown;
  /** Defaults and server-owned fields on create (status already dropped when it is a subresource). */
  prepareForCreate?(obj: KObject, ctx: StrategyContext): void;
  /** Carries over fields the client may not change on a main-resource update. */
  prepareForUpdate?(obj: KObject, old: KObject, ctx: StrategyContext): void;
  validate?(obj: KObject, ctx: StrategyContext): FieldError[];
  validateUpdate?(obj: KObject, old: KObject, ctx: StrategyContext): FieldError[];
  /** Reserves what the object needs (IPs, ports); throws an ApiError when it cannot. */
  allocate?(obj: KObject, old: KObject | undefined, ctx: StrategyContext): void;
  /** Releases what `allocate` reserved (after a delete, or when an update changed it). */
  release?(obj: KObject, ctx: StrategyContext): void;
  /** Called with the old and new object after an update was stored (release what is no longer used). */
  afterUpdate?(obj: KObject, old: KObject, ctx: StrategyContext): void;
  /** For /status writes on built-ins: which parts come from the old object (default: spec). */
  readonly statusKeepsOld?: readonly string[];
}

export interface TableColumn {
  readonly name: string;
  readonly type: string;
  readonly format?: string;
  readonly description?: string;
  readonly priority?: number;
}

export interface Printer {
  readonly columns: readonly TableColumn[];
  row(obj: KObject, now: number): unknown[];
}

/** A handler for create-only virtual resources (reviews, TokenRequest): not stored. */
export type VirtualCreate = (body: KObject, req: VirtualRequest) => KObject;

export interface VirtualRequest {
  readonly namespace: string | undefined;
  readonly user: UserInfo;
}

export interface ResourceType {
  readonly group: string;
  readonly version: string;
  /** The plural resource name used in paths. */
  readonly resource: string;
  readonly singular: string;
  readonly kind: string;
  readonly listKind: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  readonly categories: readonly string[];
  readonly verbs: readonly Verb[];
  /** Subresources and their verbs (`status`: get/patch/update; `token`: create; ...). */
  readonly subresources: Readonly<Record<string, readonly Verb[]>>;
  /** Field labels for field selectors, and how to read each one. */
  readonly fieldLabels: ReadonlyMap<string, (obj: KObject) => string>;
  readonly strategy: Strategy;
  /** Strategic merge patch schema; undefined when the type does not accept SMP (custom resources). */
  readonly smp: SmpNode | undefined;
  readonly printer: Printer | undefined;
  /** For create-only types that are not stored. */
  readonly virtual?: VirtualCreate;
  /** For custom resources: the version's schema. */
  readonly schema?: JSONSchemaProps;
  /** The CRD this type comes from (name), for custom resources. */
  readonly crd?: string;
}

export function apiVersionOf(t: Pick<ResourceType, 'group' | 'version'>): string {
  return t.group === '' ? t.version : `${t.group}/${t.version}`;
}

/** One storage per group and resource: versions of the same resource share objects. */
export function storageKeyOf(t: Pick<ResourceType, 'group' | 'resource'>): string {
  return `${t.group}/${t.resource}`;
}

/** The field labels every kind supports. */
export function metaFieldLabels(namespaced: boolean): Map<string, (obj: KObject) => string> {
  const m = new Map<string, (obj: KObject) => string>([['metadata.name', (o) => o.metadata.name ?? '']]);
  if (namespaced) m.set('metadata.namespace', (o) => o.metadata.namespace ?? '');
  return m;
}

/** Order of versions in discovery (v1 > v1beta2 > v1beta1 > v1alpha1 > others). */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string): [number, number, number, string] => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (m === null) return [3, 0, 0, v];
    const level = m[2] === undefined ? 0 : m[2] === 'beta' ? 1 : 2;
    return [level, -Number(m[1]), -Number(m[3] ?? 0), v];
  };
  const pa = parse(a);
  const pb = parse(b);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] as number) - (pb[i] as number);
    if (d !== 0) return d;
  }
  return pa[3] < pb[3] ? -1 : pa[3] > pb[3] ? 1 : 0;
}

/** All served types, indexed for routing and discovery. */
export class ResourceRegistry {
  private readonly byPath = new Map<string, ResourceType>();
  private readonly listeners: (() => void)[] = [];

  /** Adds or replaces a type (keyed by group, version and plural). */
  add(t: ResourceType): void {
    this.byPath.set(`${t.group}/${t.version}/${t.resource}`, t);
    this.changed();
  }

  remove(group: string, version: string, resource: string): void {
    if (this.byPath.delete(`${group}/${version}/${resource}`)) this.changed();
  }

  /** Removes every version of a group/resource (a deleted CRD). */
  removeResource(group: string, resource: string): void {
    let any = false;
    for (const [k, t] of this.byPath) {
      if (t.group === group && t.resource === resource) {
        this.byPath.delete(k);
        any = true;
      }
    }
    if (any) this.changed();
  }

  get(group: string, version: string, resource: string): ResourceType | undefined {
    return this.byPath.get(`${group}/${version}/${resource}`);
  }

  all(): ResourceType[] {
    return [...this.byPath.values()];
  }

  /** The types of one group/version, sorted by resource. */
  groupVersion(group: string, version: string): ResourceType[] {
    return this.all()
      .filter((t) => t.group === group && t.version === version)
      .sort((a, b) => (a.resource < b.resource ? -1 : 1));
  }

  /** Groups (excluding core) with their versions in priority order. */
  groups(): { group: string; versions: string[] }[] {
    const m = new Map<string, Set<string>>();
    for (const t of this.byPath.values()) {
      if (t.group === '') continue;
      let s = m.get(t.group);
      if (s === undefined) m.set(t.group, (s = new Set()));
      s.add(t.version);
    }
    return [...m.entries()].map(([group, vs]) => ({ group, versions: [...vs].sort(compareVersions) }));
  }

  /** The type serving `kind` in `apiVersion` (for owner references and kubectl-style lookups). */
  byKind(apiVersion: string, kind: string): ResourceType | undefined {
    for (const t of this.byPath.values()) if (t.kind === kind && apiVersionOf(t) === apiVersion) return t;
    return undefined;
  }

  /** One served type per storage (the first version found), for controllers iterating over all data. */
  storages(): ResourceType[] {
    const seen = new Map<string, ResourceType>();
    for (const t of this.byPath.values()) {
      if (t.virtual !== undefined) continue;
      const k = storageKeyOf(t);
      const cur = seen.get(k);
      if (cur === undefined || compareVersions(t.version, cur.version) < 0) seen.set(k, t);
    }
    return [...seen.values()];
  }

  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }
}
