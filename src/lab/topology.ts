/**
 * The lab's address plan and names, as pure data computed from a lab id, the number of Nodes and the
 * traffic mode. Everything the lab creates is named after the lab's prefix (derived from its data
 * directory), so `antrea-lab down` can find it again without any other record.
 *
 * Networks (all documentation ranges except the Pod and Service CIDRs, which never leave the lab's
 * namespaces):
 * - control: 198.51.100.0/24, one /27 per lab (slot). The root namespace holds the first address on
 *   one veth (its only footprint: one connected route); the API server and the controller listen
 *   there; each Node namespace has the next addresses on its `ctl0`. Nodes never forward to or from
 *   it, and the root namespace never forwards what arrives on it.
 * - underlay: 192.0.2.0/25 (subnet 0) and 192.0.2.128/25 (subnet 1, used by hybrid mode for every
 *   second Node), each a Linux bridge in the fabric namespace. The router namespace joins both and
 *   the external network; Nodes' default route points at it.
 * - external: 203.0.113.0/24, the router and the external namespace ("the internet").
 */
import { createHash } from 'node:crypto';
import { ValidationError } from '../common/util/errors.ts';

export const LAB_ENCAPS = ['geneve', 'vxlan', 'noencap', 'hybrid'] as const;
export type LabEncap = (typeof LAB_ENCAPS)[number];

export const MAX_NODES = 16;
export const CONTROL_SLOTS = 8;
export const CONTROL_NETWORK = '198.51.100.0/24';
export const EXTERNAL_SUBNET = '203.0.113.0/24';
export const EXTERNAL_ROUTER_IP = '203.0.113.1';
export const EXTERNAL_HOST_IP = '203.0.113.100';
export const CLUSTER_CIDR = '10.10.0.0/16';
export const NODE_CIDR_MASK_SIZE = 24;
export const SERVICE_CIDR = '10.96.0.0/16';
export const API_SERVER_PORT = 6443;
export const CONTROLLER_PORT = 10349;

/** The two underlay subnets; the router holds the first address of each. */
export const UNDERLAY_SUBNETS = [
  { cidr: '192.0.2.0/25', prefix: 25, base: 0, router: '192.0.2.1' },
  { cidr: '192.0.2.128/25', prefix: 25, base: 128, router: '192.0.2.129' },
] as const;

/** Interface names (inside the lab's namespaces; only the control veth lives in the root one). */
export const IFACES = {
  fabricControlBridge: 'br-ctl',
  /** Underlay bridges, by subnet index. */
  fabricUnderlayBridge: (subnet: number) => `br-ul${subnet}`,
  /** The fabric end of the root namespace's control veth. */
  fabricControlHost: 'ctl-host',
  fabricControlNode: (index: number) => `ctl-n${index}`,
  fabricUnderlayNode: (index: number) => `ul-n${index}`,
  fabricUnderlayRouter: (subnet: number) => `ul${subnet}-rtr`,
  routerUnderlay: (subnet: number) => `ul${subnet}`,
  routerExternal: 'ext0',
  externalUplink: 'eth0',
  nodeControl: 'ctl0',
  nodeUplink: 'eth0',
} as const;

export interface LabNodeSpec {
  /** 1-based. */
  readonly index: number;
  /** Kubernetes Node name. */
  readonly name: string;
  /** Its network namespace. */
  readonly netns: string;
  /** Address on the control subnet (ctl0). */
  readonly controlIP: string;
  /** Underlay subnet index (0 or 1). */
  readonly underlaySubnet: number;
  /** The Node IP (InternalIP), on its uplink eth0. */
  readonly nodeIP: string;
  readonly underlayPrefix: number;
  /** Next hop of the Node's default route (the router). */
  readonly gatewayIP: string;
}

export interface LabTopology {
  readonly id: string;
  /** Prefix of every namespace and of the root namespace's veth. */
  readonly prefix: string;
  readonly encap: LabEncap;
  readonly slot: number;
  readonly control: {
    readonly cidr: string;
    readonly prefix: number;
    /** The root namespace's address: API server and controller listen here. */
    readonly hostIP: string;
    /** The root namespace's veth. */
    readonly hostIface: string;
  };
  readonly fabricNetns: string;
  readonly routerNetns: string;
  readonly externalNetns: string;
  /** Which underlay subnets are in use (hybrid uses both). */
  readonly underlaySubnets: readonly number[];
  readonly nodes: readonly LabNodeSpec[];
  readonly apiServerURL: string;
  readonly controllerAddress: string;
}

/** The prefix of a lab's names: `al` + 5 hex digits of its data directory's hash + `-` (8 characters). */
export function labPrefix(dataDir: string): string {
  return `al${labId(dataDir)}-`;
}

export function labId(dataDir: string): string {
  return createHash('sha256').update(dataDir).digest('hex').slice(0, 5);
}

export function nodeName(index: number): string {
  return `node-${index}`;
}

/** Name of a Pod's network namespace (from its uid, so a recreated Pod never collides with the old one). */
export function podNetnsName(prefix: string, podUid: string): string {
  const id = podUid.replace(/[^0-9a-f]/gi, '').slice(0, 12);
  if (id.length < 8) throw new ValidationError('metadata.uid', `too short for a namespace name: "${podUid}"`);
  return `${prefix}pod-${id}`;
}

export function controlSubnet(slot: number): { cidr: string; hostIP: string; base: number } {
  if (!Number.isInteger(slot) || slot < 0 || slot >= CONTROL_SLOTS) {
    throw new ValidationError('slot', `must be 0-${CONTROL_SLOTS - 1}, got ${slot}`);
  }
  const base = slot * 32;
  return { cidr: `198.51.100.${base}/27`, hostIP: `198.51.100.${base + 1}`, base };
}

export interface TopologyOptions {
  readonly dataDir: string;
  readonly nodes: number;
  readonly encap: LabEncap;
  readonly slot: number;
}

export function parseEncap(value: string, field = '--encap'): LabEncap {
  if ((LAB_ENCAPS as readonly string[]).includes(value)) return value as LabEncap;
  throw new ValidationError(field, `must be one of ${LAB_ENCAPS.join(', ')}, got "${value}"`);
}

export function validateNodeCount(n: number, field = '--nodes'): number {
  if (!Number.isInteger(n) || n < 1 || n > MAX_NODES) {
    throw new ValidationError(field, `must be an integer from 1 to ${MAX_NODES}, got ${String(n)}`);
  }
  return n;
}

/** The underlay subnet of Node `index`: hybrid mode puts every second Node behind the router. */
export function underlaySubnetOf(index: number, encap: LabEncap): number {
  return encap === 'hybrid' && index % 2 === 0 ? 1 : 0;
}

export function buildTopology(o: TopologyOptions): LabTopology {
  validateNodeCount(o.nodes, 'nodes');
  const prefix = labPrefix(o.dataDir);
  const ctl = controlSubnet(o.slot);
  const nodes: LabNodeSpec[] = [];
  for (let i = 1; i <= o.nodes; i++) {
    const subnet = underlaySubnetOf(i, o.encap);
    const ul = UNDERLAY_SUBNETS[subnet];
    if (ul === undefined) throw new Error(`no underlay subnet ${subnet}`);
    nodes.push({
      index: i,
      name: nodeName(i),
      netns: `${prefix}${nodeName(i)}`,
      controlIP: `198.51.100.${ctl.base + 1 + i}`,
      underlaySubnet: subnet,
      nodeIP: `192.0.2.${ul.base + 10 + i}`,
      underlayPrefix: ul.prefix,
      gatewayIP: ul.router,
    });
  }
  const subnets = [...new Set(nodes.map((n) => n.underlaySubnet))].sort();
  return {
    id: labId(o.dataDir),
    prefix,
    encap: o.encap,
    slot: o.slot,
    control: { cidr: ctl.cidr, prefix: 27, hostIP: ctl.hostIP, hostIface: `${prefix}ctl` },
    fabricNetns: `${prefix}fabric`,
    routerNetns: `${prefix}router`,
    externalNetns: `${prefix}external`,
    underlaySubnets: subnets,
    nodes,
    apiServerURL: `https://${ctl.hostIP}:${API_SERVER_PORT}`,
    controllerAddress: `${ctl.hostIP}:${CONTROLLER_PORT}`,
  };
}

/** The Antrea agent settings a lab traffic mode stands for. */
export function agentTrafficSettings(encap: LabEncap): {
  trafficEncapMode: 'encap' | 'noEncap' | 'hybrid';
  tunnelType: 'geneve' | 'vxlan';
} {
  switch (encap) {
    case 'geneve':
      return { trafficEncapMode: 'encap', tunnelType: 'geneve' };
    case 'vxlan':
      return { trafficEncapMode: 'encap', tunnelType: 'vxlan' };
    case 'noencap':
      return { trafficEncapMode: 'noEncap', tunnelType: 'geneve' };
    case 'hybrid':
      return { trafficEncapMode: 'hybrid', tunnelType: 'geneve' };
  }
}
