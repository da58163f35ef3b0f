/**
 * The lab's networks, built with `ip` inside the lab's own namespaces (see topology.ts for the plan):
 * the fabric namespace holding the control and underlay bridges, the router, the external
 * namespace, each Node's legs, and the one veth in the root namespace that reaches the control
 * subnet. Every step is idempotent where the kernel allows (existing links and namespaces are
 * reused), and {@link destroyLabNetwork} removes everything by name, with or without a record.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { AntreaError, errorMessage } from '../common/util/errors.ts';
import type { CommandRunner } from '../common/util/exec.ts';
import { type Logger, nullLogger } from '../common/util/log.ts';
import { NetnsManager, netnsRunner } from '../platform/linux/netns.ts';
import {
  CONTROL_SLOTS,
  controlSubnet,
  EXTERNAL_HOST_IP,
  EXTERNAL_ROUTER_IP,
  EXTERNAL_SUBNET,
  IFACES,
  type LabNodeSpec,
  type LabTopology,
  UNDERLAY_SUBNETS,
} from './topology.ts';

export type LabNetworkErrorCode = 'LAB_NO_CONTROL_SLOT' | 'LAB_NETWORK_FAILED';
export class LabNetworkError extends AntreaError<LabNetworkErrorCode> {}

const PROC_SYS = '/proc/sys';

interface IpAddrJson {
  readonly ifname?: string;
  readonly addr_info?: readonly { readonly family?: string; readonly local?: string; readonly prefixlen?: number }[];
}

/** IPv4 addresses of the current (root) namespace, per interface. */
async function rootIPv4(runner: CommandRunner): Promise<{ iface: string; ip: string }[]> {
  const r = await runner.run('ip', ['-j', '-4', 'addr', 'show'], { timeoutMs: 10_000 });
  const out: { iface: string; ip: string }[] = [];
  for (const l of JSON.parse(r.stdout || '[]') as IpAddrJson[]) {
    for (const a of l.addr_info ?? []) if (a.local !== undefined) out.push({ iface: l.ifname ?? '', ip: a.local });
  }
  return out;
}

function inControlSlot(ip: string, slot: number): boolean {
  const m = /^198\.51\.100\.(\d+)$/.exec(ip);
  if (m === null) return false;
  const last = Number(m[1]);
  const { base } = controlSubnet(slot);
  return last >= base && last < base + 32;
}

/** Writes a sysctl of the root namespace (a path under /proc/sys). */
function rootSysctl(key: string, value: string): void {
  const path = `${PROC_SYS}/${key}`;
  if (existsSync(path)) writeFileSync(path, value);
}

export interface FabricOptions {
  readonly runner: CommandRunner;
  readonly logger?: Logger;
  readonly signal?: AbortSignal;
}

export class LabFabric {
  private readonly runner: CommandRunner;
  private readonly netns: NetnsManager;
  private readonly logger: Logger;
  private readonly signal: AbortSignal | undefined;

  constructor(o: FabricOptions) {
    this.runner = o.runner;
    this.netns = new NetnsManager(o.runner);
    this.logger = (o.logger ?? nullLogger).child({ component: 'lab-fabric' });
    this.signal = o.signal;
  }

  private ip(ns: string | undefined, ...args: string[]): Promise<unknown> {
    const argv = ns === undefined ? args : ['-n', ns, ...args];
    return this.runner.run('ip', argv, {
      timeoutMs: 15_000,
      ...(this.signal === undefined ? {} : { signal: this.signal }),
    });
  }

  private async linkExists(ns: string | undefined, name: string): Promise<boolean> {
    const argv = ns === undefined ? ['link', 'show', name] : ['-n', ns, 'link', 'show', name];
    const r = await this.runner.run('ip', argv, { okExitCodes: [1], timeoutMs: 10_000 });
    return r.exitCode === 0;
  }

  private sysctl(ns: string, key: string, value: string): Promise<unknown> {
    return netnsRunner(this.runner, ns).run('sysctl', ['-q', '-w', `${key}=${value}`], { timeoutMs: 10_000 });
  }

  /**
   * Claims a free control slot: creates the root namespace's veth (its peer in the fabric
   * namespace, which must exist) and gives it the slot's first address. Another lab starting at the
   * same time may pick the same slot; both check again after adding the address and whoever sees a
   * competitor backs off to the next slot. Returns the slot. The root end never forwards, drops
   * packets whose source is not on the control subnet (strict reverse-path filter) and has IPv6
   * disabled, so the root namespace gains exactly one connected route.
   */
  async claimControlSlot(hostIface: string, fabricNetns: string, preferred?: number): Promise<number> {
    if (!(await this.linkExists(undefined, hostIface))) {
      await this.ip(
        undefined,
        'link',
        'add',
        hostIface,
        'type',
        'veth',
        'peer',
        'name',
        IFACES.fabricControlHost,
        'netns',
        fabricNetns,
      );
    }
    for (const key of ['disable_ipv6']) rootSysctl(`net/ipv6/conf/${hostIface}/${key}`, '1');
    rootSysctl(`net/ipv4/conf/${hostIface}/forwarding`, '0');
    rootSysctl(`net/ipv4/conf/${hostIface}/rp_filter`, '1');
    rootSysctl(`net/ipv4/conf/${hostIface}/accept_redirects`, '0');
    rootSysctl(`net/ipv4/conf/${hostIface}/send_redirects`, '0');
    const order = [...Array(CONTROL_SLOTS).keys()];
    if (preferred !== undefined) order.sort((a, b) => (a === preferred ? -1 : b === preferred ? 1 : a - b));
    for (const slot of order) {
      const { hostIP } = controlSubnet(slot);
      const taken = (await rootIPv4(this.runner)).some((a) => a.iface !== hostIface && inControlSlot(a.ip, slot));
      if (taken) continue;
      const mine = (await rootIPv4(this.runner)).some((a) => a.iface === hostIface && a.ip === hostIP);
      if (!mine) await this.ip(undefined, 'addr', 'add', `${hostIP}/27`, 'dev', hostIface);
      await new Promise((r) => setTimeout(r, 50 + Math.floor(Math.random() * 100)));
      const rivals = (await rootIPv4(this.runner)).filter((a) => a.iface !== hostIface && inControlSlot(a.ip, slot));
      if (rivals.length > 0) {
        this.logger.info('control slot contended, trying the next', { slot, rivals: rivals.map((r) => r.iface) });
        await this.ip(undefined, 'addr', 'del', `${hostIP}/27`, 'dev', hostIface);
        continue;
      }
      await this.ip(undefined, 'link', 'set', hostIface, 'up');
      return slot;
    }
    throw new LabNetworkError(
      'LAB_NO_CONTROL_SLOT',
      `no free control subnet in 198.51.100.0/24: ${CONTROL_SLOTS} labs (or other users of that range) already run on this machine`,
    );
  }

  /** Creates the fabric namespace (with its bridges) so the control veth can be created into it. */
  async createFabricNamespace(topo: Pick<LabTopology, 'fabricNetns'>): Promise<void> {
    const ns = topo.fabricNetns;
    await this.netns.ensure(ns);
    // Pure layer 2: no IPv6 link-local addresses or routes on the bridges and their ports.
    await this.sysctl(ns, 'net.ipv6.conf.default.disable_ipv6', '1');
    await this.sysctl(ns, 'net.ipv6.conf.all.disable_ipv6', '1');
    const bridges = [IFACES.fabricControlBridge, ...UNDERLAY_SUBNETS.map((_, i) => IFACES.fabricUnderlayBridge(i))];
    for (const br of bridges) {
      if (!(await this.linkExists(ns, br))) await this.ip(ns, 'link', 'add', br, 'type', 'bridge');
      await this.ip(ns, 'link', 'set', br, 'up');
    }
  }

  /**
   * Builds the rest of the shared network: connects the control veth's fabric end to the control
   * bridge, and creates the router (on both underlay subnets and the external network) and the
   * external namespace. Node legs come with {@link addNode}.
   */
  async build(topo: LabTopology): Promise<void> {
    const fab = topo.fabricNetns;
    await this.ip(fab, 'link', 'set', IFACES.fabricControlHost, 'master', IFACES.fabricControlBridge, 'up');

    const rtr = topo.routerNetns;
    await this.netns.ensure(rtr);
    for (const [i, subnet] of UNDERLAY_SUBNETS.entries()) {
      const leg = IFACES.routerUnderlay(i);
      if (!(await this.linkExists(rtr, leg))) {
        await this.ip(
          fab,
          'link',
          'add',
          IFACES.fabricUnderlayRouter(i),
          'type',
          'veth',
          'peer',
          'name',
          leg,
          'netns',
          rtr,
        );
        await this.ip(rtr, 'addr', 'add', `${subnet.router}/${subnet.prefix}`, 'dev', leg);
      }
      await this.ip(fab, 'link', 'set', IFACES.fabricUnderlayRouter(i), 'master', IFACES.fabricUnderlayBridge(i), 'up');
      await this.ip(rtr, 'link', 'set', leg, 'up');
    }
    const ext = topo.externalNetns;
    await this.netns.ensure(ext);
    if (!(await this.linkExists(rtr, IFACES.routerExternal))) {
      await this.ip(
        rtr,
        'link',
        'add',
        IFACES.routerExternal,
        'type',
        'veth',
        'peer',
        'name',
        IFACES.externalUplink,
        'netns',
        ext,
      );
      await this.ip(rtr, 'addr', 'add', `${EXTERNAL_ROUTER_IP}/24`, 'dev', IFACES.routerExternal);
      await this.ip(ext, 'addr', 'add', `${EXTERNAL_HOST_IP}/24`, 'dev', IFACES.externalUplink);
    }
    await this.ip(rtr, 'link', 'set', IFACES.routerExternal, 'up');
    await this.ip(ext, 'link', 'set', IFACES.externalUplink, 'up');
    await this.ip(ext, 'route', 'replace', 'default', 'via', EXTERNAL_ROUTER_IP);
    await this.sysctl(rtr, 'net.ipv4.ip_forward', '1');
    this.logger.debug('fabric built', { router: rtr, external: ext, externalSubnet: EXTERNAL_SUBNET });
  }

  /**
   * Creates Node `n`'s namespace with its control leg (ctl0, never forwarded to or from) and its
   * uplink (eth0 on its underlay subnet, default route via the router).
   */
  async addNode(topo: LabTopology, n: LabNodeSpec): Promise<void> {
    const fab = topo.fabricNetns;
    await this.netns.ensure(n.netns);
    if (!(await this.linkExists(n.netns, IFACES.nodeControl))) {
      await this.ip(
        fab,
        'link',
        'add',
        IFACES.fabricControlNode(n.index),
        'type',
        'veth',
        'peer',
        'name',
        IFACES.nodeControl,
        'netns',
        n.netns,
      );
      await this.ip(n.netns, 'addr', 'add', `${n.controlIP}/${topo.control.prefix}`, 'dev', IFACES.nodeControl);
    }
    await this.ip(fab, 'link', 'set', IFACES.fabricControlNode(n.index), 'master', IFACES.fabricControlBridge, 'up');
    await this.ip(n.netns, 'link', 'set', IFACES.nodeControl, 'up');
    if (!(await this.linkExists(n.netns, IFACES.nodeUplink))) {
      await this.ip(
        fab,
        'link',
        'add',
        IFACES.fabricUnderlayNode(n.index),
        'type',
        'veth',
        'peer',
        'name',
        IFACES.nodeUplink,
        'netns',
        n.netns,
      );
      await this.ip(n.netns, 'addr', 'add', `${n.nodeIP}/${n.underlayPrefix}`, 'dev', IFACES.nodeUplink);
    }
    await this.ip(
      fab,
      'link',
      'set',
      IFACES.fabricUnderlayNode(n.index),
      'master',
      IFACES.fabricUnderlayBridge(n.underlaySubnet),
      'up',
    );
    await this.ip(n.netns, 'link', 'set', IFACES.nodeUplink, 'up');
    await this.ip(n.netns, 'route', 'replace', 'default', 'via', n.gatewayIP, 'dev', IFACES.nodeUplink);
    // Pods must never reach the control subnet (and through it the root namespace), nor be reached from it.
    await this.sysctl(n.netns, `net.ipv4.conf.${IFACES.nodeControl}.forwarding`, '0');
    const ipt = netnsRunner(this.runner, n.netns);
    for (const dir of ['-i', '-o']) {
      const rule = [
        'FORWARD',
        dir,
        IFACES.nodeControl,
        '-m',
        'comment',
        '--comment',
        'antrea-lab: no forwarding to or from the control subnet',
        '-j',
        'DROP',
      ];
      const present = await ipt.run('iptables', ['-w', '-C', ...rule], { okExitCodes: [1], timeoutMs: 10_000 });
      if (present.exitCode !== 0) await ipt.run('iptables', ['-w', '-I', ...rule], { timeoutMs: 10_000 });
    }
  }
}

/**
 * Routes every Node's Pod CIDR to that Node: on the router, and on the other Nodes of the same
 * underlay subnet (the others reach it through their default route, the router). Idempotent.
 */
export async function routePodCIDRs(
  runner: CommandRunner,
  topo: LabTopology,
  podCIDRs: ReadonlyMap<string, string>,
): Promise<void> {
  for (const n of topo.nodes) {
    const cidr = podCIDRs.get(n.name);
    if (cidr === undefined) continue;
    await runner.run('ip', ['-n', topo.routerNetns, 'route', 'replace', cidr, 'via', n.nodeIP], { timeoutMs: 10_000 });
    for (const peer of topo.nodes) {
      if (peer.name === n.name || peer.underlaySubnet !== n.underlaySubnet) continue;
      await runner.run('ip', ['-n', peer.netns, 'route', 'replace', cidr, 'via', n.nodeIP], { timeoutMs: 10_000 });
    }
  }
}

interface LinkJson {
  readonly ifname?: string;
  readonly link_netnsid?: number;
  readonly linkinfo?: { readonly info_kind?: string };
}
interface RouteJson {
  readonly dst?: string;
  readonly dev?: string;
  readonly table?: string;
  readonly type?: string;
  readonly protocol?: string;
  readonly scope?: string;
}

async function ipJson<T>(runner: CommandRunner, ns: string | undefined, ...args: string[]): Promise<T[]> {
  const argv = ns === undefined ? ['-j', ...args] : ['-n', ns, '-j', ...args];
  const r = await runner.run('ip', argv, { timeoutMs: 10_000 });
  return JSON.parse(r.stdout.trim() === '' ? '[]' : r.stdout) as T[];
}

/**
 * Checks that nothing in the lab can route out of the machine: in every lab namespace, the only
 * link whose peer lives outside the lab's named namespaces (that is, in the root namespace) is the
 * fabric end of the control veth, which has no address and no route; and in the root namespace the
 * control veth carries exactly one route, the connected control subnet (plus the kernel's local
 * entries for its address), and no IPv6. Returns every problem found (empty: isolated).
 */
export async function auditIsolation(runner: CommandRunner, prefix: string, controlCidr: string): Promise<string[]> {
  const problems: string[] = [];
  const netns = new NetnsManager(runner);
  for (const ns of labNamespaces(netns, prefix)) {
    const ids = await ipJson<{ nsid?: number; name?: string }>(runner, ns, 'netns', 'list-id');
    const named = new Set(ids.filter((x) => x.name !== undefined).map((x) => x.nsid));
    const outward = (await ipJson<LinkJson>(runner, ns, '-d', 'link', 'show')).filter(
      (l) => l.link_netnsid !== undefined && !named.has(l.link_netnsid),
    );
    for (const l of outward) {
      if (!(ns === `${prefix}fabric` && l.ifname === IFACES.fabricControlHost)) {
        problems.push(`${ns}: ${l.ifname ?? '?'} has its peer outside the lab (root namespace?)`);
      }
    }
    const outwardNames = new Set(outward.map((l) => l.ifname));
    for (const route of [
      ...(await ipJson<RouteJson>(runner, ns, 'route', 'show', 'table', 'all')),
      ...(await ipJson<RouteJson>(runner, ns, '-6', 'route', 'show', 'table', 'all')),
    ]) {
      if (route.dev !== undefined && outwardNames.has(route.dev)) {
        problems.push(`${ns}: route ${route.dst ?? '?'} goes out through ${route.dev}, towards the root namespace`);
      }
    }
    for (const a of await ipJson<{ ifname?: string; addr_info?: unknown[] }>(runner, ns, 'addr', 'show')) {
      if (outwardNames.has(a.ifname) && (a.addr_info ?? []).length > 0) {
        problems.push(`${ns}: ${a.ifname ?? '?'} (peer in the root namespace) has an address`);
      }
    }
  }
  const host = `${prefix}ctl`;
  const hostRoutes = [
    ...(await ipJson<RouteJson>(runner, undefined, 'route', 'show', 'table', 'all')),
    ...(await ipJson<RouteJson>(runner, undefined, '-6', 'route', 'show', 'table', 'all')),
  ].filter((r) => r.dev === host);
  for (const r of hostRoutes) {
    const connected = r.dst === controlCidr && r.table === undefined && r.protocol === 'kernel' && r.scope === 'link';
    const local = r.table === 'local' && r.type !== undefined && ['local', 'broadcast'].includes(r.type);
    if (!connected && !local) problems.push(`root namespace: unexpected route ${JSON.stringify(r)} on ${host}`);
  }
  if (!hostRoutes.some((r) => r.dst === controlCidr && r.table === undefined)) {
    problems.push(`root namespace: no connected route ${controlCidr} on ${host}`);
  }
  return problems;
}

/** Names of existing namespaces that belong to the lab with `prefix`. */
export function labNamespaces(netns: NetnsManager, prefix: string): string[] {
  return netns.list().filter((n) => n.startsWith(prefix));
}

/**
 * Removes the lab's namespaces (Pods first, then Nodes, then the shared ones) and the root
 * namespace's control veth. Processes still inside those namespaces should be stopped first (a
 * namespace lives on while a process uses it, though its name is gone). Idempotent; returns what it
 * removed and every problem met (it carries on past them).
 */
export async function destroyLabNetwork(
  runner: CommandRunner,
  prefix: string,
  logger: Logger = nullLogger,
): Promise<{ removed: string[]; problems: string[] }> {
  const netns = new NetnsManager(runner);
  const removed: string[] = [];
  const problems: string[] = [];
  const rank = (n: string): number =>
    n.startsWith(`${prefix}pod-`) ? 0 : n.startsWith(`${prefix}node-`) ? 1 : n === `${prefix}fabric` ? 3 : 2;
  const names = labNamespaces(netns, prefix).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  for (const n of names) {
    try {
      await netns.delete(n);
      removed.push(`namespace ${n}`);
    } catch (err) {
      problems.push(`namespace ${n}: ${errorMessage(err)}`);
    }
  }
  const hostIface = `${prefix}ctl`;
  const r = await runner.run('ip', ['link', 'show', hostIface], { okExitCodes: [1], timeoutMs: 10_000 });
  if (r.exitCode === 0) {
    try {
      await runner.run('ip', ['link', 'del', hostIface], { timeoutMs: 10_000 });
      removed.push(`link ${hostIface}`);
    } catch (err) {
      // Removing the fabric namespace takes its veth peer, and so this end, with it (asynchronously).
      const still = await runner.run('ip', ['link', 'show', hostIface], { okExitCodes: [1], timeoutMs: 10_000 });
      if (still.exitCode === 0) problems.push(`link ${hostIface}: ${errorMessage(err)}`);
    }
  }
  if (removed.length > 0) logger.info('lab network removed', { removed: removed.length });
  return { removed, problems };
}
