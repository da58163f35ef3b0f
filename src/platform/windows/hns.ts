/**
 * HNS (Host Networking Service) through PowerShell: the Transparent network the Node's Pods and the
 * OVS extension live on, and one endpoint per Pod attached to the Pod's network namespace.
 *
 * Reads use the inbox HostNetworkingService cmdlets (`Get-HnsNetwork`, `Get-HnsEndpoint`), whose
 * output the parsers below turn into typed objects. The inbox module has no New-/Attach- cmdlets,
 * so writes go through two functions the session prelude ({@link HNS_PRELUDE}) defines: HNS's JSON
 * API (`HNSCall` in vmcompute.dll, the V1 API hcsshim uses: POST /networks, POST /networks/{id}
 * for the extension switch, POST/DELETE /endpoints) and HCN's namespace API (computenetwork.dll
 * `HcnModifyNamespace`, what hcsshim's `hcn.AddNamespaceEndpoint` calls) for attaching an endpoint
 * to a Pod's namespace.
 */
import { ValidationError } from '../../common/util/errors.ts';
import { asList, psQuote, type PowerShellRunner } from './powershell.ts';

/** Antrea's HNS network name (util.LocalHNSNetwork). */
export const HNS_NETWORK_NAME = 'antrea-hnsnetwork';
/** The Open vSwitch Hyper-V switch extension. */
export const OVS_EXTENSION_ID = '583CC151-73EC-4A6A-8B47-578297AD7623';
export const OVS_EXTENSION_NAME = 'Open vSwitch Extension';

export interface HnsSubnet {
  readonly addressPrefix: string;
  readonly gatewayAddress: string;
}

export interface HnsExtension {
  readonly id: string;
  readonly name: string;
  readonly isEnabled: boolean;
}

export interface HnsNetwork {
  readonly id: string;
  readonly name: string;
  /** Transparent, L2Bridge, NAT, ICS, Overlay... */
  readonly type: string;
  /** The physical adapter the network is bound to ('' for internal networks). */
  readonly networkAdapterName: string;
  /** Lower-case colon-separated MAC ('' when absent). */
  readonly sourceMac: string;
  readonly managementIp: string;
  readonly subnets: readonly HnsSubnet[];
  readonly extensions: readonly HnsExtension[];
}

export interface HnsEndpoint {
  readonly id: string;
  readonly name: string;
  /** The network's ID. */
  readonly virtualNetwork: string;
  readonly virtualNetworkName: string;
  readonly ipAddress: string;
  readonly prefixLength: number | undefined;
  /** Lower-case colon-separated MAC. */
  readonly macAddress: string;
  readonly gatewayAddress: string;
  readonly dnsServerList: readonly string[];
  readonly dnsSuffix: string;
}

type Rec = Record<string, unknown>;

function rec(v: unknown, what: string): Rec {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ValidationError(what, `expected an object, got ${v === null ? 'null' : typeof v}`);
  }
  return v as Rec;
}

/** A string property ('' when absent or null). HNS spells keys inconsistently (ID/Id): both work. */
function s(o: Rec, ...keys: string[]): string {
  for (const k of keys) {
    const v = o[k];
    if (typeof v === 'string') return v;
    if (typeof v === 'number') return String(v);
  }
  return '';
}

/** HNS and NetAdapter print MACs as 00-15-5D-0A-0B-0C; the core uses 00:15:5d:0a:0b:0c. */
export function normalizeMac(mac: string): string {
  if (mac === '') return '';
  const hex = mac.replace(/[-:]/g, '').toLowerCase();
  if (!/^[0-9a-f]{12}$/.test(hex)) throw new ValidationError('mac', `"${mac}" is not a MAC address`);
  return hex.match(/../g)?.join(':') ?? '';
}

/** The HNS spelling of a MAC (00-15-5D-0A-0B-0C). */
export function hnsMac(mac: string): string {
  return normalizeMac(mac).toUpperCase().replace(/:/g, '-');
}

/** Parses Get-HnsNetwork output (one object, an array, or nothing). */
export function parseHnsNetworks(json: unknown): HnsNetwork[] {
  return asList(json).map((v, i) => {
    const o = rec(v, `Get-HnsNetwork[${i}]`);
    return {
      id: s(o, 'ID', 'Id', 'id').toLowerCase(),
      name: s(o, 'Name'),
      type: s(o, 'Type'),
      networkAdapterName: s(o, 'NetworkAdapterName'),
      sourceMac: normalizeMac(s(o, 'SourceMac')),
      managementIp: s(o, 'ManagementIP'),
      subnets: asList(o['Subnets']).map((x, j) => {
        const sub = rec(x, `Get-HnsNetwork[${i}].Subnets[${j}]`);
        return { addressPrefix: s(sub, 'AddressPrefix'), gatewayAddress: s(sub, 'GatewayAddress') };
      }),
      extensions: asList(o['Extensions']).map((x, j) => {
        const ext = rec(x, `Get-HnsNetwork[${i}].Extensions[${j}]`);
        return { id: s(ext, 'Id', 'ID').toUpperCase(), name: s(ext, 'Name'), isEnabled: ext['IsEnabled'] === true };
      }),
    };
  });
}

/** Parses Get-HnsEndpoint output. */
export function parseHnsEndpoints(json: unknown): HnsEndpoint[] {
  return asList(json).map((v, i) => {
    const o = rec(v, `Get-HnsEndpoint[${i}]`);
    const dns = s(o, 'DNSServerList');
    const prefix = o['PrefixLength'];
    return {
      id: s(o, 'ID', 'Id').toLowerCase(),
      name: s(o, 'Name'),
      virtualNetwork: s(o, 'VirtualNetwork').toLowerCase(),
      virtualNetworkName: s(o, 'VirtualNetworkName'),
      ipAddress: s(o, 'IPAddress'),
      prefixLength: typeof prefix === 'number' ? prefix : undefined,
      macAddress: normalizeMac(s(o, 'MacAddress')),
      gatewayAddress: s(o, 'GatewayAddress'),
      dnsServerList: dns === '' ? [] : dns.split(',').map((x) => x.trim()),
      dnsSuffix: s(o, 'DNSSuffix'),
    };
  });
}

/**
 * Run once per PowerShell session: the HNS and HCN entry points (P/Invoke) and the two functions
 * the scripts of this module call. Errors from HNS become terminating PowerShell errors whose
 * message is HNS's, with category ObjectNotFound when HNS says the element was not found.
 */
export const HNS_PRELUDE = `
if (-not ('AntreaTs.HnsApi' -as [type])) {
Add-Type -TypeDefinition @'
using System;
using System.Runtime.InteropServices;
namespace AntreaTs {
  public static class HnsApi {
    [DllImport("vmcompute.dll")]
    public static extern void HNSCall([MarshalAs(UnmanagedType.LPWStr)] string method,
      [MarshalAs(UnmanagedType.LPWStr)] string path, [MarshalAs(UnmanagedType.LPWStr)] string request,
      [MarshalAs(UnmanagedType.LPWStr)] out string response);
    [DllImport("computenetwork.dll")]
    public static extern int HcnOpenNamespace(ref Guid id, out IntPtr ns,
      [MarshalAs(UnmanagedType.LPWStr)] out string errorRecord);
    [DllImport("computenetwork.dll")]
    public static extern int HcnModifyNamespace(IntPtr ns, [MarshalAs(UnmanagedType.LPWStr)] string settings,
      [MarshalAs(UnmanagedType.LPWStr)] out string errorRecord);
    [DllImport("computenetwork.dll")]
    public static extern int HcnCloseNamespace(IntPtr ns);
  }
}
'@
}
function global:Invoke-AntreaHns {
  param([ValidateSet('GET','POST','DELETE')][string]$Method, [string]$Path, [string]$Data = '')
  $response = ''
  [AntreaTs.HnsApi]::HNSCall($Method, $Path, $Data, [ref]$response)
  $r = $response | ConvertFrom-Json
  if (-not $r.Success) {
    $category = if ($r.Error -match 'not found') { 'ObjectNotFound' } else { 'InvalidOperation' }
    Write-Error -Message ("HNS {0} {1}: {2}" -f $Method, $Path, $r.Error) -Category $category -ErrorId 'HnsCallFailed'
  }
  $r.Output
}
function global:Set-AntreaNamespaceEndpoint {
  param([Guid]$NamespaceId, [Guid]$EndpointId, [ValidateSet('Add','Remove')][string]$RequestType)
  $ns = [IntPtr]::Zero; $err = ''
  $hr = [AntreaTs.HnsApi]::HcnOpenNamespace([ref]$NamespaceId, [ref]$ns, [ref]$err)
  if ($hr -ne 0) { Write-Error -Message ("HCN namespace {0}: 0x{1:X8} {2}" -f $NamespaceId, $hr, $err) -Category ObjectNotFound -ErrorId 'HcnNamespaceNotFound' }
  try {
    $settings = @{ ResourceType = 'Endpoint'; RequestType = $RequestType; Settings = @{ Id = $EndpointId.ToString() } } | ConvertTo-Json -Compress
    $hr = [AntreaTs.HnsApi]::HcnModifyNamespace($ns, $settings, [ref]$err)
    if ($hr -ne 0) { Write-Error -Message ("HCN {0} endpoint {1} in namespace {2}: 0x{3:X8} {4}" -f $RequestType, $EndpointId, $NamespaceId, $hr, $err) -Category InvalidOperation -ErrorId 'HcnModifyNamespaceFailed' }
  } finally { [void][AntreaTs.HnsApi]::HcnCloseNamespace($ns) }
}
`;

/** A GUID as HNS prints it (lower-case, no braces); ValidationError naming `field` otherwise. */
export function checkGuid(id: string, field: string): string {
  const g = id.replace(/^\{|\}$/g, '').toLowerCase();
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(g)) {
    throw new ValidationError(field, `"${id}" is not a GUID`);
  }
  return g;
}

export interface NewNetworkRequest {
  readonly name: string;
  readonly adapterName: string;
  /** The Node's Pod CIDR and its gateway (first address). */
  readonly subnet: HnsSubnet;
  /** The Node's IP (stays on the host vNIC). */
  readonly managementIp: string;
  readonly sourceMac: string;
}

export interface NewEndpointRequest {
  readonly name: string;
  readonly networkId: string;
  readonly ipAddress: string;
  readonly prefixLength: number;
  readonly gatewayAddress: string;
  readonly dnsServerList: readonly string[];
  readonly dnsSuffix: string;
}

/** HNS operations; every method documents idempotency and absence. */
export class HnsClient {
  private readonly ps: PowerShellRunner;

  constructor(ps: PowerShellRunner) {
    this.ps = ps;
  }

  /** The network named `name`, or undefined. Read-only. */
  async networkByName(name: string): Promise<HnsNetwork | undefined> {
    const out = await this.ps.invoke(`Get-HnsNetwork | Where-Object Name -EQ ${psQuote(name, 'network.name')}`);
    return parseHnsNetworks(out)[0];
  }

  /**
   * Creates a Transparent network on the adapter (Antrea's PrepareHNSNetwork request). Not
   * idempotent by itself: callers look the network up first.
   */
  async createTransparentNetwork(req: NewNetworkRequest): Promise<HnsNetwork> {
    const body = JSON.stringify({
      Name: req.name,
      Type: 'Transparent',
      NetworkAdapterName: req.adapterName,
      Subnets: [{ AddressPrefix: req.subnet.addressPrefix, GatewayAddress: req.subnet.gatewayAddress }],
      ManagementIP: req.managementIp,
      SourceMac: hnsMac(req.sourceMac),
    });
    const out = await this.ps.invoke(
      `Invoke-AntreaHns -Method POST -Path '/networks' -Data ${psQuote(body, 'network')}`,
    );
    const net = parseHnsNetworks(out)[0];
    if (net === undefined) throw new ValidationError('network', 'HNS returned no network');
    return net;
  }

  /** Enables (or disables) a switch extension on the network. Idempotent. */
  async setExtension(networkId: string, extensionId: string, enabled: boolean): Promise<void> {
    const id = checkGuid(networkId, 'networkId');
    const body = JSON.stringify({
      Extensions: [{ Id: checkGuid(extensionId, 'extensionId').toUpperCase(), IsEnabled: enabled }],
    });
    await this.ps.invoke(
      `Invoke-AntreaHns -Method POST -Path '/networks/${id}' -Data ${psQuote(body, 'extension')} | Out-Null`,
    );
  }

  /** Deletes the network. Absent: nothing happens. */
  async deleteNetwork(networkId: string): Promise<void> {
    const id = checkGuid(networkId, 'networkId');
    await this.ps.invoke(
      `Get-HnsNetwork | Where-Object ID -EQ '${id}' | ForEach-Object { Invoke-AntreaHns -Method DELETE -Path "/networks/$($_.ID)" } | Out-Null`,
    );
  }

  /** Every endpoint. Read-only. */
  async endpoints(): Promise<HnsEndpoint[]> {
    return parseHnsEndpoints(await this.ps.invoke('Get-HnsEndpoint'));
  }

  /** The endpoint named `name`, or undefined. Read-only. */
  async endpointByName(name: string): Promise<HnsEndpoint | undefined> {
    const out = await this.ps.invoke(`Get-HnsEndpoint | Where-Object Name -EQ ${psQuote(name, 'endpoint.name')}`);
    return parseHnsEndpoints(out)[0];
  }

  /** Creates an endpoint. Not idempotent: HNS allows duplicate names, so callers look up first. */
  async createEndpoint(req: NewEndpointRequest): Promise<HnsEndpoint> {
    const body = JSON.stringify({
      Name: req.name,
      VirtualNetwork: checkGuid(req.networkId, 'networkId'),
      IPAddress: req.ipAddress,
      PrefixLength: req.prefixLength,
      GatewayAddress: req.gatewayAddress,
      DNSServerList: req.dnsServerList.join(','),
      DNSSuffix: req.dnsSuffix,
    });
    const out = await this.ps.invoke(
      `Invoke-AntreaHns -Method POST -Path '/endpoints' -Data ${psQuote(body, 'endpoint')}`,
    );
    const ep = parseHnsEndpoints(out)[0];
    if (ep === undefined) throw new ValidationError('endpoint', 'HNS returned no endpoint');
    return ep;
  }

  /** Deletes the endpoint. Absent: nothing happens. */
  async deleteEndpoint(endpointId: string): Promise<void> {
    const id = checkGuid(endpointId, 'endpointId');
    await this.ps.invoke(
      `Get-HnsEndpoint | Where-Object ID -EQ '${id}' | ForEach-Object { Invoke-AntreaHns -Method DELETE -Path "/endpoints/$($_.ID)" } | Out-Null`,
    );
  }

  /** Adds the endpoint to the namespace (HCN). Throws ObjectNotFound when the namespace is gone. */
  async attachEndpoint(namespaceId: string, endpointId: string): Promise<void> {
    await this.ps.invoke(
      `Set-AntreaNamespaceEndpoint -NamespaceId '${checkGuid(namespaceId, 'netns')}' -EndpointId '${checkGuid(endpointId, 'endpointId')}' -RequestType Add`,
    );
  }

  /** Removes the endpoint from the namespace (HCN). */
  async detachEndpoint(namespaceId: string, endpointId: string): Promise<void> {
    await this.ps.invoke(
      `Set-AntreaNamespaceEndpoint -NamespaceId '${checkGuid(namespaceId, 'netns')}' -EndpointId '${checkGuid(endpointId, 'endpointId')}' -RequestType Remove`,
    );
  }

  /** Whether the HNS namespace exists. Read-only. */
  async namespaceExists(namespaceId: string): Promise<boolean> {
    const out = await this.ps.invoke(
      `@(Get-HnsNamespace | Where-Object ID -EQ '${checkGuid(namespaceId, 'netns')}').Count -gt 0`,
    );
    return out[0] === true;
  }
}
