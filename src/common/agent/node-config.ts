/**
 * Where the agent learns its Node's identity and Pod CIDRs. In Antrea this is the Node object in
 * the Kubernetes API (spec.podCIDRs, InternalIP); {@link NodeConfigSource} keeps the agent core
 * independent of that. {@link StaticNodeConfigSource} takes the values from configuration or flags
 * (tests, the lab before its API server); a Kubernetes-backed source will implement the same
 * interface (waiting up to 60 s for the Node's Pod CIDR, as Antrea does).
 */
import { ValidationError } from '../util/errors.ts';
import { ipFamily, parseCidr } from '../util/ip.ts';

export interface NodeConfig {
  readonly name: string;
  /** At most one per family. */
  readonly podCIDRs: readonly string[];
  /** The Node's transport addresses. */
  readonly nodeIPs: readonly string[];
}

export interface NodeConfigSource {
  /**
   * Resolves once the Node's Pod CIDRs are known. Rejects when `signal` aborts or the source gives
   * up (NODE_CONFIG_UNAVAILABLE). Safe to call again (it returns the current values).
   */
  get(signal: AbortSignal): Promise<NodeConfig>;
}

/** Checks a Node configuration; throws ValidationError naming the field. */
export function validateNodeConfig(c: NodeConfig): void {
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(c.name) || c.name.length > 253) {
    throw new ValidationError('node.name', `invalid Node name ${JSON.stringify(c.name)} (a DNS subdomain)`);
  }
  if (c.podCIDRs.length === 0) throw new ValidationError('node.podCIDRs', 'at least one Pod CIDR is required');
  const families = new Set<number>();
  c.podCIDRs.forEach((cidr, i) => {
    const p = parseCidr(cidr, `node.podCIDRs[${i}]`);
    if (families.has(p.family)) throw new ValidationError(`node.podCIDRs[${i}]`, `a second IPv${p.family} Pod CIDR`);
    families.add(p.family);
    if (p.prefix > (p.family === 4 ? 30 : 126)) {
      throw new ValidationError(`node.podCIDRs[${i}]`, `/${p.prefix} leaves no room for Pods`);
    }
  });
  c.nodeIPs.forEach((ip, i) => {
    if (ipFamily(ip) === undefined)
      throw new ValidationError(`node.nodeIPs[${i}]`, `not an IP address: ${JSON.stringify(ip)}`);
  });
}

export class StaticNodeConfigSource implements NodeConfigSource {
  private readonly cfg: NodeConfig;

  constructor(cfg: NodeConfig) {
    validateNodeConfig(cfg);
    this.cfg = cfg;
  }

  get(signal: AbortSignal): Promise<NodeConfig> {
    signal.throwIfAborted();
    return Promise.resolve(this.cfg);
  }
}
