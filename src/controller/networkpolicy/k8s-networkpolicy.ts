/**
 * Kubernetes NetworkPolicy → internal NetworkPolicy, with Antrea's semantics:
 *
 * - one policy-level AppliedToGroup from (policy namespace, spec.podSelector);
 * - each ingress rule → a rule `{In, from, services, priority -1, action Allow}`, each egress rule →
 *   `{Out, to, ...}`; rules of a direction not listed in policyTypes are ignored (Kubernetes semantics);
 * - a peer list that is absent or empty matches everything (`0.0.0.0/0` and `::/0`); an egress rule
 *   with a named port additionally gets the AddressGroup of all Pods (`namespaceSelector=`) so agents
 *   can resolve the name; a podSelector/namespaceSelector peer becomes an AddressGroup; an ipBlock is
 *   carried with its except list;
 * - ports: protocol defaults to TCP, a string port is a named port, endPort is kept;
 * - a direction listed in policyTypes without rules gets a deny-all rule (no peers, no services,
 *   priority 0, no action); policyTypes defaults as the API server does (Ingress, plus Egress when
 *   there are egress rules).
 *
 * Invalid parts (the API server normally rejects them) fail closed: a bad peer is dropped, a rule whose
 * every peer or every port is bad matches nothing, but the rule still isolates its Pods. Each such
 * part is reported as a ValidationError naming the field. An invalid podSelector or a missing
 * name/namespace/uid makes the whole policy invalid (thrown).
 */
import {
  type IPBlock,
  type IPNet,
  type IntOrString,
  type NetworkPolicy,
  type NetworkPolicyPeer,
  type NetworkPolicyRule,
  type Protocol,
  type Service,
  DEFAULT_RULE_PRIORITY,
  NetworkPolicyType,
} from '../../common/apis/controlplane/types.ts';
import { EVERYTHING, parseLabelSelector, type Selector } from '../../common/k8s/labels.ts';
import type * as k8s from '../../common/k8s/objects.ts';
import { ValidationError } from '../../common/util/errors.ts';
import { cidrContains, parseCIDR } from '../../common/util/ipaddr.ts';
import { type GroupSelector, makeGroupSelector } from '../grouping/group-index.ts';

/** Annotation on a Namespace that turns on logging for the K8s NetworkPolicy rules in it. */
export const ENABLE_LOGGING_ANNOTATION = 'networkpolicy.antrea.io/enable-logging';

export interface ConvertedPolicy {
  readonly policy: NetworkPolicy;
  readonly appliedTo: readonly GroupSelector[];
  /** Distinct AddressGroup selectors the rules reference. */
  readonly addressGroups: readonly GroupSelector[];
  /** Invalid parts that were dropped (fail closed). */
  readonly problems: readonly ValidationError[];
}

export interface ConvertOptions {
  /** The group name for a selector (UUIDv5 of its normalized name). */
  readonly nameOf: (selector: GroupSelector) => string;
  /** From the Namespace annotation {@link ENABLE_LOGGING_ANNOTATION}. */
  readonly enableLogging: boolean;
}

const EMPTY: readonly never[] = Object.freeze([]);

/** A peer that matches nothing (also the unused side of every rule). */
export const EMPTY_PEER: NetworkPolicyPeer = Object.freeze({ addressGroups: EMPTY, ipBlocks: EMPTY });

const MATCH_ALL_BLOCKS: readonly IPBlock[] = Object.freeze([
  Object.freeze({ cidr: Object.freeze({ ip: '0.0.0.0', prefixLength: 0 }), except: EMPTY }),
  Object.freeze({ cidr: Object.freeze({ ip: '::', prefixLength: 0 }), except: EMPTY }),
]);

/** The peer of an empty peer list: every address. */
export const MATCH_ALL_PEER: NetworkPolicyPeer = Object.freeze({ addressGroups: EMPTY, ipBlocks: MATCH_ALL_BLOCKS });

function denyAll(direction: 'In' | 'Out', enableLogging: boolean): NetworkPolicyRule {
  return Object.freeze({
    direction,
    from: EMPTY_PEER,
    to: EMPTY_PEER,
    services: EMPTY,
    priority: 0,
    ...(enableLogging ? { enableLogging: true } : {}),
  });
}

const DENY_ALL = {
  In: [denyAll('In', false), denyAll('In', true)],
  Out: [denyAll('Out', false), denyAll('Out', true)],
} as const;

/** The selector of the AddressGroup holding all Pods of all Namespaces. */
export const ALL_PODS_SELECTOR: GroupSelector = makeGroupSelector({ namespaceSelector: EVERYTHING });

const PROTOCOLS = new Set<string>(['TCP', 'UDP', 'SCTP']);
const SVC_NAME_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

function namedPortProblem(name: string): string | undefined {
  if (name.length > 15 || !SVC_NAME_RE.test(name) || name.includes('--') || !/[a-z]/.test(name)) {
    return `"${name}" is not a valid port name (at most 15 lowercase alphanumerics or '-', with a letter)`;
  }
  return undefined;
}

function convertPorts(
  ports: readonly k8s.NetworkPolicyPort[] | undefined,
  field: string,
  problems: ValidationError[],
): { services: readonly Service[]; named: boolean; allInvalid: boolean } {
  if (ports === undefined || ports.length === 0) return { services: EMPTY, named: false, allInvalid: false };
  const services: Service[] = [];
  let named = false;
  ports.forEach((p, i) => {
    const f = `${field}[${i}]`;
    const protocol = p.protocol ?? 'TCP';
    if (!PROTOCOLS.has(protocol)) {
      problems.push(new ValidationError(`${f}.protocol`, `"${protocol}" is not one of TCP, UDP, SCTP`));
      return;
    }
    const port: IntOrString | undefined = p.port;
    if (typeof port === 'string') {
      const problem = namedPortProblem(port);
      if (problem !== undefined) {
        problems.push(new ValidationError(`${f}.port`, problem));
        return;
      }
      if (p.endPort !== undefined) {
        problems.push(new ValidationError(`${f}.endPort`, 'may not be used with a named port'));
        return;
      }
      named = true;
    } else if (port !== undefined) {
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        problems.push(new ValidationError(`${f}.port`, `${String(port)} is not a port number (1-65535)`));
        return;
      }
    }
    if (p.endPort !== undefined) {
      if (typeof port !== 'number') {
        problems.push(new ValidationError(`${f}.endPort`, 'requires a numeric port'));
        return;
      }
      if (!Number.isInteger(p.endPort) || p.endPort < port || p.endPort > 65535) {
        problems.push(new ValidationError(`${f}.endPort`, `must be between port (${port}) and 65535`));
        return;
      }
    }
    services.push({
      protocol: protocol as Protocol,
      ...(port === undefined ? {} : { port }),
      ...(p.endPort === undefined ? {} : { endPort: p.endPort }),
    });
  });
  return { services, named, allInvalid: services.length === 0 };
}

function convertIPBlock(b: k8s.IPBlock, field: string, problems: ValidationError[]): IPBlock | undefined {
  const rawCidr: unknown = b.cidr;
  const cidr = typeof rawCidr === 'string' ? parseCIDR(rawCidr) : undefined;
  if (cidr === undefined) {
    problems.push(new ValidationError(`${field}.cidr`, `${JSON.stringify(rawCidr)} is not a CIDR`));
    return undefined;
  }
  const except: IPNet[] = [];
  for (const [i, e] of (b.except ?? []).entries()) {
    const rawExcept: unknown = e;
    const ex = typeof rawExcept === 'string' ? parseCIDR(rawExcept) : undefined;
    if (ex === undefined) {
      problems.push(new ValidationError(`${field}.except[${i}]`, `${JSON.stringify(rawExcept)} is not a CIDR`));
      return undefined;
    }
    if (!cidrContains(cidr, ex) || ex.prefixLength <= cidr.prefixLength) {
      problems.push(new ValidationError(`${field}.except[${i}]`, `"${e}" must be a strict subset of ${b.cidr}`));
      return undefined;
    }
    except.push({ ip: ex.ip, prefixLength: ex.prefixLength });
  }
  return { cidr: { ip: cidr.ip, prefixLength: cidr.prefixLength }, except };
}

function parseOptionalSelector(
  sel: k8s.LabelSelector | undefined,
  field: string,
  problems: ValidationError[],
): Selector | undefined | null {
  if (sel === undefined) return undefined;
  try {
    return parseLabelSelector(sel, field);
  } catch (err) {
    if (err instanceof ValidationError) {
      problems.push(err);
      return null;
    }
    throw err;
  }
}

/** Converts one Kubernetes NetworkPolicy. Throws a ValidationError if it cannot be applied at all. */
export function convertK8sNetworkPolicy(np: k8s.NetworkPolicy, opts: ConvertOptions): ConvertedPolicy {
  const meta = np.metadata ?? {};
  const namespace = meta.namespace ?? '';
  const name = meta.name ?? '';
  const uid = meta.uid ?? '';
  if (name === '') throw new ValidationError('metadata.name', 'is required');
  if (namespace === '') throw new ValidationError('metadata.namespace', 'is required');
  if (uid === '') throw new ValidationError('metadata.uid', 'is required');
  const spec = np.spec ?? {};
  const podSelector = parseLabelSelector(spec.podSelector ?? {}, 'spec.podSelector');
  const appliedTo = makeGroupSelector({ namespace, podSelector });
  const problems: ValidationError[] = [];
  const addressGroups = new Map<string, GroupSelector>();
  const groupName = (sel: GroupSelector): string => {
    addressGroups.set(sel.normalizedName, sel);
    return opts.nameOf(sel);
  };

  const convertPeers = (
    peers: readonly k8s.NetworkPolicyPeer[] | undefined,
    field: string,
    egressNamedPort: boolean,
  ): NetworkPolicyPeer => {
    if (peers === undefined || peers.length === 0) {
      if (!egressNamedPort) return MATCH_ALL_PEER;
      return { addressGroups: [groupName(ALL_PODS_SELECTOR)], ipBlocks: MATCH_ALL_BLOCKS };
    }
    const groups: string[] = [];
    const blocks: IPBlock[] = [];
    peers.forEach((peer, i) => {
      const f = `${field}[${i}]`;
      if (peer.ipBlock !== undefined) {
        if (peer.podSelector !== undefined || peer.namespaceSelector !== undefined) {
          problems.push(new ValidationError(f, 'ipBlock may not be combined with podSelector or namespaceSelector'));
          return;
        }
        const b = convertIPBlock(peer.ipBlock, `${f}.ipBlock`, problems);
        if (b !== undefined) blocks.push(b);
        return;
      }
      const pod = parseOptionalSelector(peer.podSelector, `${f}.podSelector`, problems);
      const nsSel = parseOptionalSelector(peer.namespaceSelector, `${f}.namespaceSelector`, problems);
      if (pod === null || nsSel === null) return;
      if (pod === undefined && nsSel === undefined) {
        problems.push(new ValidationError(f, 'must specify podSelector, namespaceSelector or ipBlock'));
        return;
      }
      const name = groupName(makeGroupSelector({ namespace, podSelector: pod, namespaceSelector: nsSel }));
      if (!groups.includes(name)) groups.push(name);
    });
    if (groups.length === 0 && blocks.length === 0) return EMPTY_PEER;
    return { addressGroups: groups, ipBlocks: blocks };
  };

  let types = spec.policyTypes;
  if (types === undefined || types.length === 0) {
    types = (spec.egress ?? []).length > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
  }
  const ingressIsolated = types.includes('Ingress');
  const egressIsolated = types.includes('Egress');
  types.forEach((t, i) => {
    if (t !== 'Ingress' && t !== 'Egress') {
      problems.push(new ValidationError(`spec.policyTypes[${i}]`, `"${t}" is not Ingress or Egress`));
    }
  });

  const logging = opts.enableLogging ? { enableLogging: true } : {};
  const rules: NetworkPolicyRule[] = [];
  const ingress = ingressIsolated ? (spec.ingress ?? []) : [];
  const egress = egressIsolated ? (spec.egress ?? []) : [];
  ingress.forEach((r, i) => {
    const ports = convertPorts(r.ports, `spec.ingress[${i}].ports`, problems);
    const from = ports.allInvalid ? EMPTY_PEER : convertPeers(r.from, `spec.ingress[${i}].from`, false);
    rules.push({
      direction: 'In',
      from,
      to: EMPTY_PEER,
      services: ports.services,
      priority: DEFAULT_RULE_PRIORITY,
      action: 'Allow',
      ...logging,
    });
  });
  egress.forEach((r, i) => {
    const ports = convertPorts(r.ports, `spec.egress[${i}].ports`, problems);
    const to = ports.allInvalid ? EMPTY_PEER : convertPeers(r.to, `spec.egress[${i}].to`, ports.named);
    rules.push({
      direction: 'Out',
      from: EMPTY_PEER,
      to,
      services: ports.services,
      priority: DEFAULT_RULE_PRIORITY,
      action: 'Allow',
      ...logging,
    });
  });
  if (ingressIsolated && ingress.length === 0) rules.push(DENY_ALL.In[opts.enableLogging ? 1 : 0]);
  if (egressIsolated && egress.length === 0) rules.push(DENY_ALL.Out[opts.enableLogging ? 1 : 0]);

  const policy: NetworkPolicy = {
    metadata: { name: uid, uid, ...(meta.generation === undefined ? {} : { generation: meta.generation }) },
    rules,
    appliedToGroups: [opts.nameOf(appliedTo)],
    sourceRef: { type: NetworkPolicyType.K8sNetworkPolicy, namespace, name, uid },
  };
  return { policy, appliedTo: [appliedTo], addressGroups: [...addressGroups.values()], problems };
}
