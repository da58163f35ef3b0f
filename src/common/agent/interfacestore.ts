/**
 * The interface store (Antrea's pkg/agent/interfacestore): every OVS port the agent owns, indexed by
 * name, container, Pod, IP and ofport. OVSDB is its persistence: each port carries
 * `external_ids:antrea-type` and, for Pods, the container's identity, so the store is rebuilt from
 * the bridge's ports when the agent restarts.
 */
import type { PortInfo, PortSpec } from '../ovs/ovsdb/bridge.ts';
import { canonicalIp } from '../util/ip.ts';

export const INTERFACE_TYPES = [
  'container',
  'gateway',
  'tunnel',
  'uplink',
  'host',
  'traffic-control',
  'ipsec-tunnel',
  'secondary-bridge',
] as const;
export type InterfaceType = (typeof INTERFACE_TYPES)[number];

/** external_ids keys (Antrea's names). */
export const EXT = {
  type: 'antrea-type',
  mac: 'attached-mac',
  containerId: 'container-id',
  ips: 'ip-address',
  podName: 'pod-name',
  podNamespace: 'pod-namespace',
  ifDev: 'if-dev',
  netns: 'net-ns',
} as const;

export interface ContainerInfo {
  readonly containerId: string;
  readonly podName: string;
  readonly podNamespace: string;
  /** The interface name inside the Pod. */
  readonly ifDev: string;
  /** CNI_NETNS as the runtime gave it. */
  readonly netns: string;
}

export interface InterfaceConfig {
  readonly type: InterfaceType;
  /** The OVS port (and host device) name. */
  readonly name: string;
  /** Assigned by ovs-vswitchd; undefined while unknown, -1 when it failed. */
  readonly ofport: number | undefined;
  /** The MAC behind the port: the container's for Pods, the device's otherwise. */
  readonly mac: string;
  /** Plain addresses (no prefix). */
  readonly ips: readonly string[];
  readonly container?: ContainerInfo;
}

/** The store key: `c/<containerID>/<ifDev>` for Pods, the port name otherwise. */
export function interfaceKey(i: Pick<InterfaceConfig, 'name' | 'container'>): string {
  return i.container === undefined ? i.name : containerKey(i.container.containerId, i.container.ifDev);
}

export function containerKey(containerId: string, ifDev: string): string {
  return `c/${containerId}/${ifDev}`;
}

/** The Port external_ids that describe a Pod interface. */
export function containerExternalIds(i: InterfaceConfig & { container: ContainerInfo }): Record<string, string> {
  const ids: Record<string, string> = {
    [EXT.type]: 'container',
    [EXT.mac]: i.mac,
    [EXT.containerId]: i.container.containerId,
    [EXT.ips]: i.ips.join(','),
    [EXT.podName]: i.container.podName,
    [EXT.podNamespace]: i.container.podNamespace,
    [EXT.netns]: i.container.netns,
  };
  if (i.container.ifDev !== 'eth0') ids[EXT.ifDev] = i.container.ifDev;
  return ids;
}

/** The port spec of a Pod interface (Linux: `system`, Windows: `internal`). */
export function containerPortSpec(i: InterfaceConfig & { container: ContainerInfo }, type: PortSpec['type']): PortSpec {
  return { name: i.name, type, externalIds: containerExternalIds(i) };
}

/**
 * Parses a port read from OVSDB back into an interface, or undefined for ports without a known
 * `antrea-type` (not ours) or a container port missing its container id.
 */
export function interfaceFromPort(p: PortInfo): InterfaceConfig | undefined {
  const ids = p.externalIds;
  const type = ids[EXT.type];
  if (type === undefined || !(INTERFACE_TYPES as readonly string[]).includes(type)) return undefined;
  const ips = (ids[EXT.ips] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const base = { type: type as InterfaceType, name: p.name, ofport: p.ofport, ips };
  if (type !== 'container') return { ...base, mac: p.mac ?? '' };
  const containerId = ids[EXT.containerId];
  if (containerId === undefined || containerId === '') return undefined;
  return {
    ...base,
    mac: ids[EXT.mac] ?? '',
    container: {
      containerId,
      podName: ids[EXT.podName] ?? '',
      podNamespace: ids[EXT.podNamespace] ?? '',
      ifDev: ids[EXT.ifDev] ?? 'eth0',
      netns: ids[EXT.netns] ?? '',
    },
  };
}

export class InterfaceStore {
  private readonly byKey = new Map<string, InterfaceConfig>();

  /** Replaces the content with the agent's ports among `ports` (start-up). Returns how many were kept. */
  initialize(ports: readonly PortInfo[]): number {
    this.byKey.clear();
    for (const p of ports) {
      const i = interfaceFromPort(p);
      if (i !== undefined) this.byKey.set(interfaceKey(i), i);
    }
    return this.byKey.size;
  }

  /** Adds or replaces an interface. */
  add(i: InterfaceConfig): void {
    this.byKey.set(interfaceKey(i), i);
  }

  /** Removes an interface by key. Absent: nothing happens. */
  delete(key: string): void {
    this.byKey.delete(key);
  }

  get(key: string): InterfaceConfig | undefined {
    return this.byKey.get(key);
  }

  byName(name: string): InterfaceConfig | undefined {
    for (const i of this.byKey.values()) if (i.name === name) return i;
    return undefined;
  }

  byContainer(containerId: string, ifDev: string): InterfaceConfig | undefined {
    return this.byKey.get(containerKey(containerId, ifDev));
  }

  /** Every interface of one container. */
  containerInterfaces(containerId: string): InterfaceConfig[] {
    return this.list('container').filter((i) => i.container?.containerId === containerId);
  }

  byPod(namespace: string, name: string): InterfaceConfig[] {
    return this.list('container').filter(
      (i) => i.container?.podNamespace === namespace && i.container.podName === name,
    );
  }

  byIp(ip: string): InterfaceConfig | undefined {
    const want = canonicalIp(ip);
    for (const i of this.byKey.values()) if (i.ips.some((x) => canonicalIp(x) === want)) return i;
    return undefined;
  }

  byOfport(ofport: number): InterfaceConfig | undefined {
    for (const i of this.byKey.values()) if (i.ofport === ofport) return i;
    return undefined;
  }

  /** All interfaces, or those of one type, sorted by name. */
  list(type?: InterfaceType): InterfaceConfig[] {
    return [...this.byKey.values()]
      .filter((i) => type === undefined || i.type === type)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  get size(): number {
    return this.byKey.size;
  }
}
