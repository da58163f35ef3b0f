/**
 * rtnetlink through the `netlink` package: links (veth pairs, MTU, MAC, up), addresses and routes,
 * in the agent's namespace or, with {@link Netlink.openInNetns}, in a Pod's (the socket is created
 * inside the namespace and stays bound to it).
 *
 * Errors: every kernel refusal becomes a HostNetworkError HOST_OPERATION_FAILED whose details carry
 * the errno name (`errno`), so callers can tell EEXIST or ENODEV apart.
 */
import { AttrStream, createRtNetlink, ifla, rt, type RtNetlinkSocket, type StreamData } from 'netlink';
import { HostNetworkError } from '../../common/host/errors.ts';
import { type Cidr, formatIp, parseCidr, parseIp } from '../../common/util/ip.ts';
import { inNetns } from './libc.ts';

const NLM_F_REPLACE = 0x100;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const AF_INET = 2;
const AF_INET6 = 10;
const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3;
const RTNH_F_ONLINK = 4;

export interface LinkInfo {
  readonly index: number;
  readonly name: string;
  readonly mtu: number;
  /** Lower-case colon-separated, '' when none. */
  readonly mac: string;
  readonly up: boolean;
  /** The driver kind from IFLA_LINKINFO (veth, dummy, tun...), '' when not reported. */
  readonly kind: string;
  readonly alias: string;
  /**
   * IFLA_LINK: for a veth, the ifindex of its peer (in the peer's namespace, which may be another
   * one); undefined when not reported.
   */
  readonly peerIndex: number | undefined;
}

export interface AddressInfo {
  readonly index: number;
  readonly family: 4 | 6;
  /** address/prefix */
  readonly cidr: string;
  /** RT_SCOPE: 0 universe (global), 253 link, 254 host. */
  readonly scope: number;
}

export interface RouteInfo {
  readonly family: 4 | 6;
  /** Destination prefix, "0.0.0.0/0" / "::/0" for the default route. */
  readonly dst: string;
  readonly gateway: string | undefined;
  readonly oif: number | undefined;
  readonly scope: number;
  readonly table: number;
  /** rtm_protocol: who installed the route (2 kernel, 3 boot, 4 static, ...). */
  readonly protocol: number;
}

/** A route to add or delete with {@link Netlink.addRoute} / {@link Netlink.deleteRoute}. */
export interface RouteSpec {
  readonly dst: string;
  /** Next hop; without one the route has link scope. */
  readonly gateway?: string;
  /** Output link; the kernel picks it from the gateway when absent. */
  readonly oif?: number;
  /** Take the gateway as directly reachable on `oif` even outside its subnets (RTNH_F_ONLINK). */
  readonly onlink?: boolean;
  /** rtm_protocol to tag the route with (default 3, boot: what `ip route` uses). */
  readonly protocol?: number;
}

export interface VethSpec {
  /** The end created in this socket's namespace. */
  readonly name: string;
  readonly mtu: number;
  /** The other end: its name, the namespace it is created in (an open fd), MTU and MAC. */
  readonly peer: { readonly name: string; readonly netnsFd: number; readonly mtu: number; readonly mac?: string };
}

/** The errno name of a failed netlink request ("EEXIST"), or undefined for other errors. */
export function netlinkErrno(err: unknown): string | undefined {
  if (err instanceof HostNetworkError) return err.details['errno'] as string | undefined;
  const m = err instanceof Error ? /Request rejected: (\w+)/.exec(err.message) : null;
  return m?.[1];
}

function toBuffer(s: StreamData): Buffer {
  if (s instanceof Uint8Array) return Buffer.from(s);
  if (Array.isArray(s)) return Buffer.concat(s.map((b) => Buffer.from(b)));
  const out = new AttrStream();
  s(out);
  return Buffer.concat(out.bufs.map((b) => Buffer.from(b)));
}

export function macToBuffer(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

function macString(b: Buffer | undefined): string {
  if (b === undefined || b.length === 0) return '';
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

function familyCode(f: 4 | 6): number {
  return f === 4 ? AF_INET : AF_INET6;
}

export class Netlink {
  private readonly sock: RtNetlinkSocket;
  private closed = false;

  private constructor(sock: RtNetlinkSocket) {
    this.sock = sock;
  }

  /** A socket in the calling process's namespace. */
  static open(): Netlink {
    return new Netlink(createRtNetlink());
  }

  /** A socket inside the namespace at `netnsPath` (throws ENOENT-style errors if it does not exist). */
  static openInNetns(netnsPath: string): Netlink {
    return new Netlink(inNetns(netnsPath, () => createRtNetlink()));
  }

  /** Closes the socket. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.socket.close();
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const errno = netlinkErrno(err);
      throw new HostNetworkError('HOST_OPERATION_FAILED', `${what}: ${errno ?? String(err)}`, {
        cause: err,
        details: { errno },
      });
    }
  }

  private static linkInfo(m: rt.LinkMessage): LinkInfo {
    let kind = '';
    if (m.attrs.linkinfo !== undefined) {
      try {
        kind = ifla.parseInfo(m.attrs.linkinfo).kind ?? '';
      } catch {
        kind = '';
      }
    }
    return {
      index: m.data.index ?? 0,
      name: m.attrs.ifname ?? '',
      mtu: m.attrs.mtu ?? 0,
      mac: macString(m.attrs.address),
      up: m.data.flags?.up === true,
      kind,
      alias: m.attrs.ifalias ?? '',
      peerIndex: m.attrs.link !== undefined && m.attrs.link.length >= 4 ? m.attrs.link.readUInt32LE(0) : undefined,
    };
  }

  /** The link named `name`, or undefined. */
  async link(name: string): Promise<LinkInfo | undefined> {
    try {
      const [m] = await this.sock.getLink({}, { ifname: name });
      return m === undefined ? undefined : Netlink.linkInfo(m);
    } catch (err) {
      if (netlinkErrno(err) === 'ENODEV') return undefined;
      throw new HostNetworkError('HOST_OPERATION_FAILED', `get link ${name}: ${String(err)}`, {
        cause: err,
        details: { errno: netlinkErrno(err) },
      });
    }
  }

  async links(): Promise<LinkInfo[]> {
    const all = await this.call('list links', () => this.sock.getLinks());
    return all.map((m) => Netlink.linkInfo(m));
  }

  /** Creates a veth pair (NLM_F_EXCL: fails with EEXIST when the name is taken here). */
  async createVeth(spec: VethSpec): Promise<void> {
    const peerAttrs: ifla.LinkAttrs = { ifname: spec.peer.name, netNsFd: spec.peer.netnsFd, mtu: spec.peer.mtu };
    if (spec.peer.mac !== undefined) peerAttrs.address = macToBuffer(spec.peer.mac);
    const peer = Buffer.concat([rt.formatLink({}), toBuffer(ifla.formatLinkAttrs(peerAttrs))]);
    const linkinfo = toBuffer(ifla.formatInfo({ kind: 'veth', data: toBuffer(ifla.formatVethInfo({ peer })) }));
    await this.call(`create veth ${spec.name}/${spec.peer.name}`, () =>
      this.sock.newLink({}, { ifname: spec.name, mtu: spec.mtu, linkinfo }, { flags: NLM_F_CREATE | NLM_F_EXCL }),
    );
  }

  /** Sets what is given (MTU, MAC, alias, up/down, promiscuous mode) on link `index`, in one message. */
  async setLink(
    index: number,
    change: { up?: boolean; promisc?: boolean; mtu?: number; mac?: string; alias?: string },
  ): Promise<void> {
    const attrs: ifla.LinkAttrs = {};
    if (change.mtu !== undefined) attrs.mtu = change.mtu;
    if (change.mac !== undefined) attrs.address = macToBuffer(change.mac);
    if (change.alias !== undefined) attrs.ifalias = change.alias;
    const data: rt.Link = { index };
    if (change.up !== undefined || change.promisc !== undefined) {
      data.change = {
        ...(change.up === undefined ? {} : { up: true }),
        ...(change.promisc === undefined ? {} : { promisc: true }),
      };
      data.flags = {
        ...(change.up === true ? { up: true } : {}),
        ...(change.promisc === true ? { promisc: true } : {}),
      };
    }
    await this.call(`set link ${index}`, () => this.sock.setLink(data, attrs));
  }

  /** Deletes link `index`. Absent (ENODEV): nothing happens. */
  async deleteLink(index: number): Promise<void> {
    try {
      await this.sock.delLink({ index });
    } catch (err) {
      if (netlinkErrno(err) === 'ENODEV') return;
      throw new HostNetworkError('HOST_OPERATION_FAILED', `delete link ${index}: ${String(err)}`, {
        cause: err,
        details: { errno: netlinkErrno(err) },
      });
    }
  }

  /** Addresses, optionally of one link. */
  async addresses(index?: number): Promise<AddressInfo[]> {
    const all = await this.call('list addresses', () => this.sock.getAddresses());
    const out: AddressInfo[] = [];
    for (const m of all) {
      if (index !== undefined && m.data.index !== index) continue;
      const bytes = m.attrs.local ?? m.attrs.address;
      if (bytes === undefined) continue;
      out.push({
        index: m.data.index ?? 0,
        family: bytes.length === 4 ? 4 : 6,
        cidr: `${formatIp(bytes)}/${m.data.prefixlen ?? 0}`,
        scope: m.data.scope ?? 0,
      });
    }
    return out;
  }

  /** Adds (or replaces) an address on link `index`. */
  async addAddress(index: number, cidr: string): Promise<void> {
    const c = parseCidr(cidr, 'address');
    const attrs: rt.AddressAttrs = { local: c.ip, address: c.ip };
    await this.call(`add address ${cidr} to link ${index}`, () =>
      this.sock.newAddress({ family: familyCode(c.family), prefixlen: c.prefix, index }, attrs, {
        flags: NLM_F_CREATE | NLM_F_REPLACE,
      }),
    );
  }

  /** Removes an address. Absent (EADDRNOTAVAIL): nothing happens. */
  async deleteAddress(index: number, cidr: string): Promise<void> {
    const c = parseCidr(cidr, 'address');
    try {
      await this.sock.delAddress(
        { family: familyCode(c.family), prefixlen: c.prefix, index },
        { local: c.ip, address: c.ip },
      );
    } catch (err) {
      if (netlinkErrno(err) === 'EADDRNOTAVAIL') return;
      throw new HostNetworkError('HOST_OPERATION_FAILED', `delete address ${cidr}: ${String(err)}`, {
        cause: err,
        details: { errno: netlinkErrno(err) },
      });
    }
  }

  /** Routes of the main table. */
  async routes(family: 4 | 6): Promise<RouteInfo[]> {
    const all = await this.call('list routes', () => this.sock.getRoutes({ family: familyCode(family) }));
    const out: RouteInfo[] = [];
    for (const m of all) {
      const table = m.attrs.table ?? m.data.table ?? 0;
      if (table !== RT_TABLE_MAIN) continue;
      const len = m.data.dstLen ?? 0;
      const zero = family === 4 ? '0.0.0.0' : '::';
      out.push({
        family,
        dst: `${m.attrs.dst === undefined ? zero : formatIp(m.attrs.dst)}/${len}`,
        gateway: m.attrs.gateway === undefined ? undefined : formatIp(m.attrs.gateway),
        oif: m.attrs.oif,
        scope: typeof m.data.scope === 'number' ? m.data.scope : 0,
        table,
        protocol: typeof m.data.protocol === 'number' ? m.data.protocol : 0,
      });
    }
    return out;
  }

  /**
   * Adds (or replaces) a route in the main table: to `dst` via `gateway` (when given) out of link
   * `oif` (when given). Without a gateway the route has link scope.
   */
  async addRoute(r: RouteSpec): Promise<void> {
    const { data, attrs } = Netlink.routeMessage(r);
    await this.call(`add route ${r.dst}${r.gateway === undefined ? '' : ` via ${r.gateway}`}`, () =>
      this.sock.newRoute(data, attrs, { flags: NLM_F_CREATE | NLM_F_REPLACE }),
    );
  }

  /** Deletes a route of the main table matching `r` (dst, and gateway/oif when given). Absent (ESRCH): nothing happens. */
  async deleteRoute(r: RouteSpec): Promise<void> {
    const { data, attrs } = Netlink.routeMessage(r);
    try {
      await this.sock.delRoute({ ...data, scope: 'NOWHERE' }, attrs);
    } catch (err) {
      if (netlinkErrno(err) === 'ESRCH') return;
      throw new HostNetworkError('HOST_OPERATION_FAILED', `delete route ${r.dst}: ${String(err)}`, {
        cause: err,
        details: { errno: netlinkErrno(err) },
      });
    }
  }

  private static routeMessage(r: RouteSpec): { data: rt.Route; attrs: rt.RouteAttrs } {
    const dst: Cidr = parseCidr(r.dst, 'route.dst');
    const attrs: rt.RouteAttrs = { table: RT_TABLE_MAIN };
    if (r.oif !== undefined) attrs.oif = r.oif;
    if (dst.prefix > 0) attrs.dst = dst.ip;
    if (r.gateway !== undefined) attrs.gateway = parseIp(r.gateway, 'route.gw');
    const data: rt.Route = {
      family: familyCode(dst.family),
      dstLen: dst.prefix,
      table: RT_TABLE_MAIN,
      // rtm_protocol is any byte; the package's enum only names the assigned ones.
      // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment
      protocol: r.protocol ?? RTPROT_BOOT,
      scope: r.gateway === undefined ? 'LINK' : 'UNIVERSE',
      type: 'UNICAST',
    };
    if (r.onlink === true) data.flags = { __unknown: RTNH_F_ONLINK };
    return { data, attrs };
  }
}
