/**
 * antctl's output: tables with Antrea's columns per resource (kubectl-style: upper-case headers,
 * columns padded to their widest cell plus two spaces, long lists summarized as "a, b + N more..."),
 * or the objects themselves as JSON or YAML.
 */
import { stringify } from 'yaml';
import type {
  AddressGroup,
  AppliedToGroup,
  GroupMember,
  NetworkPolicy,
  NetworkPolicyReference,
} from '../common/apis/controlplane/types.ts';
import type { OutputFormat, Resource } from './args.ts';

/** Longest list cell before it is summarized (Antrea's maxColumnLength). */
export const MAX_COLUMN_LENGTH = 62;

/** Renders rows under headers; every column but the last is padded to its widest cell + 2. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd((widths[i] ?? 0) + 2)))
      .join('')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** Sorted, comma-separated, cut with "+ N more..." beyond `max` characters; `<NONE>` when empty. */
export function summarize(list: readonly string[], max = MAX_COLUMN_LENGTH): string {
  if (list.length === 0) return '<NONE>';
  const sorted = [...list].sort();
  let out = '';
  for (const [i, item] of sorted.entries()) {
    const next = out === '' ? item : `${out}, ${item}`;
    if (next.length > max && out !== '') return `${out} + ${sorted.length - i} more...`;
    out = next;
  }
  return out;
}

export function sourceRefText(r: NetworkPolicyReference | undefined): string {
  if (r === undefined) return '';
  return r.namespace === '' ? `${r.type}:${r.name}` : `${r.type}:${r.namespace}/${r.name}`;
}

interface Stats {
  readonly packets: number;
  readonly bytes: number;
  readonly sessions: number;
}
type PolicyWithStats = NetworkPolicy & { readonly trafficStats?: Stats };

function ips(members: readonly GroupMember[], nodes: boolean): string[] {
  return members.filter((m) => (m.node !== undefined) === nodes).flatMap((m) => [...(m.ips ?? [])]);
}

function memberName(m: GroupMember): string {
  if (m.pod !== undefined) return `${m.pod.namespace}/${m.pod.name}`;
  if (m.externalEntity !== undefined) return `${m.externalEntity.namespace}/${m.externalEntity.name}`;
  if (m.node !== undefined) return m.node.name;
  return '';
}

interface Condition {
  readonly status?: string;
}

/** Healthy unless a condition is False (Unhealthy) or Unknown (Unknown), as Antrea's transform. */
function health(conditions: readonly Condition[] | undefined): string {
  if (conditions === undefined || conditions.length === 0) return '';
  if (conditions.some((c) => c.status === 'False')) return 'Unhealthy';
  return conditions.some((c) => c.status === 'Unknown') ? 'Unknown' : 'Healthy';
}

type Obj = Record<string, unknown>;
const rec = (v: unknown): Obj => (typeof v === 'object' && v !== null ? (v as Obj) : {});
const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');

/** The table of a resource (items are what the server answered, already decoded). */
export function table(resource: Resource, items: readonly unknown[]): string {
  switch (resource) {
    case 'networkpolicy': {
      const ps = items as PolicyWithStats[];
      const withStats = ps.some((p) => p.trafficStats !== undefined);
      const headers = ['NAME', 'APPLIED-TO', 'RULES', 'SOURCE', 'TIER-PRIORITY', 'PRIORITY'];
      if (withStats) headers.push('PACKETS', 'BYTES', 'SESSIONS');
      return renderTable(
        headers,
        ps.map((p) => {
          const row = [
            p.metadata.name,
            summarize(p.appliedToGroups),
            String(p.rules.length),
            sourceRefText(p.sourceRef),
            p.tierPriority === undefined ? '' : String(p.tierPriority),
            p.priority === undefined ? '' : String(p.priority),
          ];
          if (withStats) {
            const s = p.trafficStats;
            row.push(String(s?.packets ?? 0), String(s?.bytes ?? 0), String(s?.sessions ?? 0));
          }
          return row;
        }),
      );
    }
    case 'addressgroup':
      return renderTable(
        ['NAME', 'POD-IPS', 'NODE-IPS'],
        (items as AddressGroup[]).map((g) => [
          g.metadata.name,
          summarize(ips(g.groupMembers, false)),
          summarize(ips(g.groupMembers, true)),
        ]),
      );
    case 'appliedtogroup':
      return renderTable(
        ['NAME', 'PODS'],
        (items as AppliedToGroup[]).map((g) => [g.metadata.name, summarize(g.groupMembers.map(memberName))]),
      );
    case 'podinterface':
      return renderTable(
        ['NAMESPACE', 'NAME', 'INTERFACE-NAME', 'IP', 'MAC', 'OF-PORT', 'CONTAINER-ID'],
        items.map((i) => {
          const o = rec(i);
          return [
            str(o['podNamespace']),
            str(o['name']),
            str(o['interfaceName']),
            summarize(Array.isArray(o['ips']) ? o['ips'].map(str) : []),
            str(o['mac']),
            str(o['ofPort']),
            str(o['containerID']).slice(0, 12),
          ];
        }),
      );
    case 'ovsflows':
      if (items.some((i) => rec(i)['id'] !== undefined)) {
        return renderTable(
          ['ID', 'TABLE-NAME'],
          items.map((i) => [str(rec(i)['id']), str(rec(i)['name'])]),
        );
      }
      return renderTable(
        ['FLOW'],
        items.map((i) => [str(rec(i)['flow'])]),
      );
    case 'agentinfo':
      return renderTable(
        [
          'POD',
          'NODE',
          'STATUS',
          'NODE-SUBNET',
          'NETWORK-POLICIES',
          'ADDRESS-GROUPS',
          'APPLIED-TO-GROUPS',
          'LOCAL-PODS',
        ],
        items.map((i) => {
          const o = rec(i);
          const pod = rec(o['podRef']);
          const np = rec(o['networkPolicyControllerInfo']);
          const subnets = Array.isArray(o['nodeSubnets']) ? o['nodeSubnets'].map(str) : [];
          return [
            pod['name'] === '' || pod['name'] === undefined ? '' : `${str(pod['namespace'])}/${str(pod['name'])}`,
            str(rec(o['nodeRef'])['name']),
            health(o['agentConditions'] as Condition[] | undefined),
            summarize(subnets),
            str(np['networkPolicyNum'] ?? 0),
            str(np['addressGroupNum'] ?? 0),
            str(np['appliedToGroupNum'] ?? 0),
            str(o['localPodNum'] ?? 0),
          ];
        }),
      );
    case 'controllerinfo':
      return renderTable(
        ['POD', 'NODE', 'STATUS', 'NETWORK-POLICIES', 'ADDRESS-GROUPS', 'APPLIED-TO-GROUPS', 'CONNECTED-AGENTS'],
        items.map((i) => {
          const o = rec(i);
          const pod = rec(o['podRef']);
          const np = rec(o['networkPolicyControllerInfo']);
          return [
            pod['name'] === undefined ? '' : `${str(pod['namespace'])}/${str(pod['name'])}`,
            str(rec(o['nodeRef'])['name']),
            health(o['controllerConditions'] as Condition[] | undefined),
            str(np['networkPolicyNum'] ?? 0),
            str(np['addressGroupNum'] ?? 0),
            str(np['appliedToGroupNum'] ?? 0),
            str(o['connectedAgentNum'] ?? 0),
          ];
        }),
      );
  }
}

/** The text to print: a table, or the data (a single object, or a list) as JSON or YAML. */
export function render(format: OutputFormat, resource: Resource, data: unknown, single: boolean): string {
  const items = single ? [data] : (data as unknown[]);
  if (format === 'table') return table(resource, items);
  if (format === 'json') return JSON.stringify(data, null, 2) + '\n';
  return stringify(data);
}
