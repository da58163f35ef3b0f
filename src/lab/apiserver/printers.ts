/**
 * Table output (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`): the columns kubectl prints
 * for each built-in kind (kubernetes `pkg/printers/internalversion`), custom resources' printer
 * columns evaluated by a small JSONPath, and the Table object itself. Ages are rendered server-side
 * as kube-apiserver does (`duration.HumanDuration`).
 */
import type { Printer, ResourceType, TableColumn } from './resources.ts';
import { getPath, isObject, scalarString, type Json, type JsonObject, type KObject } from './types.ts';

/** kube's HumanDuration: 45s, 5m30s, 3h, 2d4h, 1y30d. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365;
    return dy === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${dy}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

function sinceTimestamp(ts: unknown, now: number): string {
  if (typeof ts !== 'string' || ts === '') return '<unknown>';
  const t = Date.parse(ts);
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now - t);
}

export function age(obj: KObject, now: number): string {
  return sinceTimestamp(obj.metadata.creationTimestamp, now);
}

const NAME_COL: TableColumn = {
  name: 'Name',
  type: 'string',
  format: 'name',
  description: 'Name must be unique within a namespace.',
};
const AGE_COL: TableColumn = {
  name: 'Age',
  type: 'string',
  description: 'CreationTimestamp is a timestamp representing the server time when this object was created.',
};

function col(name: string, type = 'string', priority = 0): TableColumn {
  return priority === 0 ? { name, type, description: '' } : { name, type, description: '', priority };
}

function arr(v: unknown): JsonObject[] {
  return Array.isArray(v) ? v.filter(isObject) : [];
}

function str(v: unknown, fallback = '<none>'): string {
  return typeof v === 'string' && v !== '' ? v : fallback;
}

/** The generic table of kinds without a printer: Name and Created At. */
export const defaultPrinter: Printer = {
  columns: [NAME_COL, { name: 'Created At', type: 'date', description: AGE_COL.description ?? '' }],
  row: (o) => [o.metadata.name ?? '', o.metadata.creationTimestamp ?? ''],
};

function podStatus(o: KObject): { ready: string; status: string; restarts: number } {
  const spec = isObject(o['spec']) ? o['spec'] : {};
  const st = isObject(o['status']) ? o['status'] : {};
  const containers = arr(spec['containers']);
  const statuses = arr(st['containerStatuses']);
  let reason = str(st['reason'], '') || str(st['phase'], 'Unknown');
  let ready = 0;
  let restarts = 0;
  const initStatuses = arr(st['initContainerStatuses']);
  let initializing = false;
  for (const [i, c] of initStatuses.entries()) {
    const state = isObject(c['state']) ? c['state'] : {};
    restarts += typeof c['restartCount'] === 'number' ? c['restartCount'] : 0;
    const term = isObject(state['terminated']) ? state['terminated'] : undefined;
    const waiting = isObject(state['waiting']) ? state['waiting'] : undefined;
    if (term !== undefined && term['exitCode'] === 0) continue;
    initializing = true;
    if (term !== undefined) reason = `Init:${str(term['reason'], '') || `ExitCode:${scalarString(term['exitCode'])}`}`;
    else if (waiting !== undefined && str(waiting['reason'], '') !== '' && waiting['reason'] !== 'PodInitializing')
      reason = `Init:${str(waiting['reason'])}`;
    else reason = `Init:${i}/${arr(spec['initContainers']).length}`;
  }
  if (!initializing) {
    let hasRunning = false;
    for (const c of [...statuses].reverse()) {
      restarts += typeof c['restartCount'] === 'number' ? c['restartCount'] : 0;
      const state = isObject(c['state']) ? c['state'] : {};
      const waiting = isObject(state['waiting']) ? state['waiting'] : undefined;
      const term = isObject(state['terminated']) ? state['terminated'] : undefined;
      if (waiting !== undefined && str(waiting['reason'], '') !== '') reason = str(waiting['reason']);
      else if (term !== undefined) reason = str(term['reason'], '') || `ExitCode:${scalarString(term['exitCode'])}`;
      else if (isObject(state['running']) && c['ready'] === true) {
        hasRunning = true;
        ready++;
      }
    }
    if (reason === 'Completed' && hasRunning) reason = 'Running';
  }
  if (o.metadata.deletionTimestamp !== undefined) reason = st['reason'] === 'NodeLost' ? 'Unknown' : 'Terminating';
  return { ready: `${ready}/${containers.length}`, status: reason, restarts };
}

function conditionStatus(o: KObject, type: string): string | undefined {
  const st = isObject(o['status']) ? o['status'] : {};
  const c = arr(st['conditions']).find((x) => x['type'] === type);
  return typeof c?.['status'] === 'string' ? c['status'] : undefined;
}

function servicePorts(spec: JsonObject): string {
  const ports = arr(spec['ports']);
  if (ports.length === 0) return '<none>';
  return ports
    .map((p) => {
      const proto = str(p['protocol'], 'TCP');
      const node = typeof p['nodePort'] === 'number' && p['nodePort'] !== 0 ? `:${p['nodePort']}` : '';
      return `${scalarString(p['port'])}${node}/${proto}`;
    })
    .join(',');
}

function selectorString(sel: unknown): string {
  if (!isObject(sel)) return '<none>';
  const parts: string[] = [];
  const ml = isObject(sel['matchLabels']) ? sel['matchLabels'] : undefined;
  const exprs = Array.isArray(sel['matchExpressions']) ? sel['matchExpressions'] : undefined;
  if (ml === undefined && exprs === undefined && Object.keys(sel).length > 0) {
    // a plain map selector (Service)
    for (const k of Object.keys(sel).sort()) parts.push(`${k}=${scalarString(sel[k])}`);
    return parts.length === 0 ? '<none>' : parts.join(',');
  }
  for (const k of Object.keys(ml ?? {}).sort()) parts.push(`${k}=${scalarString(ml?.[k])}`);
  for (const e of (exprs ?? []).filter(isObject)) {
    const vals = Array.isArray(e['values']) ? e['values'].map(scalarString).join(',') : '';
    const key = scalarString(e['key']);
    switch (scalarString(e['operator'])) {
      case 'In':
        parts.push(`${key} in (${vals})`);
        break;
      case 'NotIn':
        parts.push(`${key} notin (${vals})`);
        break;
      case 'Exists':
        parts.push(key);
        break;
      case 'DoesNotExist':
        parts.push(`!${key}`);
        break;
      default:
        break;
    }
  }
  return parts.length === 0 ? '<none>' : parts.join(',');
}

function subjects(o: KObject, kind: string): string {
  const list = arr(o['subjects']).filter((s) => s['kind'] === kind);
  if (kind === 'ServiceAccount')
    return list.map((s) => `${scalarString(s['namespace'])}/${scalarString(s['name'])}`).join(', ');
  return list.map((s) => scalarString(s['name'])).join(', ');
}

function bindingRole(o: KObject): string {
  const r = isObject(o['roleRef']) ? o['roleRef'] : {};
  return `${scalarString(r['kind'])}/${scalarString(r['name'])}`;
}

const bindingPrinter: Printer = {
  columns: [
    NAME_COL,
    col('Role'),
    AGE_COL,
    col('Users', 'string', 1),
    col('Groups', 'string', 1),
    col('ServiceAccounts', 'string', 1),
  ],
  row: (o, now) => [
    o.metadata.name ?? '',
    bindingRole(o),
    age(o, now),
    subjects(o, 'User'),
    subjects(o, 'Group'),
    subjects(o, 'ServiceAccount'),
  ],
};

/** Printers of the built-in kinds, keyed by `group/Kind`. */
export const PRINTERS: Readonly<Record<string, Printer>> = {
  '/Pod': {
    columns: [
      NAME_COL,
      col('Ready'),
      col('Status'),
      col('Restarts'),
      AGE_COL,
      col('IP', 'string', 1),
      col('Node', 'string', 1),
      col('Nominated Node', 'string', 1),
      col('Readiness Gates', 'string', 1),
    ],
    row: (o, now) => {
      const s = podStatus(o);
      const st = isObject(o['status']) ? o['status'] : {};
      const spec = isObject(o['spec']) ? o['spec'] : {};
      const gates = arr(spec['readinessGates']);
      return [
        o.metadata.name ?? '',
        s.ready,
        s.status,
        s.restarts,
        age(o, now),
        str(st['podIP']),
        str(spec['nodeName']),
        str(st['nominatedNodeName']),
        gates.length === 0
          ? '<none>'
          : `${gates.filter((g) => conditionStatus(o, scalarString(g['conditionType'])) === 'True').length}/${gates.length}`,
      ];
    },
  },
  '/Namespace': {
    columns: [NAME_COL, col('Status'), AGE_COL],
    row: (o, now) => [o.metadata.name ?? '', str(getPath(o, ['status', 'phase']), ''), age(o, now)],
  },
  '/Node': {
    columns: [
      NAME_COL,
      col('Status'),
      col('Roles'),
      AGE_COL,
      col('Version'),
      col('Internal-IP', 'string', 1),
      col('External-IP', 'string', 1),
      col('OS-Image', 'string', 1),
      col('Kernel-Version', 'string', 1),
      col('Container-Runtime', 'string', 1),
    ],
    row: (o, now) => {
      const ready = conditionStatus(o, 'Ready');
      let status = ready === 'True' ? 'Ready' : ready === 'False' ? 'NotReady' : 'Unknown';
      if (getPath(o, ['spec', 'unschedulable']) === true) status += ',SchedulingDisabled';
      const roles = Object.keys(o.metadata.labels ?? {})
        .filter((k) => k.startsWith('node-role.kubernetes.io/'))
        .map((k) => k.slice('node-role.kubernetes.io/'.length))
        .filter((r) => r !== '')
        .sort();
      const addrs = arr(getPath(o, ['status', 'addresses']));
      const addr = (t: string): string => str(addrs.find((a) => a['type'] === t)?.['address']);
      const info = getPath(o, ['status', 'nodeInfo']);
      const nodeInfo = isObject(info) ? info : {};
      return [
        o.metadata.name ?? '',
        status,
        roles.length === 0 ? '<none>' : roles.join(','),
        age(o, now),
        str(nodeInfo['kubeletVersion'], ''),
        addr('InternalIP'),
        addr('ExternalIP'),
        str(nodeInfo['osImage'], '<unknown>'),
        str(nodeInfo['kernelVersion'], '<unknown>'),
        str(nodeInfo['containerRuntimeVersion'], '<unknown>'),
      ];
    },
  },
  '/Service': {
    columns: [
      NAME_COL,
      col('Type'),
      col('Cluster-IP'),
      col('External-IP'),
      col('Port(s)'),
      AGE_COL,
      col('Selector', 'string', 1),
    ],
    row: (o, now) => {
      const spec = isObject(o['spec']) ? o['spec'] : {};
      const type = str(spec['type'], 'ClusterIP');
      const ingress = arr(getPath(o, ['status', 'loadBalancer', 'ingress']));
      let external = '<none>';
      const externalIPs = Array.isArray(spec['externalIPs']) ? spec['externalIPs'].map(scalarString) : [];
      if (type === 'ExternalName') external = str(spec['externalName']);
      else if (type === 'LoadBalancer') {
        const lb = ingress.map((i) => scalarString(i['ip'] ?? i['hostname']));
        external = [...lb, ...externalIPs].join(',') || '<pending>';
      } else if (externalIPs.length > 0) external = externalIPs.join(',');
      return [
        o.metadata.name ?? '',
        type,
        str(spec['clusterIP']),
        external,
        servicePorts(spec),
        age(o, now),
        selectorString(spec['selector']),
      ];
    },
  },
  '/ConfigMap': {
    columns: [NAME_COL, col('Data', 'integer'), AGE_COL],
    row: (o, now) => [
      o.metadata.name ?? '',
      Object.keys(isObject(o['data']) ? o['data'] : {}).length +
        Object.keys(isObject(o['binaryData']) ? o['binaryData'] : {}).length,
      age(o, now),
    ],
  },
  '/Secret': {
    columns: [NAME_COL, col('Type'), col('Data', 'integer'), AGE_COL],
    row: (o, now) => [
      o.metadata.name ?? '',
      str(o['type'], ''),
      Object.keys(isObject(o['data']) ? o['data'] : {}).length,
      age(o, now),
    ],
  },
  '/ServiceAccount': {
    columns: [NAME_COL, col('Secrets', 'integer'), AGE_COL],
    row: (o, now) => [o.metadata.name ?? '', arr(o['secrets']).length, age(o, now)],
  },
  '/Event': {
    columns: [
      col('Last Seen'),
      col('Type'),
      col('Reason'),
      col('Object'),
      col('Subobject', 'string', 1),
      col('Source', 'string', 1),
      col('Message'),
      col('First Seen', 'string', 1),
      col('Count', 'string', 1),
      col('Name', 'string', 1),
    ],
    row: (o, now) => {
      const inv = isObject(o['involvedObject']) ? o['involvedObject'] : {};
      const last = o['lastTimestamp'] ?? o['eventTime'] ?? o.metadata.creationTimestamp;
      const src = isObject(o['source']) ? o['source'] : {};
      const source = [str(src['component'], ''), str(src['host'], '')].filter((x) => x !== '').join(', ');
      return [
        sinceTimestamp(last, now),
        str(o['type'], ''),
        str(o['reason'], ''),
        `${scalarString(inv['kind']).toLowerCase()}/${scalarString(inv['name'])}`,
        str(inv['fieldPath'], ''),
        source || str(o['reportingComponent'], ''),
        str(o['message'], ''),
        sinceTimestamp(o['firstTimestamp'] ?? o['eventTime'], now),
        scalarString(o['count'] ?? 1),
        o.metadata.name ?? '',
      ];
    },
  },
  'discovery.k8s.io/EndpointSlice': {
    columns: [NAME_COL, col('AddressType'), col('Ports'), col('Endpoints'), AGE_COL],
    row: (o, now) => {
      const ports = arr(o['ports']).map((p) => scalarString(p['port']));
      const addrs = arr(o['endpoints']).flatMap((e) =>
        Array.isArray(e['addresses']) ? e['addresses'].map(scalarString) : [],
      );
      const shown = addrs.slice(0, 3).join(',') + (addrs.length > 3 ? ` + ${addrs.length - 3} more...` : '');
      return [
        o.metadata.name ?? '',
        str(o['addressType'], ''),
        ports.length === 0 ? '<unset>' : ports.join(','),
        addrs.length === 0 ? '<unset>' : shown,
        age(o, now),
      ];
    },
  },
  'coordination.k8s.io/Lease': {
    columns: [NAME_COL, col('Holder'), AGE_COL],
    row: (o, now) => [o.metadata.name ?? '', str(getPath(o, ['spec', 'holderIdentity']), ''), age(o, now)],
  },
  'networking.k8s.io/NetworkPolicy': {
    columns: [NAME_COL, col('Pod-Selector'), AGE_COL],
    row: (o, now) => {
      const s = selectorString(getPath(o, ['spec', 'podSelector']));
      return [o.metadata.name ?? '', s === '<none>' ? '<none>' : s, age(o, now)];
    },
  },
  'rbac.authorization.k8s.io/Role': {
    columns: [NAME_COL, { name: 'Created At', type: 'string', description: '' }],
    row: (o) => [o.metadata.name ?? '', o.metadata.creationTimestamp ?? ''],
  },
  'rbac.authorization.k8s.io/ClusterRole': {
    columns: [NAME_COL, { name: 'Created At', type: 'string', description: '' }],
    row: (o) => [o.metadata.name ?? '', o.metadata.creationTimestamp ?? ''],
  },
  'rbac.authorization.k8s.io/RoleBinding': bindingPrinter,
  'rbac.authorization.k8s.io/ClusterRoleBinding': bindingPrinter,
  'apiextensions.k8s.io/CustomResourceDefinition': {
    columns: [NAME_COL, { name: 'Created At', type: 'date', description: '' }],
    row: (o) => [o.metadata.name ?? '', o.metadata.creationTimestamp ?? ''],
  },
};

// ---------------------------------------------------------------------------------------------
// JSONPath for custom resources' additionalPrinterColumns

type Step =
  | { kind: 'field'; name: string }
  | { kind: 'index'; index: number }
  | { kind: 'all' }
  | { kind: 'filter'; path: string[]; op: '==' | '!='; value: string };

function parseJsonPath(expr: string): Step[] {
  let s = expr.trim();
  if (s.startsWith('{') && s.endsWith('}')) s = s.slice(1, -1);
  if (s.startsWith('$')) s = s.slice(1);
  const steps: Step[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === '.') {
      i++;
      let j = i;
      while (j < s.length && s[j] !== '.' && s[j] !== '[') j++;
      const name = s.slice(i, j);
      if (name !== '') steps.push(name === '*' ? { kind: 'all' } : { kind: 'field', name });
      i = j;
    } else if (c === '[') {
      const end = s.indexOf(']', i);
      if (end < 0) throw new Error(`unterminated [ in ${expr}`);
      const inner = s.slice(i + 1, end).trim();
      i = end + 1;
      if (inner === '*') steps.push({ kind: 'all' });
      else if (/^-?\d+$/.test(inner)) steps.push({ kind: 'index', index: Number(inner) });
      else if (/^'.*'$/.test(inner) || /^".*"$/.test(inner)) steps.push({ kind: 'field', name: inner.slice(1, -1) });
      else {
        const m = /^\?\(@\.([\w.]+)\s*(==|!=)\s*['"]?([^'"]*)['"]?\)$/.exec(inner);
        if (m === null) throw new Error(`unsupported JSONPath ${expr}`);
        steps.push({ kind: 'filter', path: (m[1] ?? '').split('.'), op: m[2] as '==' | '!=', value: m[3] ?? '' });
      }
    } else {
      let j = i;
      while (j < s.length && s[j] !== '.' && s[j] !== '[') j++;
      steps.push({ kind: 'field', name: s.slice(i, j) });
      i = j;
    }
  }
  return steps;
}

/** Evaluates a simple JSONPath (`.spec.x`, `.a[0].b`, `.a[*].b`, `.a[?(@.type=='X')].status`). */
export function evalJsonPath(obj: Json, expr: string): Json[] {
  let cur: Json[] = [obj];
  for (const step of parseJsonPath(expr)) {
    const next: Json[] = [];
    for (const v of cur) {
      if (step.kind === 'field') {
        if (isObject(v) && v[step.name] !== undefined) next.push(v[step.name] as Json);
      } else if (step.kind === 'index') {
        if (Array.isArray(v)) {
          const x = v[step.index < 0 ? v.length + step.index : step.index];
          if (x !== undefined) next.push(x);
        }
      } else if (step.kind === 'all') {
        if (Array.isArray(v)) next.push(...v);
        else if (isObject(v)) next.push(...Object.values(v).filter((x): x is Json => x !== undefined));
      } else if (Array.isArray(v)) {
        for (const x of v) {
          const got = scalarString(getPath(x, step.path));
          if ((step.op === '==') === (got === step.value)) next.push(x);
        }
      }
    }
    cur = next;
  }
  return cur;
}

export interface CrdPrinterColumn {
  readonly name: string;
  readonly type: string;
  readonly format?: string;
  readonly description?: string;
  readonly priority?: number;
  readonly jsonPath: string;
}

/** The printer of a custom resource: Name, then the CRD's additionalPrinterColumns. */
export function crdPrinter(columns: readonly CrdPrinterColumn[]): Printer {
  return {
    columns: [
      NAME_COL,
      ...columns.map((c) => {
        const out: TableColumn = {
          name: c.name,
          type: c.type,
          description: c.description ?? '',
          ...(c.format === undefined ? {} : { format: c.format }),
          ...(c.priority === undefined || c.priority === 0 ? {} : { priority: c.priority }),
        };
        return out;
      }),
    ],
    row: (o, now) => [
      o.metadata.name ?? '',
      ...columns.map((c) => {
        let vals: Json[];
        try {
          vals = evalJsonPath(o, c.jsonPath);
        } catch {
          return null;
        }
        if (vals.length === 0) return null;
        const v = vals.length === 1 ? vals[0] : vals;
        if (c.type === 'date' && typeof v === 'string') return sinceTimestamp(v, now);
        if (Array.isArray(v) || isObject(v)) return JSON.stringify(v);
        return v ?? null;
      }),
    ],
  };
}

/** Builds a Table from objects. `include` is the includeObject choice (None, Metadata, Object). */
export function toTable(
  t: Pick<ResourceType, 'printer'>,
  objs: readonly KObject[],
  now: number,
  include: 'None' | 'Metadata' | 'Object',
  listMeta: JsonObject,
): JsonObject {
  const printer = t.printer ?? defaultPrinter;
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
    columnDefinitions: printer.columns.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format ?? '',
      description: c.description ?? '',
      priority: c.priority ?? 0,
    })),
    rows: objs.map((o) => {
      const row: JsonObject = { cells: printer.row(o, now) as Json[] };
      if (include === 'Object') row['object'] = o;
      else if (include === 'Metadata') {
        row['object'] = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
      }
      return row;
    }),
  };
}
