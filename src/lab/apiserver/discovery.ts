/**
 * Legacy discovery documents (`/api`, `/apis`, `/apis/<group>`, per group-version resource lists),
 * computed from the served types, so CRD changes show up at once. kubectl accepts these in place of
 * aggregated discovery.
 */
import { apiVersionOf, type ResourceRegistry, type ResourceType } from './resources.ts';
import type { JsonObject } from './types.ts';

/** Built-in groups first, in kube-apiserver's priority order; others (CRDs) after, alphabetically. */
const GROUP_ORDER = [
  'apiregistration.k8s.io',
  'apps',
  'events.k8s.io',
  'authentication.k8s.io',
  'authorization.k8s.io',
  'autoscaling',
  'batch',
  'certificates.k8s.io',
  'networking.k8s.io',
  'policy',
  'rbac.authorization.k8s.io',
  'storage.k8s.io',
  'admissionregistration.k8s.io',
  'apiextensions.k8s.io',
  'scheduling.k8s.io',
  'coordination.k8s.io',
  'node.k8s.io',
  'discovery.k8s.io',
  'flowcontrol.apiserver.k8s.io',
];

function groupRank(g: string): number {
  const i = GROUP_ORDER.indexOf(g);
  return i < 0 ? GROUP_ORDER.length : i;
}

export function apiVersions(serverAddress: string): JsonObject {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

function groupDoc(group: string, versions: readonly string[]): JsonObject {
  const vs = versions.map((v) => ({ groupVersion: `${group}/${v}`, version: v }));
  return { name: group, versions: vs, preferredVersion: vs[0] ?? null };
}

export function apiGroupList(types: ResourceRegistry): JsonObject {
  const groups = types
    .groups()
    .sort((a, b) => groupRank(a.group) - groupRank(b.group) || (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map((g) => groupDoc(g.group, g.versions)) };
}

export function apiGroup(types: ResourceRegistry, group: string): JsonObject | undefined {
  const g = types.groups().find((x) => x.group === group);
  if (g === undefined) return undefined;
  return { kind: 'APIGroup', apiVersion: 'v1', ...groupDoc(g.group, g.versions) };
}

const SUBRESOURCE_KINDS: Readonly<Record<string, { kind: string; group?: string; version?: string }>> = {
  token: { kind: 'TokenRequest', group: 'authentication.k8s.io', version: 'v1' },
  binding: { kind: 'Binding' },
};

function resourceEntries(t: ResourceType): JsonObject[] {
  const main: JsonObject = {
    name: t.resource,
    singularName: t.singular,
    namespaced: t.namespaced,
    kind: t.kind,
    verbs: [...t.verbs],
  };
  if (t.shortNames.length > 0) main['shortNames'] = [...t.shortNames];
  if (t.categories.length > 0) main['categories'] = [...t.categories];
  const out = [main];
  for (const [sub, verbs] of Object.entries(t.subresources)) {
    const k = SUBRESOURCE_KINDS[sub];
    const entry: JsonObject = {
      name: `${t.resource}/${sub}`,
      singularName: '',
      namespaced: t.namespaced,
      kind: k?.kind ?? t.kind,
      verbs: [...verbs],
    };
    if (k?.group !== undefined) entry['group'] = k.group;
    if (k?.version !== undefined) entry['version'] = k.version;
    out.push(entry);
  }
  return out;
}

export function apiResourceList(types: ResourceRegistry, group: string, version: string): JsonObject | undefined {
  const ts = types.groupVersion(group, version);
  if (ts.length === 0) return undefined;
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: apiVersionOf({ group, version }),
    resources: ts.flatMap(resourceEntries),
  };
}
