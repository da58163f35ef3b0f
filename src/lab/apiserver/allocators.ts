/**
 * Allocators the API server runs inside writes, as kube-apiserver does: Service ClusterIPs from the
 * service CIDR, NodePorts from 30000-32767, and (optionally) per-Node podCIDRs from a cluster CIDR.
 * Allocation is lowest-free-first so results are reproducible; state is rebuilt from the stored
 * objects at start-up (nothing is persisted separately).
 */
import { ValidationError } from '../../common/util/errors.ts';
import type { NodeCidrAllocator, ServiceAllocators } from './resources.ts';

export interface Ipv4Cidr {
  readonly base: number;
  readonly prefix: number;
  readonly size: number;
}

export function ipv4ToInt(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Parses an IPv4 CIDR; `field` names the option for the error. */
export function parseIpv4Cidr(cidr: string, field: string): Ipv4Cidr {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  const ip = m === null ? undefined : ipv4ToInt(m[1] ?? '');
  const prefix = Number(m?.[2]);
  if (m === null || ip === undefined || prefix > 30 || prefix < 8) {
    throw new ValidationError(field, `must be an IPv4 CIDR with a prefix length of 8-30, got ${JSON.stringify(cidr)}`);
  }
  const size = 2 ** (32 - prefix);
  return { base: ip - (ip % size), prefix, size };
}

export class ServiceAllocator implements ServiceAllocators {
  readonly serviceCIDR: string;
  private readonly cidr: Ipv4Cidr;
  private readonly usedIPs = new Set<number>();
  private readonly usedPorts = new Set<number>();
  private readonly portMin: number;
  private readonly portMax: number;

  constructor(serviceCIDR: string, nodePortRange: readonly [number, number] = [30000, 32767]) {
    this.cidr = parseIpv4Cidr(serviceCIDR, 'serviceCIDR');
    this.serviceCIDR = `${intToIpv4(this.cidr.base)}/${this.cidr.prefix}`;
    [this.portMin, this.portMax] = nodePortRange;
  }

  /** The first address of the range: the `kubernetes` Service's ClusterIP. */
  get firstIP(): string {
    return intToIpv4(this.cidr.base + 1);
  }

  allocateIP(ip: string | undefined): { ip: string } | { error: string } {
    const { base, size } = this.cidr;
    if (ip !== undefined) {
      const n = ipv4ToInt(ip);
      if (n === undefined) return { error: 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)' };
      if (n <= base || n >= base + size - 1) {
        return { error: `provided IP is not in the valid range. The range of valid IPs is ${this.serviceCIDR}` };
      }
      if (this.usedIPs.has(n)) return { error: 'provided IP is already allocated' };
      this.usedIPs.add(n);
      return { ip };
    }
    for (let n = base + 1; n < base + size - 1; n++) {
      if (!this.usedIPs.has(n)) {
        this.usedIPs.add(n);
        return { ip: intToIpv4(n) };
      }
    }
    return { error: 'range is full' };
  }

  releaseIP(ip: string): void {
    const n = ipv4ToInt(ip);
    if (n !== undefined) this.usedIPs.delete(n);
  }

  allocateNodePort(port: number | undefined): { port: number } | { error: string } {
    if (port !== undefined) {
      if (port < this.portMin || port > this.portMax) {
        return {
          error: `provided port is not in the valid range. The range of valid ports is ${this.portMin}-${this.portMax}`,
        };
      }
      if (this.usedPorts.has(port)) return { error: 'provided port is already allocated' };
      this.usedPorts.add(port);
      return { port };
    }
    for (let p = this.portMin; p <= this.portMax; p++) {
      if (!this.usedPorts.has(p)) {
        this.usedPorts.add(p);
        return { port: p };
      }
    }
    return { error: 'range is full' };
  }

  releaseNodePort(port: number): void {
    this.usedPorts.delete(port);
  }
}

/** Hands out `/maskSize` subnets of a cluster CIDR to Nodes (kube-controller-manager's node IPAM). */
export class PodCidrAllocator implements NodeCidrAllocator {
  private readonly cidr: Ipv4Cidr;
  private readonly maskSize: number;
  private readonly used = new Set<number>();

  constructor(clusterCIDR: string, maskSize = 24) {
    this.cidr = parseIpv4Cidr(clusterCIDR, 'clusterCIDR');
    if (!(maskSize > this.cidr.prefix && maskSize <= 30)) {
      throw new ValidationError('nodeCIDRMaskSize', `must be between ${this.cidr.prefix + 1} and 30, got ${maskSize}`);
    }
    this.maskSize = maskSize;
  }

  allocate(): string | undefined {
    const step = 2 ** (32 - this.maskSize);
    for (let n = this.cidr.base; n < this.cidr.base + this.cidr.size; n += step) {
      if (!this.used.has(n)) {
        this.used.add(n);
        return `${intToIpv4(n)}/${this.maskSize}`;
      }
    }
    return undefined;
  }

  /** Marks a subnet a restored Node already has as used. */
  reserve(cidr: string): void {
    const n = ipv4ToInt(cidr.split('/')[0] ?? '');
    if (n !== undefined) this.used.add(n);
  }

  release(cidr: string): void {
    const n = ipv4ToInt(cidr.split('/')[0] ?? '');
    if (n !== undefined) this.used.delete(n);
  }
}
