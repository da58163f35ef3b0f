/**
 * The Linux RouteClient (Antrea's pkg/agent/route/route_linux.go, facts §4.1-§4.3), acting on the
 * namespace of its netlink socket and command runner:
 *
 * - ipsets ANTREA-POD-IP / ANTREA-POD-IP6 (hash:net) hold the local and every peer Pod CIDR, written
 *   with `ipset restore -exist`;
 * - Antrea's iptables chains (raw/mangle ANTREA-PREROUTING and ANTREA-OUTPUT, filter ANTREA-FORWARD,
 *   nat ANTREA-POSTROUTING), written whole with `iptables-restore --noflush` (declaring a chain
 *   flushes it, so the text is the complete content), comments prefixed `Antrea:`; the jumps from
 *   the built-in chains are checked with `iptables -C` and appended when missing;
 * - routes to peer Pod CIDRs through netlink, tagged with rtm_protocol {@link ROUTE_PROTOCOL} so
 *   reconcile only ever removes its own.
 *
 * `sync()` rewrites all of it (the agent calls it every 60 s), restoring what was removed by hand.
 */
import { HostNetworkError } from '../../common/host/errors.ts';
import type { PeerRoute, RouteClient, RouteConfig } from '../../common/host/routes.ts';
import type { CommandRunner } from '../../common/util/exec.ts';
import { errorMessage, ValidationError } from '../../common/util/errors.ts';
import { canonicalIp, cidrIp, ipFamily, parseCidr } from '../../common/util/ip.ts';
import { type Logger, nullLogger } from '../../common/util/log.ts';
import type { Netlink } from './netlink.ts';

/** rtm_protocol of the routes antrea-ts installs (an unassigned value, shown as "proto 145"). */
export const ROUTE_PROTOCOL = 145;
export const POD_IP_SET: Readonly<Record<4 | 6, string>> = { 4: 'ANTREA-POD-IP', 6: 'ANTREA-POD-IP6' };
/** The iptables comment prefix Antrea uses. */
export const COMMENT_PREFIX = 'Antrea:';
/** fwmark of locally generated packets sent into the gateway (Antrea's HostLocalSourceMark). */
export const HOST_LOCAL_SOURCE_MARK = 0x80000000;

type Family = 4 | 6;

/** The jump rules from built-in chains into Antrea's: [table, built-in chain, Antrea chain, comment]. */
export const JUMP_RULES: readonly (readonly [string, string, string, string])[] = [
  ['raw', 'PREROUTING', 'ANTREA-PREROUTING', 'Antrea: jump to Antrea prerouting rules'],
  ['raw', 'OUTPUT', 'ANTREA-OUTPUT', 'Antrea: jump to Antrea output rules'],
  ['mangle', 'PREROUTING', 'ANTREA-PREROUTING', 'Antrea: jump to Antrea prerouting rules'],
  ['mangle', 'OUTPUT', 'ANTREA-OUTPUT', 'Antrea: jump to Antrea output rules'],
  ['filter', 'FORWARD', 'ANTREA-FORWARD', 'Antrea: jump to Antrea forwarding rules'],
  ['nat', 'POSTROUTING', 'ANTREA-POSTROUTING', 'Antrea: jump to Antrea postrouting rules'],
];

function familyOf(cidr: string): Family {
  return parseCidr(cidr).family;
}

function supportsEncap(cfg: RouteConfig): boolean {
  return cfg.trafficEncapMode === 'encap' || cfg.trafficEncapMode === 'hybrid';
}

const quote = (s: string): string => `"${s}"`;

/**
 * The complete `iptables-restore --noflush` input of one family: every Antrea chain with its rules.
 * Pure; the golden text of the unit tests.
 */
export function iptablesRestoreInput(cfg: RouteConfig, family: Family): string {
  const gw = cfg.gatewayName;
  const set = POD_IP_SET[family];
  const lines: string[] = [];
  const comment = (text: string): string => `-m comment --comment ${quote(`${COMMENT_PREFIX} ${text}`)}`;
  lines.push('*raw', ':ANTREA-PREROUTING - [0:0]', ':ANTREA-OUTPUT - [0:0]');
  if (supportsEncap(cfg) && cfg.tunnelType !== 'gre' && cfg.tunnelPort > 0) {
    const proto = cfg.tunnelType === 'stt' ? 'tcp' : 'udp';
    lines.push(
      `-A ANTREA-PREROUTING ${comment('do not track incoming encapsulation packets')} -p ${proto} -m ${proto} --dport ${cfg.tunnelPort} -m addrtype --dst-type LOCAL -j NOTRACK`,
      `-A ANTREA-OUTPUT ${comment('do not track outgoing encapsulation packets')} -p ${proto} -m ${proto} --dport ${cfg.tunnelPort} -m addrtype --src-type LOCAL -j NOTRACK`,
    );
  }
  lines.push('COMMIT');
  lines.push('*mangle', ':ANTREA-PREROUTING - [0:0]', ':ANTREA-OUTPUT - [0:0]');
  lines.push(
    `-A ANTREA-OUTPUT ${comment('mark LOCAL output packets')} -m addrtype --src-type LOCAL -o ${gw} -j MARK --or-mark 0x${HOST_LOCAL_SOURCE_MARK.toString(16)}`,
  );
  lines.push('COMMIT');
  lines.push('*filter', ':ANTREA-FORWARD - [0:0]');
  lines.push(
    `-A ANTREA-FORWARD ${comment('accept packets from local Pods')} -i ${gw} -j ACCEPT`,
    `-A ANTREA-FORWARD ${comment('accept packets to local Pods')} -o ${gw} -j ACCEPT`,
  );
  lines.push('COMMIT');
  lines.push('*nat', ':ANTREA-POSTROUTING - [0:0]');
  if (!cfg.noSNAT) {
    const random = cfg.snatFullyRandomPorts ? ' --random-fully' : '';
    for (const cidr of cfg.localPodCIDRs.filter((c) => familyOf(c) === family)) {
      lines.push(
        `-A ANTREA-POSTROUTING ${comment('masquerade Pod to external packets')} -s ${cidr} -m set ! --match-set ${set} dst ! -o ${gw} -j MASQUERADE${random}`,
      );
    }
  }
  lines.push(
    `-A ANTREA-POSTROUTING ${comment('masquerade LOCAL traffic')} -o ${gw} -m addrtype ! --src-type LOCAL --limit-iface-out -m addrtype --src-type LOCAL -j MASQUERADE`,
  );
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** `ipset restore -exist` input creating the family's Pod-address set with these members. Pure. */
export function ipsetRestoreInput(family: Family, members: readonly string[]): string {
  const set = POD_IP_SET[family];
  const lines = [`create ${set} hash:net family ${family === 4 ? 'inet' : 'inet6'} hashsize 1024 maxelem 65536`];
  for (const m of members) lines.push(`add ${set} ${m}`);
  lines.push('');
  return lines.join('\n');
}

export interface LinuxRouteClientOptions {
  readonly host: Netlink;
  /** Runs ipset, iptables and iptables-restore (in the agent's namespace). */
  readonly runner: CommandRunner;
  readonly logger?: Logger;
}

export class LinuxRouteClient implements RouteClient {
  private readonly host: Netlink;
  private readonly runner: CommandRunner;
  private readonly logger: Logger;
  private cfg: RouteConfig | undefined;
  private readonly peers = new Map<string, PeerRoute>();

  constructor(opts: LinuxRouteClientOptions) {
    this.host = opts.host;
    this.runner = opts.runner;
    this.logger = (opts.logger ?? nullLogger).child({ component: 'routes' });
  }

  private get config(): RouteConfig {
    if (this.cfg === undefined) throw new HostNetworkError('HOST_OPERATION_FAILED', 'route client not initialized');
    return this.cfg;
  }

  private families(): Family[] {
    const fams = new Set<Family>(this.config.localPodCIDRs.map(familyOf));
    for (const p of this.peers.values()) fams.add(familyOf(p.podCIDR));
    return [...fams].sort();
  }

  private members(family: Family): string[] {
    return [...this.config.localPodCIDRs, ...[...this.peers.keys()]].filter((c) => familyOf(c) === family);
  }

  async initialize(cfg: RouteConfig): Promise<void> {
    cfg.localPodCIDRs.forEach((c, i) => parseCidr(c, `localPodCIDRs[${i}]`));
    this.cfg = cfg;
    await this.writeHostRules();
    this.logger.info('host rules ready', { mode: cfg.trafficEncapMode, noSNAT: cfg.noSNAT });
  }

  /** ipsets, then the chains, then the jumps into them. */
  private async writeHostRules(): Promise<void> {
    const cfg = this.config;
    for (const family of this.families()) {
      await this.exec('ipset', ['restore', '-exist'], ipsetRestoreInput(family, this.members(family)));
      await this.exec(
        family === 4 ? 'iptables-restore' : 'ip6tables-restore',
        ['-w', '--noflush'],
        iptablesRestoreInput(cfg, family),
      );
      const iptables = family === 4 ? 'iptables' : 'ip6tables';
      for (const [table, chain, target, text] of JUMP_RULES) {
        const rule = ['-m', 'comment', '--comment', text, '-j', target];
        const check = await this.exec(iptables, ['-w', '-t', table, '-C', chain, ...rule], undefined, [1, 2]);
        if (check !== 0) await this.exec(iptables, ['-w', '-t', table, '-A', chain, ...rule]);
      }
    }
  }

  async addRoutes(peer: PeerRoute): Promise<void> {
    const cfg = this.config;
    const family = familyOf(peer.podCIDR);
    if (ipFamily(peer.nodeIP) !== family) {
      throw new ValidationError('nodeIP', `${peer.nodeIP} is not of the family of Pod CIDR ${peer.podCIDR}`);
    }
    const old = this.peers.get(peer.podCIDR);
    this.peers.set(peer.podCIDR, peer);
    await this.exec('ipset', ['add', POD_IP_SET[family], peer.podCIDR, '-exist']);
    if (old !== undefined && old.via !== peer.via) await this.removeRoute(old);
    await this.installRoute(peer, cfg);
    this.logger.debug('peer route installed', { node: peer.nodeName, podCIDR: peer.podCIDR, via: peer.via });
  }

  private async gatewayIndex(cfg: RouteConfig): Promise<number> {
    const link = await this.host.link(cfg.gatewayName);
    if (link === undefined) {
      throw new HostNetworkError('HOST_INTERFACE_NOT_FOUND', `gateway ${cfg.gatewayName} does not exist`);
    }
    return link.index;
  }

  private async installRoute(peer: PeerRoute, cfg: RouteConfig): Promise<void> {
    if (peer.via === 'tunnel') {
      await this.host.addRoute({
        dst: peer.podCIDR,
        gateway: peer.peerGatewayIP,
        oif: await this.gatewayIndex(cfg),
        onlink: true,
        protocol: ROUTE_PROTOCOL,
      });
    } else if (peer.via === 'direct') {
      await this.host.addRoute({ dst: peer.podCIDR, gateway: peer.nodeIP, protocol: ROUTE_PROTOCOL });
    }
  }

  private async removeRoute(peer: PeerRoute): Promise<void> {
    const family = familyOf(peer.podCIDR);
    for (const r of await this.host.routes(family)) {
      if (r.protocol === ROUTE_PROTOCOL && sameCidr(r.dst, peer.podCIDR)) {
        await this.host.deleteRoute({ dst: r.dst, protocol: ROUTE_PROTOCOL });
      }
    }
  }

  async deleteRoutes(podCIDR: string): Promise<void> {
    const family = familyOf(podCIDR);
    const peer = this.peers.get(podCIDR);
    this.peers.delete(podCIDR);
    await this.removeRoute(peer ?? { podCIDR, nodeName: '', nodeIP: '', peerGatewayIP: '', via: 'none' });
    if (!this.config.localPodCIDRs.some((c) => sameCidr(c, podCIDR))) {
      await this.exec('ipset', ['del', POD_IP_SET[family], podCIDR, '-exist']);
    }
  }

  async reconcile(desiredPodCIDRs: readonly string[]): Promise<void> {
    const cfg = this.config;
    const keep = (cidr: string): boolean => [...desiredPodCIDRs, ...cfg.localPodCIDRs].some((c) => sameCidr(c, cidr));
    for (const cidr of [...this.peers.keys()]) if (!keep(cidr)) this.peers.delete(cidr);
    for (const family of [4, 6] as const) {
      for (const r of await this.host.routes(family)) {
        if (r.protocol === ROUTE_PROTOCOL && !keep(r.dst)) {
          this.logger.info('removing a stale route', { dst: r.dst });
          await this.host.deleteRoute({ dst: r.dst, protocol: ROUTE_PROTOCOL });
        }
      }
      for (const m of await this.setMembers(family)) {
        if (!keep(m)) {
          this.logger.info('removing a stale Pod CIDR from the address set', { cidr: m });
          await this.exec('ipset', ['del', POD_IP_SET[family], m, '-exist']);
        }
      }
    }
  }

  /** The members of a family's set ([] when the set does not exist). */
  private async setMembers(family: Family): Promise<string[]> {
    const set = POD_IP_SET[family];
    const r = await this.runner.run('ipset', ['list', set, '-o', 'save'], { okExitCodes: [1] });
    if (r.exitCode !== 0) return [];
    const out: string[] = [];
    for (const line of r.stdout.split('\n')) {
      const m = /^add \S+ (\S+)/.exec(line.trim());
      if (m?.[1] !== undefined) out.push(m[1].includes('/') ? m[1] : `${m[1]}/${family === 4 ? 32 : 128}`);
    }
    return out;
  }

  async sync(): Promise<void> {
    if (this.cfg === undefined) return;
    const cfg = this.cfg;
    await this.writeHostRules();
    for (const family of this.families()) {
      const want = new Set(this.members(family).map(canonicalCidr));
      for (const m of await this.setMembers(family)) {
        if (!want.has(canonicalCidr(m))) await this.exec('ipset', ['del', POD_IP_SET[family], m, '-exist']);
      }
    }
    for (const peer of this.peers.values()) {
      try {
        await this.installRoute(peer, cfg);
      } catch (err) {
        this.logger.warn('restoring a peer route failed', { podCIDR: peer.podCIDR, error: errorMessage(err) });
      }
    }
  }

  private async exec(cmd: string, args: string[], input?: string, okExitCodes: number[] = []): Promise<number> {
    try {
      const r = await this.runner.run(cmd, args, {
        okExitCodes,
        timeoutMs: 30_000,
        ...(input === undefined ? {} : { input }),
      });
      return r.exitCode;
    } catch (err) {
      throw new HostNetworkError('HOST_OPERATION_FAILED', `${cmd} ${args.join(' ')}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
  }
}

function canonicalCidr(c: string): string {
  const p = parseCidr(c);
  return `${canonicalIp(cidrIp(c))}/${p.prefix}`;
}

function sameCidr(a: string, b: string): boolean {
  return canonicalCidr(a) === canonicalCidr(b);
}
