/**
 * Host networking cmdlets (NetAdapter, NetTCPIP, NetNat, NetSecurity, Hyper-V) through PowerShell:
 * typed results parsed from their JSON output and the scripts that change them. Every query selects
 * the properties it reads (ConvertTo-Json of a whole CIM object is large and slow); enum-valued CIM
 * properties arrive as numbers (AddressFamily 2 = IPv4, 23 = IPv6; Forwarding 0/1).
 */
import { ValidationError } from '../../common/util/errors.ts';
import { parseCidr } from '../../common/util/ip.ts';
import { normalizeMac } from './hns.ts';
import { asList, psInt, psQuote, type PowerShellRunner } from './powershell.ts';

export const AF_INET = 2;
export const AF_INET6 = 23;

export interface NetAdapter {
  readonly name: string;
  readonly interfaceDescription: string;
  readonly ifIndex: number;
  /** Up, Disconnected, Disabled, Not Present... */
  readonly status: string;
  /** Lower-case colon-separated. */
  readonly macAddress: string;
  readonly virtual: boolean;
}

export interface NetIPAddress {
  readonly ipAddress: string;
  readonly interfaceIndex: number;
  readonly interfaceAlias: string;
  readonly family: 4 | 6;
  readonly prefixLength: number;
}

export interface NetIPInterface {
  readonly ifIndex: number;
  readonly interfaceAlias: string;
  readonly family: 4 | 6;
  readonly nlMtu: number;
  readonly forwarding: boolean;
}

export interface NetRoute {
  readonly destinationPrefix: string;
  readonly nextHop: string;
  readonly interfaceIndex: number;
  readonly interfaceAlias: string;
  readonly routeMetric: number;
  readonly family: 4 | 6;
}

export interface NetNat {
  readonly name: string;
  readonly internalIPInterfaceAddressPrefix: string;
  readonly active: boolean;
}

type Rec = Record<string, unknown>;

function rec(v: unknown, what: string): Rec {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ValidationError(what, `expected an object, got ${v === null ? 'null' : typeof v}`);
  }
  return v as Rec;
}

function str(o: Rec, key: string, what: string): string {
  const v = o[key];
  if (v === null || v === undefined) return '';
  if (typeof v !== 'string') throw new ValidationError(`${what}.${key}`, `expected a string, got ${typeof v}`);
  return v;
}

function num(o: Rec, key: string, what: string): number {
  const v = o[key];
  if (typeof v !== 'number')
    throw new ValidationError(`${what}.${key}`, `expected a number, got ${v === null ? 'null' : typeof v}`);
  return v;
}

function family(o: Rec, what: string): 4 | 6 {
  const v = o['AddressFamily'];
  // Numbers from Windows PowerShell 5.1; the enum's name if a caller formatted it.
  if (v === AF_INET || v === 'IPv4') return 4;
  if (v === AF_INET6 || v === 'IPv6') return 6;
  throw new ValidationError(`${what}.AddressFamily`, `unknown address family ${JSON.stringify(v)}`);
}

/** Parses `Get-NetAdapter | Select-Object Name,InterfaceDescription,ifIndex,Status,MacAddress,Virtual`. */
export function parseNetAdapters(json: unknown): NetAdapter[] {
  return asList(json).map((v, i) => {
    const w = `Get-NetAdapter[${i}]`;
    const o = rec(v, w);
    return {
      name: str(o, 'Name', w),
      interfaceDescription: str(o, 'InterfaceDescription', w),
      ifIndex: num(o, 'ifIndex', w),
      status: str(o, 'Status', w),
      macAddress: normalizeMac(str(o, 'MacAddress', w)),
      virtual: o['Virtual'] === true,
    };
  });
}

/** Parses `Get-NetIPAddress | Select-Object IPAddress,InterfaceIndex,InterfaceAlias,AddressFamily,PrefixLength`. */
export function parseNetIPAddresses(json: unknown): NetIPAddress[] {
  return asList(json).map((v, i) => {
    const w = `Get-NetIPAddress[${i}]`;
    const o = rec(v, w);
    return {
      ipAddress: str(o, 'IPAddress', w),
      interfaceIndex: num(o, 'InterfaceIndex', w),
      interfaceAlias: str(o, 'InterfaceAlias', w),
      family: family(o, w),
      prefixLength: num(o, 'PrefixLength', w),
    };
  });
}

/** Parses `Get-NetIPInterface | Select-Object ifIndex,InterfaceAlias,AddressFamily,NlMtu,Forwarding`. */
export function parseNetIPInterfaces(json: unknown): NetIPInterface[] {
  return asList(json).map((v, i) => {
    const w = `Get-NetIPInterface[${i}]`;
    const o = rec(v, w);
    const fwd = o['Forwarding'];
    return {
      ifIndex: num(o, 'ifIndex', w),
      interfaceAlias: str(o, 'InterfaceAlias', w),
      family: family(o, w),
      nlMtu: num(o, 'NlMtu', w),
      forwarding: fwd === 1 || fwd === 'Enabled',
    };
  });
}

/** Parses `Get-NetRoute | Select-Object DestinationPrefix,NextHop,InterfaceIndex,InterfaceAlias,RouteMetric,AddressFamily`. */
export function parseNetRoutes(json: unknown): NetRoute[] {
  return asList(json).map((v, i) => {
    const w = `Get-NetRoute[${i}]`;
    const o = rec(v, w);
    return {
      destinationPrefix: str(o, 'DestinationPrefix', w),
      nextHop: str(o, 'NextHop', w),
      interfaceIndex: num(o, 'InterfaceIndex', w),
      interfaceAlias: str(o, 'InterfaceAlias', w),
      routeMetric: num(o, 'RouteMetric', w),
      family: family(o, w),
    };
  });
}

/** Parses `Get-NetNat | Select-Object Name,InternalIPInterfaceAddressPrefix,Active`. */
export function parseNetNats(json: unknown): NetNat[] {
  return asList(json).map((v, i) => {
    const w = `Get-NetNat[${i}]`;
    const o = rec(v, w);
    return {
      name: str(o, 'Name', w),
      internalIPInterfaceAddressPrefix: str(o, 'InternalIPInterfaceAddressPrefix', w),
      active: o['Active'] === true,
    };
  });
}

/** A CIDR checked for the cmdlets (ValidationError naming `field`). */
function cidr(value: string, field: string): string {
  parseCidr(value, field);
  return psQuote(value, field);
}

/** Firewall rule as Antrea names it. */
export interface FirewallRuleSpec {
  readonly name: string;
  readonly direction: 'Inbound' | 'Outbound';
  /** -RemoteAddress for Inbound, -LocalAddress for Outbound. */
  readonly address: string;
}

/** Host network queries and changes; each method states idempotency and absence. */
export class WindowsNet {
  private readonly ps: PowerShellRunner;

  constructor(ps: PowerShellRunner) {
    this.ps = ps;
  }

  /** All adapters (hidden ones included: the OVS internal ports' vNICs can be hidden). Read-only. */
  async adapters(): Promise<NetAdapter[]> {
    return parseNetAdapters(
      await this.ps.invoke(
        'Get-NetAdapter -IncludeHidden | Select-Object Name,InterfaceDescription,ifIndex,Status,MacAddress,Virtual',
      ),
    );
  }

  /** The adapter named `name`, or undefined. Read-only. */
  async adapter(name: string): Promise<NetAdapter | undefined> {
    const out = await this.ps.invoke(
      `Get-NetAdapter -IncludeHidden | Where-Object Name -EQ ${psQuote(name, 'adapter')} | Select-Object Name,InterfaceDescription,ifIndex,Status,MacAddress,Virtual`,
    );
    return parseNetAdapters(out)[0];
  }

  /** Unicast addresses, of one interface when `ifIndex` is given. Read-only. */
  async ipAddresses(ifIndex?: number): Promise<NetIPAddress[]> {
    const filter = ifIndex === undefined ? '' : ` -InterfaceIndex ${psInt(ifIndex, 'ifIndex', 1)}`;
    return parseNetIPAddresses(
      await this.ps.invoke(
        `@(Get-NetIPAddress${filter} -ErrorAction SilentlyContinue) | Select-Object IPAddress,InterfaceIndex,InterfaceAlias,AddressFamily,PrefixLength`,
      ),
    );
  }

  /** The IP interfaces of `ifIndex` (one per family). Read-only. */
  async ipInterfaces(ifIndex: number): Promise<NetIPInterface[]> {
    return parseNetIPInterfaces(
      await this.ps.invoke(
        `Get-NetIPInterface -InterfaceIndex ${psInt(ifIndex, 'ifIndex', 1)} | Select-Object ifIndex,InterfaceAlias,AddressFamily,NlMtu,Forwarding`,
      ),
    );
  }

  /** Sets the IPv4 MTU and/or forwarding of the interface. Idempotent. */
  async setIPInterface(ifIndex: number, opts: { mtu?: number; forwarding?: boolean }): Promise<void> {
    const args = [
      ...(opts.mtu === undefined ? [] : [`-NlMtuBytes ${psInt(opts.mtu, 'mtu', 576, 65535)}`]),
      ...(opts.forwarding === undefined ? [] : [`-Forwarding ${opts.forwarding ? 'Enabled' : 'Disabled'}`]),
    ];
    if (args.length === 0) return;
    await this.ps.invoke(
      `Set-NetIPInterface -InterfaceIndex ${psInt(ifIndex, 'ifIndex', 1)} -AddressFamily IPv4 ${args.join(' ')}`,
    );
  }

  /** Adds an address (CIDR) to the interface. Fails with ResourceExists if present. */
  async addIPAddress(ifIndex: number, address: string, defaultGateway?: string): Promise<void> {
    const c = parseCidr(address, 'address');
    const ip = address.split('/')[0] ?? '';
    const gw =
      defaultGateway === undefined || defaultGateway === ''
        ? ''
        : ` -DefaultGateway ${psQuote(defaultGateway, 'defaultGateway')}`;
    await this.ps.invoke(
      `New-NetIPAddress -InterfaceIndex ${psInt(ifIndex, 'ifIndex', 1)} -IPAddress ${psQuote(ip, 'address')} -PrefixLength ${c.prefix}${gw} | Out-Null`,
    );
  }

  /** Removes an address from the interface. Absent: nothing happens. */
  async removeIPAddress(ifIndex: number, ip: string): Promise<void> {
    await this.ps.invoke(
      `Get-NetIPAddress -InterfaceIndex ${psInt(ifIndex, 'ifIndex', 1)} -ErrorAction SilentlyContinue | Where-Object IPAddress -EQ ${psQuote(ip, 'ip')} | Remove-NetIPAddress -Confirm:$false`,
    );
  }

  /** Enables a disabled adapter. Enabled already: nothing happens. */
  async enableAdapter(name: string): Promise<void> {
    await this.ps.invoke(
      `Get-NetAdapter -IncludeHidden | Where-Object { $_.Name -eq ${psQuote(name, 'adapter')} -and $_.Status -eq 'Disabled' } | Enable-NetAdapter -Confirm:$false`,
    );
  }

  /** IPv4 routes, of one interface when given. Read-only. */
  async routes(ifIndex?: number): Promise<NetRoute[]> {
    const filter = ifIndex === undefined ? '' : ` -InterfaceIndex ${psInt(ifIndex, 'ifIndex', 1)}`;
    return parseNetRoutes(
      await this.ps.invoke(
        `@(Get-NetRoute -AddressFamily IPv4${filter} -ErrorAction SilentlyContinue) | Select-Object DestinationPrefix,NextHop,InterfaceIndex,InterfaceAlias,RouteMetric,AddressFamily`,
      ),
    );
  }

  /** Adds a route (ActiveStore only: the agent re-creates routes at start). Fails if it exists. */
  async addRoute(dst: string, nextHop: string, ifIndex: number, metric: number): Promise<void> {
    await this.ps.invoke(
      `New-NetRoute -DestinationPrefix ${cidr(dst, 'destination')} -NextHop ${psQuote(nextHop, 'nextHop')} -InterfaceIndex ${psInt(ifIndex, 'ifIndex', 1)} -RouteMetric ${psInt(metric, 'metric', 0, 9999)} -PolicyStore ActiveStore | Out-Null`,
    );
  }

  /** Removes the routes to `dst` on the interface. Absent: nothing happens. */
  async removeRoutes(dst: string, ifIndex: number): Promise<void> {
    await this.ps.invoke(
      `Get-NetRoute -DestinationPrefix ${cidr(dst, 'destination')} -InterfaceIndex ${psInt(ifIndex, 'ifIndex', 1)} -ErrorAction SilentlyContinue | Remove-NetRoute -Confirm:$false`,
    );
  }

  /** The NetNat named `name`, or undefined. Read-only. */
  async nat(name: string): Promise<NetNat | undefined> {
    const out = await this.ps.invoke(
      `Get-NetNat | Where-Object Name -EQ ${psQuote(name, 'nat')} | Select-Object Name,InternalIPInterfaceAddressPrefix,Active`,
    );
    return parseNetNats(out)[0];
  }

  async newNat(name: string, internalPrefix: string): Promise<void> {
    await this.ps.invoke(
      `New-NetNat -Name ${psQuote(name, 'nat')} -InternalIPInterfaceAddressPrefix ${cidr(internalPrefix, 'internalPrefix')} | Out-Null`,
    );
  }

  /** Removes the NetNat. Absent: nothing happens. */
  async removeNat(name: string): Promise<void> {
    await this.ps.invoke(`Get-NetNat | Where-Object Name -EQ ${psQuote(name, 'nat')} | Remove-NetNat -Confirm:$false`);
  }

  /**
   * Creates the firewall rule unless a rule with that name exists (then it is left as is; a
   * changed Pod CIDR is handled by removing the rule first). Idempotent.
   */
  async ensureFirewallRule(rule: FirewallRuleSpec): Promise<boolean> {
    const addr = rule.direction === 'Inbound' ? '-RemoteAddress' : '-LocalAddress';
    const out = await this.ps.invoke(
      `if (Get-NetFirewallRule -Name ${psQuote(rule.name, 'rule')} -ErrorAction SilentlyContinue) { $false } else { New-NetFirewallRule -Name ${psQuote(rule.name, 'rule')} -DisplayName ${psQuote(rule.name, 'rule')} -Group 'Antrea' -Enabled True -Direction ${rule.direction} -Action Allow -Protocol Any ${addr} ${cidr(rule.address, 'address')} | Out-Null; $true }`,
    );
    return out[0] === true;
  }

  /** Renames the host vNIC the HNS network created (MAC `mac`) to `newName`, VM adapter and NetAdapter both. Idempotent. */
  async renameHostVNic(switchName: string, mac: string, newName: string): Promise<void> {
    const m = normalizeMac(mac).replace(/:/g, '').toUpperCase();
    await this.ps.invoke(
      [
        `$vna = Get-VMNetworkAdapter -ManagementOS -SwitchName ${psQuote(switchName, 'switch')} | Where-Object MacAddress -EQ '${m}'`,
        `if ($vna -and $vna.Name -ne ${psQuote(newName, 'name')}) { $vna | Rename-VMNetworkAdapter -NewName ${psQuote(newName, 'name')} }`,
        `$na = Get-NetAdapter -IncludeHidden | Where-Object Name -EQ ${psQuote(`vEthernet (${newName})`, 'name')}`,
        `if ($na) { $na | Rename-NetAdapter -NewName ${psQuote(newName, 'name')} }`,
      ].join('\n'),
    );
  }

  /** Enables software RSC on the VM switch when it is off. Idempotent. */
  async enableSoftwareRsc(switchName: string): Promise<void> {
    await this.ps.invoke(
      `$sw = Get-VMSwitch -Name ${psQuote(switchName, 'switch')}; if (-not $sw.SoftwareRscEnabled) { Set-VMSwitch -ComputerName localhost -Name ${psQuote(switchName, 'switch')} -EnableSoftwareRsc $True }`,
    );
  }
}
