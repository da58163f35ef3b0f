/**
 * The built-in resource types: names, scope, verbs, field labels, printers and strategies (the
 * defaults our components read, validation with field errors, status and generation rules, ClusterIP
 * and NodePort allocation). Virtual review types are added by the auth module, CRDs by crd.ts.
 */
import { isIPv4, isIPv6 } from './schema.ts';
import { SMP_SCHEMAS } from './patch.ts';
import { PRINTERS } from './printers.ts';
import {
  ALL_VERBS,
  metaFieldLabels,
  type ResourceType,
  type Strategy,
  type StrategyContext,
  type Verb,
} from './resources.ts';
import { fieldErr, invalid, type FieldError } from './status.ts';
import {
  clone,
  deepEqual,
  getPath,
  isObject,
  scalarString,
  type Json,
  type JsonObject,
  type KObject,
} from './types.ts';
import { dns1035Label, dns1123Label, dns1123Subdomain, pathSegmentName, validateLabels } from './validation.ts';
import { labelKeyError } from './selectors.ts';

interface BuiltinDef {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly shortNames?: readonly string[];
  readonly categories?: readonly string[];
  readonly verbs?: readonly Verb[];
  readonly subresources?: Readonly<Record<string, readonly Verb[]>>;
  readonly fieldLabels?: Readonly<Record<string, (obj: KObject) => string>>;
  readonly strategy?: Partial<Strategy>;
}

const STATUS_VERBS: readonly Verb[] = ['get', 'patch', 'update'];

function builtin(d: BuiltinDef): ResourceType {
  const key = `${d.group}/${d.kind}`;
  const labels = metaFieldLabels(d.namespaced);
  for (const [k, f] of Object.entries(d.fieldLabels ?? {})) labels.set(k, f);
  return {
    group: d.group,
    version: d.version,
    resource: d.resource,
    singular: d.kind.toLowerCase(),
    kind: d.kind,
    listKind: `${d.kind}List`,
    namespaced: d.namespaced,
    shortNames: d.shortNames ?? [],
    categories: d.categories ?? [],
    verbs: d.verbs ?? ALL_VERBS,
    subresources: d.subresources ?? {},
    fieldLabels: labels,
    strategy: { nameRule: dns1123Subdomain, statusSubresource: false, allowUnconditionalUpdate: true, ...d.strategy },
    smp: SMP_SCHEMAS[key],
    printer: PRINTERS[key],
  };
}

function obj(o: JsonObject, key: string): JsonObject {
  const v = o[key];
  if (isObject(v)) return v;
  const created: JsonObject = {};
  o[key] = created;
  return created;
}

function list(v: unknown): JsonObject[] {
  return Array.isArray(v) ? v.filter(isObject) : [];
}

function setDefault(o: JsonObject, key: string, value: Json): void {
  if (o[key] === undefined || o[key] === null) o[key] = value;
}

const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
function portNameError(name: string): string | undefined {
  if (name.length > 15) return 'must be no more than 15 characters';
  if (!IANA_SVC_NAME.test(name)) return 'must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)';
  if (name.includes('--')) return 'must not contain consecutive hyphens';
  if (!/[a-z]/.test(name)) return 'must contain at least one letter (a-z)';
  return undefined;
}

const PROTOCOLS = ['SCTP', 'TCP', 'UDP'];

function validatePort(v: unknown, field: string, errs: FieldError[], allowZero = false): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < (allowZero ? 0 : 1) || v > 65535) {
    errs.push(fieldErr.invalid(field, v, 'must be between 1 and 65535, inclusive'));
  }
}

function validateIntOrStringPort(v: unknown, field: string, errs: FieldError[]): void {
  if (typeof v === 'string') {
    const e = portNameError(v);
    if (e !== undefined) errs.push(fieldErr.invalid(field, v, e));
  } else validatePort(v, field, errs);
}

// ---------------------------------------------------------------------------------------------
// Namespaces

export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

const namespaces = builtin({
  group: '',
  version: 'v1',
  resource: 'namespaces',
  kind: 'Namespace',
  namespaced: false,
  shortNames: ['ns'],
  subresources: { status: STATUS_VERBS, finalize: ['update'] },
  fieldLabels: { 'status.phase': (o) => scalarString(getPath(o, ['status', 'phase'])) },
  strategy: {
    nameRule: dns1123Label,
    statusSubresource: true,
    prepareForCreate(o) {
      o['status'] = { phase: 'Active' };
      const spec = obj(o, 'spec');
      const fin = Array.isArray(spec['finalizers']) ? spec['finalizers'] : [];
      if (!fin.includes('kubernetes')) fin.push('kubernetes');
      spec['finalizers'] = fin;
      o.metadata.labels = { ...o.metadata.labels, [NAMESPACE_NAME_LABEL]: o.metadata.name ?? '' };
    },
    prepareForUpdate(o, old) {
      const spec = obj(o, 'spec');
      spec['finalizers'] = clone(getPath(old, ['spec', 'finalizers']) as Json) ?? [];
      o.metadata.labels = { ...o.metadata.labels, [NAMESPACE_NAME_LABEL]: o.metadata.name ?? '' };
    },
  },
});

// ---------------------------------------------------------------------------------------------
// Pods

function defaultContainer(c: JsonObject): void {
  const image = typeof c['image'] === 'string' ? c['image'] : '';
  const tagged = /:[^/]+$/.test(image.split('@')[0] ?? '') || image.includes('@');
  setDefault(c, 'imagePullPolicy', !tagged || image.endsWith(':latest') ? 'Always' : 'IfNotPresent');
  setDefault(c, 'terminationMessagePath', '/dev/termination-log');
  setDefault(c, 'terminationMessagePolicy', 'File');
  setDefault(c, 'resources', {});
  for (const p of list(c['ports'])) setDefault(p, 'protocol', 'TCP');
}

function qosClass(spec: JsonObject): string {
  const cs = [...list(spec['containers']), ...list(spec['initContainers'])];
  let any = false;
  let guaranteed = cs.length > 0;
  for (const c of cs) {
    const r = isObject(c['resources']) ? c['resources'] : {};
    const req = isObject(r['requests']) ? r['requests'] : {};
    const lim = isObject(r['limits']) ? r['limits'] : {};
    if (Object.keys(req).length > 0 || Object.keys(lim).length > 0) any = true;
    for (const res of ['cpu', 'memory']) {
      if (lim[res] === undefined || (req[res] !== undefined && !deepEqual(req[res], lim[res]))) guaranteed = false;
    }
  }
  return guaranteed ? 'Guaranteed' : any ? 'Burstable' : 'BestEffort';
}

const DEFAULT_TOLERATIONS: JsonObject[] = [
  { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
  { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
];

function validateContainers(
  cs: unknown,
  field: string,
  required: boolean,
  errs: FieldError[],
  names: Set<string>,
): void {
  if (cs === undefined && !required) return;
  if (!Array.isArray(cs) || (required && cs.length === 0)) {
    errs.push(fieldErr.required(field));
    return;
  }
  cs.forEach((c, i) => {
    const p = `${field}[${i}]`;
    if (!isObject(c)) {
      errs.push(fieldErr.invalid(p, c, 'must be an object'));
      return;
    }
    const name = c['name'];
    if (typeof name !== 'string' || name === '') errs.push(fieldErr.required(`${p}.name`));
    else {
      const e = dns1123Label(name);
      if (e !== undefined) errs.push(fieldErr.invalid(`${p}.name`, name, e));
      if (names.has(name)) errs.push(fieldErr.duplicate(`${p}.name`, name));
      names.add(name);
    }
    if (typeof c['image'] !== 'string' || c['image'].trim() === '') errs.push(fieldErr.required(`${p}.image`));
    const portNames = new Set<string>();
    list(c['ports']).forEach((port, j) => {
      const pp = `${p}.ports[${j}]`;
      validatePort(port['containerPort'], `${pp}.containerPort`, errs);
      if (port['hostPort'] !== undefined && port['hostPort'] !== 0)
        validatePort(port['hostPort'], `${pp}.hostPort`, errs);
      if (!PROTOCOLS.includes(scalarString(port['protocol']))) {
        errs.push(fieldErr.notSupported(`${pp}.protocol`, port['protocol'], PROTOCOLS));
      }
      if (typeof port['name'] === 'string' && port['name'] !== '') {
        const e = portNameError(port['name']);
        if (e !== undefined) errs.push(fieldErr.invalid(`${pp}.name`, port['name'], e));
        if (portNames.has(port['name'])) errs.push(fieldErr.duplicate(`${pp}.name`, port['name']));
        portNames.add(port['name']);
      }
    });
    list(c['env']).forEach((e, j) => {
      if (typeof e['name'] !== 'string' || e['name'] === '') errs.push(fieldErr.required(`${p}.env[${j}].name`));
    });
  });
}

/** The Pod spec fields an update may change (apimachinery's ValidatePodUpdate). */
function mutablePodSpecView(spec: JsonObject): JsonObject {
  const s = clone(spec);
  for (const key of ['containers', 'initContainers']) {
    for (const c of list(s[key])) delete c['image'];
  }
  delete s['activeDeadlineSeconds'];
  delete s['tolerations'];
  delete s['terminationGracePeriodSeconds'];
  return s;
}

const POD_FIELD = (path: string[]) => (o: KObject) => scalarString(getPath(o, path));

const pods = builtin({
  group: '',
  version: 'v1',
  resource: 'pods',
  kind: 'Pod',
  namespaced: true,
  shortNames: ['po'],
  categories: ['all'],
  subresources: { status: STATUS_VERBS, binding: ['create'] },
  fieldLabels: {
    'spec.nodeName': POD_FIELD(['spec', 'nodeName']),
    'spec.restartPolicy': POD_FIELD(['spec', 'restartPolicy']),
    'spec.schedulerName': POD_FIELD(['spec', 'schedulerName']),
    'spec.serviceAccountName': POD_FIELD(['spec', 'serviceAccountName']),
    'spec.hostNetwork': (o) => (getPath(o, ['spec', 'hostNetwork']) === true ? 'true' : 'false'),
    'status.phase': POD_FIELD(['status', 'phase']),
    'status.podIP': POD_FIELD(['status', 'podIP']),
    'status.podIPs': (o) =>
      list(getPath(o, ['status', 'podIPs']))
        .map((x) => scalarString(x['ip']))
        .join(','),
    'status.nominatedNodeName': POD_FIELD(['status', 'nominatedNodeName']),
  },
  strategy: {
    statusSubresource: true,
    statusKeepsOld: ['spec'],
    generationOf: (o) => o['spec'],
    prepareForCreate(o) {
      const spec = obj(o, 'spec');
      setDefault(spec, 'restartPolicy', 'Always');
      setDefault(spec, 'dnsPolicy', 'ClusterFirst');
      setDefault(spec, 'terminationGracePeriodSeconds', 30);
      setDefault(spec, 'schedulerName', 'default-scheduler');
      setDefault(
        spec,
        'serviceAccountName',
        typeof spec['serviceAccount'] === 'string' ? spec['serviceAccount'] : 'default',
      );
      spec['serviceAccount'] = spec['serviceAccountName'] ?? 'default';
      setDefault(spec, 'securityContext', {});
      setDefault(spec, 'enableServiceLinks', true);
      setDefault(spec, 'preemptionPolicy', 'PreemptLowerPriority');
      setDefault(spec, 'priority', 0);
      const tol = Array.isArray(spec['tolerations']) ? spec['tolerations'].filter(isObject) : [];
      for (const t of DEFAULT_TOLERATIONS) {
        if (!tol.some((x) => x['key'] === t['key'] && x['effect'] === 'NoExecute')) tol.push(clone(t));
      }
      spec['tolerations'] = tol;
      for (const c of [...list(spec['containers']), ...list(spec['initContainers'])]) defaultContainer(c);
      o['status'] = { phase: 'Pending', qosClass: qosClass(spec) };
    },
    validate(o) {
      const errs: FieldError[] = [];
      const spec = o['spec'];
      if (!isObject(spec)) return [fieldErr.required('spec')];
      const names = new Set<string>();
      validateContainers(spec['containers'], 'spec.containers', true, errs, names);
      validateContainers(spec['initContainers'], 'spec.initContainers', false, errs, names);
      const rp = spec['restartPolicy'];
      if (!['Always', 'OnFailure', 'Never'].includes(scalarString(rp))) {
        errs.push(fieldErr.notSupported('spec.restartPolicy', rp, ['Always', 'OnFailure', 'Never']));
      }
      const dp = spec['dnsPolicy'];
      const dnsPolicies = ['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None'];
      if (!dnsPolicies.includes(scalarString(dp))) errs.push(fieldErr.notSupported('spec.dnsPolicy', dp, dnsPolicies));
      const nodeName = spec['nodeName'];
      if (typeof nodeName === 'string' && nodeName !== '') {
        const e = dns1123Subdomain(nodeName);
        if (e !== undefined) errs.push(fieldErr.invalid('spec.nodeName', nodeName, e));
      }
      const grace = spec['terminationGracePeriodSeconds'];
      if (grace !== undefined && (typeof grace !== 'number' || !Number.isInteger(grace))) {
        errs.push(fieldErr.invalid('spec.terminationGracePeriodSeconds', grace, 'must be an integer'));
      }
      if (spec['hostNetwork'] !== undefined && typeof spec['hostNetwork'] !== 'boolean') {
        errs.push(fieldErr.invalid('spec.hostNetwork', spec['hostNetwork'], 'must be a boolean'));
      }
      errs.push(...validateLabels(spec['nodeSelector'], 'spec.nodeSelector'));
      return errs;
    },
    validateUpdate(o, old) {
      const ns = isObject(o['spec']) ? o['spec'] : {};
      const os = isObject(old['spec']) ? old['spec'] : {};
      if (!deepEqual(mutablePodSpecView(ns), mutablePodSpecView(os))) {
        return [
          fieldErr.forbidden(
            'spec',
            'pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
          ),
        ];
      }
      return [];
    },
  },
});

// ---------------------------------------------------------------------------------------------
// Nodes

const nodes = builtin({
  group: '',
  version: 'v1',
  resource: 'nodes',
  kind: 'Node',
  namespaced: false,
  shortNames: ['no'],
  subresources: { status: STATUS_VERBS },
  fieldLabels: { 'spec.unschedulable': (o) => (getPath(o, ['spec', 'unschedulable']) === true ? 'true' : 'false') },
  strategy: {
    statusSubresource: true,
    statusKeepsOld: ['spec'],
    prepareForCreate(o, ctx) {
      const spec = obj(o, 'spec');
      if (ctx.nodeCidrs !== undefined && (spec['podCIDR'] === undefined || spec['podCIDR'] === '')) {
        const cidr = ctx.nodeCidrs.allocate();
        if (cidr !== undefined) {
          spec['podCIDR'] = cidr;
          spec['podCIDRs'] = [cidr];
        }
      }
      if (typeof spec['podCIDR'] === 'string' && spec['podCIDRs'] === undefined) spec['podCIDRs'] = [spec['podCIDR']];
      setDefault(o, 'status', {});
    },
    validate(o) {
      const errs: FieldError[] = [];
      const spec = isObject(o['spec']) ? o['spec'] : {};
      const cidrs = Array.isArray(spec['podCIDRs']) ? spec['podCIDRs'] : [];
      cidrs.forEach((c, i) => {
        if (typeof c !== 'string' || !isCidr(c))
          errs.push(fieldErr.invalid(`spec.podCIDRs[${i}]`, c, 'must be a valid CIDR'));
      });
      if (typeof spec['podCIDR'] === 'string' && cidrs[0] !== spec['podCIDR']) {
        errs.push(fieldErr.invalid('spec.podCIDR', spec['podCIDR'], 'must match the first element of podCIDRs'));
      }
      return errs;
    },
    validateUpdate(o, old) {
      const before = getPath(old, ['spec', 'podCIDRs']);
      const after = getPath(o, ['spec', 'podCIDRs']);
      if (Array.isArray(before) && before.length > 0 && !deepEqual(before, after)) {
        return [fieldErr.forbidden('spec.podCIDRs', 'node updates may not change podCIDR except from "" to valid')];
      }
      return [];
    },
    release(o, ctx) {
      const cidrs = getPath(o, ['spec', 'podCIDRs']);
      if (ctx.nodeCidrs !== undefined && Array.isArray(cidrs))
        for (const c of cidrs) ctx.nodeCidrs.release(scalarString(c));
    },
  },
});

function isCidr(c: string): boolean {
  const [ip, bits, extra] = c.split('/');
  if (extra !== undefined || ip === undefined || bits === undefined || !/^\d+$/.test(bits)) return false;
  return (isIPv4(ip) && Number(bits) <= 32) || (isIPv6(ip) && Number(bits) <= 128);
}

// ---------------------------------------------------------------------------------------------
// Services

const SERVICE_TYPES = ['ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort'];

function wantsNodePorts(spec: JsonObject): boolean {
  return spec['type'] === 'NodePort' || spec['type'] === 'LoadBalancer';
}

function serviceAllocate(o: KObject, old: KObject | undefined, ctx: StrategyContext): void {
  const spec = obj(o, 'spec');
  const errs: FieldError[] = [];
  const taken: (() => void)[] = [];
  const oldSpec = old === undefined ? undefined : isObject(old['spec']) ? old['spec'] : {};
  if (spec['type'] !== 'ExternalName' && old === undefined) {
    const want = spec['clusterIP'];
    if (want !== 'None') {
      const r = ctx.services.allocateIP(typeof want === 'string' && want !== '' ? want : undefined);
      if ('error' in r) errs.push(fieldErr.invalid('spec.clusterIPs', [want ?? ''], r.error));
      else {
        spec['clusterIP'] = r.ip;
        spec['clusterIPs'] = [r.ip];
        taken.push(() => ctx.services.releaseIP(r.ip));
      }
    } else spec['clusterIPs'] = ['None'];
  }
  const oldPorts = new Set<number>(
    oldSpec !== undefined && wantsNodePorts(oldSpec)
      ? list(oldSpec['ports'])
          .map((p) => p['nodePort'])
          .filter((n): n is number => typeof n === 'number')
      : [],
  );
  if (wantsNodePorts(spec)) {
    list(spec['ports']).forEach((p, i) => {
      const np = p['nodePort'];
      if (typeof np === 'number' && oldPorts.has(np)) return;
      const r = ctx.services.allocateNodePort(typeof np === 'number' && np !== 0 ? np : undefined);
      if ('error' in r) errs.push(fieldErr.invalid(`spec.ports[${i}].nodePort`, np, r.error));
      else {
        p['nodePort'] = r.port;
        taken.push(() => ctx.services.releaseNodePort(r.port));
      }
    });
  } else {
    for (const p of list(spec['ports'])) delete p['nodePort'];
  }
  if (errs.length > 0) {
    for (const undo of taken) undo();
    throw invalid('Service', '', o.metadata.name ?? '', errs);
  }
}

function serviceNodePorts(spec: unknown): number[] {
  if (!isObject(spec) || !wantsNodePorts(spec)) return [];
  return list(spec['ports'])
    .map((p) => p['nodePort'])
    .filter((n): n is number => typeof n === 'number' && n !== 0);
}

const services = builtin({
  group: '',
  version: 'v1',
  resource: 'services',
  kind: 'Service',
  namespaced: true,
  shortNames: ['svc'],
  categories: ['all'],
  subresources: { status: STATUS_VERBS },
  fieldLabels: {
    'spec.clusterIP': (o) => scalarString(getPath(o, ['spec', 'clusterIP'])),
    'spec.type': (o) => scalarString(getPath(o, ['spec', 'type'])),
  },
  strategy: {
    nameRule: dns1035Label,
    statusSubresource: true,
    statusKeepsOld: ['spec'],
    prepareForCreate(o) {
      const spec = obj(o, 'spec');
      setDefault(spec, 'type', 'ClusterIP');
      o['status'] = { loadBalancer: {} };
      if (spec['type'] === 'ExternalName') return;
      setDefault(spec, 'sessionAffinity', 'None');
      for (const p of list(spec['ports'])) {
        setDefault(p, 'protocol', 'TCP');
        setDefault(p, 'targetPort', p['port'] ?? null);
      }
      setDefault(spec, 'ipFamilies', ['IPv4']);
      setDefault(spec, 'ipFamilyPolicy', 'SingleStack');
      setDefault(spec, 'internalTrafficPolicy', 'Cluster');
      if (wantsNodePorts(spec)) setDefault(spec, 'externalTrafficPolicy', 'Cluster');
      if (spec['type'] === 'LoadBalancer') setDefault(spec, 'allocateLoadBalancerNodePorts', true);
    },
    prepareForUpdate(o, old) {
      const spec = obj(o, 'spec');
      const oldSpec = isObject(old['spec']) ? old['spec'] : {};
      // Like kube-apiserver, an update that omits allocated values keeps them.
      if ((spec['clusterIP'] === undefined || spec['clusterIP'] === '') && oldSpec['clusterIP'] !== undefined) {
        spec['clusterIP'] = oldSpec['clusterIP'] ?? null;
        spec['clusterIPs'] = clone(oldSpec['clusterIPs'] ?? null);
      }
      if (spec['clusterIPs'] === undefined && oldSpec['clusterIPs'] !== undefined)
        spec['clusterIPs'] = clone(oldSpec['clusterIPs']);
      setDefault(spec, 'type', 'ClusterIP');
      setDefault(spec, 'sessionAffinity', 'None');
      setDefault(spec, 'ipFamilies', clone(oldSpec['ipFamilies'] ?? ['IPv4']));
      setDefault(spec, 'ipFamilyPolicy', oldSpec['ipFamilyPolicy'] ?? 'SingleStack');
      setDefault(spec, 'internalTrafficPolicy', 'Cluster');
      for (const p of list(spec['ports'])) {
        setDefault(p, 'protocol', 'TCP');
        setDefault(p, 'targetPort', p['port'] ?? null);
        if (p['nodePort'] === undefined && wantsNodePorts(spec)) {
          const prev = list(oldSpec['ports']).find((q) => q['port'] === p['port'] && q['protocol'] === p['protocol']);
          if (typeof prev?.['nodePort'] === 'number') p['nodePort'] = prev['nodePort'];
        }
      }
      if (wantsNodePorts(spec)) setDefault(spec, 'externalTrafficPolicy', 'Cluster');
    },
    validate(o) {
      const errs: FieldError[] = [];
      const spec = isObject(o['spec']) ? o['spec'] : {};
      const type = spec['type'];
      if (!SERVICE_TYPES.includes(scalarString(type)))
        errs.push(fieldErr.notSupported('spec.type', type, SERVICE_TYPES));
      if (type === 'ExternalName') {
        if (typeof spec['externalName'] !== 'string' || spec['externalName'] === '')
          errs.push(fieldErr.required('spec.externalName'));
        return errs;
      }
      const ports = Array.isArray(spec['ports']) ? spec['ports'] : [];
      if (ports.length === 0 && spec['clusterIP'] !== 'None') errs.push(fieldErr.required('spec.ports'));
      const names = new Set<string>();
      const keys = new Set<string>();
      ports.forEach((p, i) => {
        const pp = `spec.ports[${i}]`;
        if (!isObject(p)) {
          errs.push(fieldErr.invalid(pp, p, 'must be an object'));
          return;
        }
        if (ports.length > 1 && (typeof p['name'] !== 'string' || p['name'] === ''))
          errs.push(fieldErr.required(`${pp}.name`));
        if (typeof p['name'] === 'string' && p['name'] !== '') {
          const e = dns1123Label(p['name']);
          if (e !== undefined) errs.push(fieldErr.invalid(`${pp}.name`, p['name'], e));
          if (names.has(p['name'])) errs.push(fieldErr.duplicate(`${pp}.name`, p['name']));
          names.add(p['name']);
        }
        validatePort(p['port'], `${pp}.port`, errs);
        if (!PROTOCOLS.includes(scalarString(p['protocol'])))
          errs.push(fieldErr.notSupported(`${pp}.protocol`, p['protocol'], PROTOCOLS));
        const key = `${scalarString(p['port'])}/${scalarString(p['protocol'])}`;
        if (keys.has(key))
          errs.push(fieldErr.duplicate(pp, { port: p['port'] ?? null, protocol: p['protocol'] ?? null }));
        keys.add(key);
        if (p['targetPort'] !== undefined) validateIntOrStringPort(p['targetPort'], `${pp}.targetPort`, errs);
        if (p['nodePort'] !== undefined && !wantsNodePorts(spec) && p['nodePort'] !== 0) {
          errs.push(fieldErr.forbidden(`${pp}.nodePort`, `may not be used when \`type\` is '${scalarString(type)}'`));
        }
      });
      const sa = spec['sessionAffinity'];
      if (!['None', 'ClientIP'].includes(scalarString(sa)))
        errs.push(fieldErr.notSupported('spec.sessionAffinity', sa, ['ClientIP', 'None']));
      if (spec['selector'] !== undefined) errs.push(...validateLabels(spec['selector'], 'spec.selector'));
      return errs;
    },
    validateUpdate(o, old) {
      const before = getPath(old, ['spec', 'clusterIPs']);
      const after = getPath(o, ['spec', 'clusterIPs']);
      if (
        Array.isArray(before) &&
        before.length > 0 &&
        getPath(old, ['spec', 'type']) !== 'ExternalName' &&
        !deepEqual(before, after)
      ) {
        return [fieldErr.invalid('spec.clusterIPs[0]', after ?? [], 'may not change once set')];
      }
      return [];
    },
    allocate: serviceAllocate,
    release(o, ctx) {
      const spec = isObject(o['spec']) ? o['spec'] : {};
      if (typeof spec['clusterIP'] === 'string' && spec['clusterIP'] !== 'None')
        ctx.services.releaseIP(spec['clusterIP']);
      for (const p of serviceNodePorts(spec)) ctx.services.releaseNodePort(p);
    },
    afterUpdate(o, old, ctx) {
      const now = new Set(serviceNodePorts(o['spec']));
      for (const p of serviceNodePorts(old['spec'])) if (!now.has(p)) ctx.services.releaseNodePort(p);
    },
  },
});

// ---------------------------------------------------------------------------------------------
// ConfigMaps, Secrets, ServiceAccounts, Events

const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
function validateDataKeys(data: unknown, field: string, errs: FieldError[], base64: boolean): void {
  if (data === undefined) return;
  if (!isObject(data)) {
    errs.push(fieldErr.invalid(field, data, 'must be a map of strings'));
    return;
  }
  for (const [k, v] of Object.entries(data)) {
    if (!CONFIG_KEY.test(k) || k.length > 253) {
      errs.push(
        fieldErr.invalid(
          field,
          k,
          "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        ),
      );
    }
    if (typeof v !== 'string') errs.push(fieldErr.invalid(`${field}[${k}]`, v, 'must be a string'));
    else if (base64 && !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) {
      errs.push(fieldErr.invalid(`${field}[${k}]`, '<secret contents redacted>', 'illegal base64 data'));
    }
  }
}

const configmaps = builtin({
  group: '',
  version: 'v1',
  resource: 'configmaps',
  kind: 'ConfigMap',
  namespaced: true,
  shortNames: ['cm'],
  strategy: {
    validate(o) {
      const errs: FieldError[] = [];
      validateDataKeys(o['data'], 'data', errs, false);
      validateDataKeys(o['binaryData'], 'binaryData', errs, true);
      return errs;
    },
  },
});

function mergeStringData(o: KObject): void {
  const sd = o['stringData'];
  if (isObject(sd)) {
    const data = obj(o, 'data');
    for (const [k, v] of Object.entries(sd)) if (typeof v === 'string') data[k] = Buffer.from(v).toString('base64');
  }
  delete o['stringData'];
}

const secrets = builtin({
  group: '',
  version: 'v1',
  resource: 'secrets',
  kind: 'Secret',
  namespaced: true,
  fieldLabels: { type: (o) => scalarString(o['type']) },
  strategy: {
    prepareForCreate(o) {
      mergeStringData(o);
      setDefault(o, 'type', 'Opaque');
    },
    prepareForUpdate(o) {
      mergeStringData(o);
      setDefault(o, 'type', 'Opaque');
    },
    validate(o) {
      const errs: FieldError[] = [];
      validateDataKeys(o['data'], 'data', errs, true);
      return errs;
    },
    validateUpdate(o, old) {
      return o['type'] !== old['type'] ? [fieldErr.invalid('type', o['type'], 'field is immutable')] : [];
    },
  },
});

const serviceaccounts = builtin({
  group: '',
  version: 'v1',
  resource: 'serviceaccounts',
  kind: 'ServiceAccount',
  namespaced: true,
  shortNames: ['sa'],
  subresources: { token: ['create'] },
});

const EVENT_FIELD = (path: string[]) => (o: KObject) => scalarString(getPath(o, path));
const events = builtin({
  group: '',
  version: 'v1',
  resource: 'events',
  kind: 'Event',
  namespaced: true,
  shortNames: ['ev'],
  fieldLabels: {
    'involvedObject.kind': EVENT_FIELD(['involvedObject', 'kind']),
    'involvedObject.namespace': EVENT_FIELD(['involvedObject', 'namespace']),
    'involvedObject.name': EVENT_FIELD(['involvedObject', 'name']),
    'involvedObject.uid': EVENT_FIELD(['involvedObject', 'uid']),
    'involvedObject.apiVersion': EVENT_FIELD(['involvedObject', 'apiVersion']),
    'involvedObject.resourceVersion': EVENT_FIELD(['involvedObject', 'resourceVersion']),
    'involvedObject.fieldPath': EVENT_FIELD(['involvedObject', 'fieldPath']),
    reason: EVENT_FIELD(['reason']),
    reportingComponent: EVENT_FIELD(['reportingComponent']),
    source: EVENT_FIELD(['source', 'component']),
    type: EVENT_FIELD(['type']),
  },
  strategy: {
    allowCreateOnUpdate: true,
    validate(o) {
      if (!isObject(o['involvedObject'])) return [fieldErr.required('involvedObject')];
      const ns = getPath(o, ['involvedObject', 'namespace']);
      if (typeof ns === 'string' && ns !== '' && ns !== o.metadata.namespace) {
        return [fieldErr.invalid('involvedObject.namespace', ns, 'does not match event.namespace')];
      }
      return [];
    },
  },
});

// ---------------------------------------------------------------------------------------------
// EndpointSlices, Leases, NetworkPolicies

const ADDRESS_TYPES = ['FQDN', 'IPv4', 'IPv6'];
const endpointslices = builtin({
  group: 'discovery.k8s.io',
  version: 'v1',
  resource: 'endpointslices',
  kind: 'EndpointSlice',
  namespaced: true,
  strategy: {
    generationOf: (o) => ({ ...o, metadata: undefined }),
    prepareForCreate(o) {
      for (const p of list(o['ports'])) setDefault(p, 'protocol', 'TCP');
    },
    prepareForUpdate(o) {
      for (const p of list(o['ports'])) setDefault(p, 'protocol', 'TCP');
    },
    validate(o) {
      const errs: FieldError[] = [];
      const at = o['addressType'];
      if (at === undefined) errs.push(fieldErr.required('addressType'));
      else if (!ADDRESS_TYPES.includes(scalarString(at)))
        errs.push(fieldErr.notSupported('addressType', at, ADDRESS_TYPES));
      list(o['endpoints']).forEach((e, i) => {
        const addrs = e['addresses'];
        if (!Array.isArray(addrs) || addrs.length === 0) errs.push(fieldErr.required(`endpoints[${i}].addresses`));
        else if (addrs.length > 100)
          errs.push({
            type: 'FieldValueTooMany',
            field: `endpoints[${i}].addresses`,
            body: `Too many: ${addrs.length}: must have at most 100 items`,
          });
        else
          addrs.forEach((a, j) => {
            const ok =
              at === 'IPv4' ? isIPv4(scalarString(a)) : at === 'IPv6' ? isIPv6(scalarString(a)) : typeof a === 'string';
            if (!ok)
              errs.push(
                fieldErr.invalid(`endpoints[${i}].addresses[${j}]`, a, `must be a valid ${scalarString(at)} address`),
              );
          });
      });
      list(o['ports']).forEach((p, i) => {
        if (p['port'] !== undefined && p['port'] !== null) validatePort(p['port'], `ports[${i}].port`, errs, true);
        if (!PROTOCOLS.includes(scalarString(p['protocol'])))
          errs.push(fieldErr.notSupported(`ports[${i}].protocol`, p['protocol'], PROTOCOLS));
      });
      return errs;
    },
    validateUpdate(o, old) {
      return o['addressType'] !== old['addressType']
        ? [fieldErr.invalid('addressType', o['addressType'], 'field is immutable')]
        : [];
    },
  },
});

const leases = builtin({
  group: 'coordination.k8s.io',
  version: 'v1',
  resource: 'leases',
  kind: 'Lease',
  namespaced: true,
  strategy: {
    allowCreateOnUpdate: true,
    validate(o) {
      const d = getPath(o, ['spec', 'leaseDurationSeconds']);
      return d !== undefined && (typeof d !== 'number' || d <= 0)
        ? [fieldErr.invalid('spec.leaseDurationSeconds', d, 'must be greater than 0')]
        : [];
    },
  },
});

const SELECTOR_OPS = ['In', 'NotIn', 'Exists', 'DoesNotExist'];
export function validateLabelSelectorObject(sel: unknown, field: string): FieldError[] {
  const errs: FieldError[] = [];
  if (sel === undefined || sel === null) return errs;
  if (!isObject(sel)) return [fieldErr.invalid(field, sel, 'must be a label selector')];
  errs.push(...validateLabels(sel['matchLabels'], `${field}.matchLabels`));
  list(sel['matchExpressions']).forEach((e, i) => {
    const p = `${field}.matchExpressions[${i}]`;
    const op = e['operator'];
    if (!SELECTOR_OPS.includes(scalarString(op))) errs.push(fieldErr.notSupported(`${p}.operator`, op, SELECTOR_OPS));
    const key = scalarString(e['key']);
    const ke = labelKeyError(key);
    if (ke !== undefined) errs.push(fieldErr.invalid(`${p}.key`, key, ke));
    const vals = Array.isArray(e['values']) ? e['values'] : [];
    if ((op === 'In' || op === 'NotIn') && vals.length === 0) {
      errs.push(fieldErr.required(`${p}.values`, "must be specified when `operator` is 'In' or 'NotIn'"));
    }
    if ((op === 'Exists' || op === 'DoesNotExist') && vals.length > 0) {
      errs.push(
        fieldErr.forbidden(`${p}.values`, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
      );
    }
  });
  return errs;
}

function validatePeers(peers: unknown, field: string, errs: FieldError[]): void {
  list(peers).forEach((peer, i) => {
    const p = `${field}[${i}]`;
    const n = ['podSelector', 'namespaceSelector', 'ipBlock'].filter((k) => peer[k] !== undefined).length;
    if (n === 0) errs.push(fieldErr.required(p, 'must specify a peer'));
    if (peer['ipBlock'] !== undefined && n > 1)
      errs.push(fieldErr.forbidden(p, 'may not specify more than 1 peer type'));
    errs.push(...validateLabelSelectorObject(peer['podSelector'], `${p}.podSelector`));
    errs.push(...validateLabelSelectorObject(peer['namespaceSelector'], `${p}.namespaceSelector`));
    if (isObject(peer['ipBlock'])) {
      const cidr = scalarString(peer['ipBlock']['cidr']);
      if (cidr === '') errs.push(fieldErr.required(`${p}.ipBlock.cidr`));
      else if (!isCidr(cidr)) errs.push(fieldErr.invalid(`${p}.ipBlock.cidr`, cidr, 'must be a valid CIDR'));
      const except = peer['ipBlock']['except'];
      (Array.isArray(except) ? except : []).forEach((e, j) => {
        if (typeof e !== 'string' || !isCidr(e))
          errs.push(fieldErr.invalid(`${p}.ipBlock.except[${j}]`, e, 'must be a valid CIDR'));
      });
    }
  });
}

function validateNpPorts(ports: unknown, field: string, errs: FieldError[]): void {
  list(ports).forEach((port, i) => {
    const p = `${field}[${i}]`;
    if (!PROTOCOLS.includes(scalarString(port['protocol'])))
      errs.push(fieldErr.notSupported(`${p}.protocol`, port['protocol'], PROTOCOLS));
    if (port['port'] !== undefined) validateIntOrStringPort(port['port'], `${p}.port`, errs);
    const end = port['endPort'];
    if (end !== undefined) {
      if (typeof port['port'] !== 'number')
        errs.push(fieldErr.required(`${p}.port`, 'must be specified when endPort is specified'));
      else if (typeof end !== 'number' || end < port['port'] || end > 65535) {
        errs.push(fieldErr.invalid(`${p}.endPort`, end, 'must be greater than or equal to `port`'));
      }
    }
  });
}

function defaultNetworkPolicy(o: KObject): void {
  const spec = obj(o, 'spec');
  setDefault(spec, 'podSelector', {});
  for (const dir of ['ingress', 'egress']) {
    for (const rule of list(spec[dir])) for (const p of list(rule['ports'])) setDefault(p, 'protocol', 'TCP');
  }
  if (spec['policyTypes'] === undefined) {
    spec['policyTypes'] = Array.isArray(spec['egress']) ? ['Ingress', 'Egress'] : ['Ingress'];
  }
}

const networkpolicies = builtin({
  group: 'networking.k8s.io',
  version: 'v1',
  resource: 'networkpolicies',
  kind: 'NetworkPolicy',
  namespaced: true,
  shortNames: ['netpol'],
  strategy: {
    generationOf: (o) => o['spec'],
    prepareForCreate: defaultNetworkPolicy,
    prepareForUpdate: defaultNetworkPolicy,
    validate(o) {
      const errs: FieldError[] = [];
      const spec = isObject(o['spec']) ? o['spec'] : {};
      errs.push(...validateLabelSelectorObject(spec['podSelector'], 'spec.podSelector'));
      list(spec['ingress']).forEach((r, i) => {
        validateNpPorts(r['ports'], `spec.ingress[${i}].ports`, errs);
        validatePeers(r['from'], `spec.ingress[${i}].from`, errs);
      });
      list(spec['egress']).forEach((r, i) => {
        validateNpPorts(r['ports'], `spec.egress[${i}].ports`, errs);
        validatePeers(r['to'], `spec.egress[${i}].to`, errs);
      });
      const types = Array.isArray(spec['policyTypes']) ? spec['policyTypes'] : [];
      types.forEach((t, i) => {
        if (t !== 'Ingress' && t !== 'Egress')
          errs.push(fieldErr.notSupported(`spec.policyTypes[${i}]`, t, ['Ingress', 'Egress']));
      });
      return errs;
    },
  },
});

// ---------------------------------------------------------------------------------------------
// RBAC

function validateRules(o: KObject, clusterScoped: boolean): FieldError[] {
  const errs: FieldError[] = [];
  list(o['rules']).forEach((r, i) => {
    const p = `rules[${i}]`;
    if (!Array.isArray(r['verbs']) || r['verbs'].length === 0)
      errs.push(fieldErr.required(`${p}.verbs`, 'verbs must contain at least one value'));
    const nonResource = Array.isArray(r['nonResourceURLs']) && r['nonResourceURLs'].length > 0;
    if (nonResource) {
      if (!clusterScoped)
        errs.push(
          fieldErr.invalid(
            `${p}.nonResourceURLs`,
            r['nonResourceURLs'],
            'namespaced rules cannot apply to non-resource URLs',
          ),
        );
      if (Array.isArray(r['resources']) && r['resources'].length > 0) {
        errs.push(
          fieldErr.invalid(
            `${p}.nonResourceURLs`,
            r['nonResourceURLs'],
            'rules cannot apply to both regular resources and non-resource URLs',
          ),
        );
      }
    } else {
      if (!Array.isArray(r['apiGroups']) || r['apiGroups'].length === 0)
        errs.push(fieldErr.required(`${p}.apiGroups`, 'resource rules must supply at least one api group'));
      if (!Array.isArray(r['resources']) || r['resources'].length === 0)
        errs.push(fieldErr.required(`${p}.resources`, 'resource rules must supply at least one resource'));
    }
  });
  return errs;
}

function validateBinding(o: KObject, clusterScoped: boolean): FieldError[] {
  const errs: FieldError[] = [];
  const ref = o['roleRef'];
  if (!isObject(ref)) return [fieldErr.required('roleRef')];
  if (ref['apiGroup'] !== 'rbac.authorization.k8s.io')
    errs.push(fieldErr.notSupported('roleRef.apiGroup', ref['apiGroup'], ['rbac.authorization.k8s.io']));
  const kinds = clusterScoped ? ['ClusterRole'] : ['Role', 'ClusterRole'];
  if (!kinds.includes(scalarString(ref['kind']))) errs.push(fieldErr.notSupported('roleRef.kind', ref['kind'], kinds));
  if (typeof ref['name'] !== 'string' || ref['name'] === '') errs.push(fieldErr.required('roleRef.name'));
  list(o['subjects']).forEach((s, i) => {
    const p = `subjects[${i}]`;
    const kind = s['kind'];
    if (!['User', 'Group', 'ServiceAccount'].includes(scalarString(kind)))
      errs.push(fieldErr.notSupported(`${p}.kind`, kind, ['Group', 'ServiceAccount', 'User']));
    if (typeof s['name'] !== 'string' || s['name'] === '') errs.push(fieldErr.required(`${p}.name`));
    if (kind === 'ServiceAccount' && clusterScoped && (typeof s['namespace'] !== 'string' || s['namespace'] === '')) {
      errs.push(fieldErr.required(`${p}.namespace`));
    }
  });
  return errs;
}

function rbac(
  resource: string,
  kind: string,
  namespaced: boolean,
  validate: (o: KObject) => FieldError[],
  immutableRoleRef: boolean,
): ResourceType {
  return builtin({
    group: 'rbac.authorization.k8s.io',
    version: 'v1',
    resource,
    kind,
    namespaced,
    strategy: {
      nameRule: pathSegmentName,
      validate,
      ...(immutableRoleRef
        ? {
            validateUpdate: (o: KObject, old: KObject) =>
              deepEqual(o['roleRef'], old['roleRef'])
                ? []
                : [fieldErr.invalid('roleRef', o['roleRef'], 'cannot change roleRef')],
          }
        : {}),
    },
  });
}

/** The built-in stored resource types. */
export function builtinTypes(): ResourceType[] {
  return [
    namespaces,
    pods,
    nodes,
    services,
    configmaps,
    secrets,
    serviceaccounts,
    events,
    endpointslices,
    leases,
    networkpolicies,
    rbac('roles', 'Role', true, (o) => validateRules(o, false), false),
    rbac('clusterroles', 'ClusterRole', false, (o) => validateRules(o, true), false),
    rbac('rolebindings', 'RoleBinding', true, (o) => validateBinding(o, false), true),
    rbac('clusterrolebindings', 'ClusterRoleBinding', false, (o) => validateBinding(o, true), true),
  ];
}
