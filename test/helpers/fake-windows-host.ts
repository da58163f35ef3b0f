/**
 * Fakes for the Windows strategy's PowerShell port.
 *
 * RecordingPowerShell records every script (golden text) and answers from handlers keyed by a
 * regular expression (a value, a function of the match, or a thrown PowerShellError); unmatched
 * scripts fail, so a test sees every interaction.
 *
 * FakeWindowsHost is a small Windows host behind it: adapters, IP addresses and interfaces, routes,
 * NetNat, firewall rules, HNS networks, endpoints and namespaces. It answers the scripts the
 * strategy sends (parsing their quoted arguments) with objects shaped like the cmdlets' JSON
 * (PascalCase properties, enum values as numbers, MACs as 00-15-5D-..), and errors like the
 * cmdlets' (categories ObjectNotFound / ResourceExists).
 */
import { PowerShellError, type PowerShellRunner } from '../../src/platform/windows/powershell.ts';

type Answer = unknown[] | ((m: RegExpExecArray) => unknown[]);

export class RecordingPowerShell implements PowerShellRunner {
  readonly scripts: string[] = [];
  private readonly handlers: { re: RegExp; answer: Answer }[] = [];
  closed = 0;

  on(re: RegExp, answer: Answer): this {
    this.handlers.push({ re, answer });
    return this;
  }

  invoke(script: string): Promise<unknown[]> {
    this.scripts.push(script);
    for (const h of this.handlers) {
      const m = h.re.exec(script);
      if (m === null) continue;
      try {
        const v = typeof h.answer === 'function' ? h.answer(m) : h.answer;
        return Promise.resolve(JSON.parse(JSON.stringify(v)) as unknown[]);
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    }
    return Promise.reject(new PowerShellError('POWERSHELL_COMMAND_FAILED', `unexpected script: ${script}`));
  }

  close(): Promise<void> {
    this.closed++;
    return Promise.resolve();
  }

  /** The scripts as one text block, separated by lines with '---'. */
  get transcript(): string {
    return this.scripts.map((s) => `${s}\n---\n`).join('');
  }

  clear(): void {
    this.scripts.length = 0;
  }
}

/** A PowerShellError as a cmdlet raises it. */
export function cmdletError(command: string, category: string, message: string): PowerShellError {
  return new PowerShellError('POWERSHELL_COMMAND_FAILED', `${command}: ${message}`, {
    info: {
      message,
      exceptionType: 'Microsoft.Management.Infrastructure.CimException',
      category,
      errorId: `${category},${command}`,
      hresult: -2146233088,
      command,
    },
  });
}

/** The value of a PowerShell single-quoted literal. */
export function unquote(lit: string): string {
  return lit.slice(1, -1).replace(/(['\u2018\u2019\u201a\u201b])\1/g, '$1');
}

const Q = `('(?:[^'\\u2018\\u2019\\u201a\\u201b]|['\\u2018\\u2019\\u201a\\u201b]{2})*')`;
const q = (re: string): RegExp => new RegExp(re.replaceAll('@Q', Q));

export interface FakeAdapter {
  Name: string;
  InterfaceDescription: string;
  ifIndex: number;
  Status: string;
  MacAddress: string;
  Virtual: boolean;
  NlMtu: number;
  Forwarding: number;
}

interface FakeAddress {
  IPAddress: string;
  InterfaceIndex: number;
  PrefixLength: number;
}

interface FakeRoute {
  DestinationPrefix: string;
  NextHop: string;
  InterfaceIndex: number;
  RouteMetric: number;
}

interface FakeNetwork {
  ID: string;
  Name: string;
  Type: string;
  NetworkAdapterName: string;
  SourceMac: string;
  ManagementIP: string;
  Subnets: { AddressPrefix: string; GatewayAddress: string }[];
  Extensions: { Id: string; IsEnabled: boolean; Name: string }[];
}

interface FakeEndpoint {
  ID: string;
  Name: string;
  VirtualNetwork: string;
  VirtualNetworkName: string;
  IPAddress: string;
  PrefixLength: number;
  MacAddress: string;
  GatewayAddress: string;
  DNSServerList: string;
  DNSSuffix: string;
  namespaces: string[];
}

function guid(n: number, prefix = 'a'): string {
  return `${prefix.repeat(8)}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`.toUpperCase();
}

export class FakeWindowsHost {
  readonly ps = new RecordingPowerShell();
  readonly adapters: FakeAdapter[] = [];
  readonly addresses: FakeAddress[] = [];
  readonly routes: FakeRoute[] = [];
  readonly nats: { Name: string; InternalIPInterfaceAddressPrefix: string; Active: boolean }[] = [];
  readonly firewallRules = new Map<string, string>();
  readonly networks: FakeNetwork[] = [];
  readonly endpoints: FakeEndpoint[] = [];
  readonly namespaces = new Set<string>();
  /** Whether HNS moves the Node IP to the host vNIC by itself (it usually does). */
  hnsMovesIp = true;
  /** Scripts matching this fail once with the given error (fault injection). */
  failNext: { re: RegExp; error: PowerShellError } | undefined;
  private seq = 0;

  constructor() {
    this.install();
  }

  /** A physical NIC holding `ip` with a default route via `gateway`. */
  addUplink(name: string, mac: string, ip: string, prefix: number, gateway: string): FakeAdapter {
    const a = this.addAdapter(name, mac, { virtual: false, description: 'Intel(R) 82574L Gigabit Network Connection' });
    this.addresses.push({ IPAddress: ip, InterfaceIndex: a.ifIndex, PrefixLength: prefix });
    this.routes.push({ DestinationPrefix: '0.0.0.0/0', NextHop: gateway, InterfaceIndex: a.ifIndex, RouteMetric: 0 });
    return a;
  }

  addAdapter(
    name: string,
    mac: string,
    opts: { virtual?: boolean; description?: string; mtu?: number } = {},
  ): FakeAdapter {
    const a: FakeAdapter = {
      Name: name,
      InterfaceDescription: opts.description ?? 'Hyper-V Virtual Ethernet Adapter',
      ifIndex: 4 + this.adapters.length * 3,
      Status: 'Up',
      MacAddress: mac,
      Virtual: opts.virtual ?? true,
      NlMtu: opts.mtu ?? 1500,
      Forwarding: 0,
    };
    this.adapters.push(a);
    return a;
  }

  addNamespace(): string {
    const id = guid(++this.seq, 'c').toLowerCase();
    this.namespaces.add(id);
    return id;
  }

  private adapterByIndex(i: string): FakeAdapter {
    const a = this.adapters.find((x) => x.ifIndex === Number(i));
    if (a === undefined)
      throw cmdletError(
        'Get-NetIPInterface',
        'ObjectNotFound',
        `No MSFT_NetIPInterface objects found with property 'InterfaceIndex' equal to '${i}'.`,
      );
    return a;
  }

  private adapterOut(a: FakeAdapter): Record<string, unknown> {
    return {
      Name: a.Name,
      InterfaceDescription: a.InterfaceDescription,
      ifIndex: a.ifIndex,
      Status: a.Status,
      MacAddress: a.MacAddress,
      Virtual: a.Virtual,
    };
  }

  private addressOut(x: FakeAddress): Record<string, unknown> {
    return {
      IPAddress: x.IPAddress,
      InterfaceIndex: x.InterfaceIndex,
      InterfaceAlias: this.adapters.find((a) => a.ifIndex === x.InterfaceIndex)?.Name ?? '',
      AddressFamily: 2,
      PrefixLength: x.PrefixLength,
    };
  }

  private routeOut(r: FakeRoute): Record<string, unknown> {
    return {
      ...r,
      InterfaceAlias: this.adapters.find((a) => a.ifIndex === r.InterfaceIndex)?.Name ?? '',
      AddressFamily: 2,
    };
  }

  private netOut(n: FakeNetwork): Record<string, unknown> {
    return { ...n, State: 1, TotalEndpoints: this.endpoints.filter((e) => e.VirtualNetwork === n.ID).length };
  }

  private epOut(e: FakeEndpoint): Record<string, unknown> {
    const { namespaces: _ns, ...rest } = e;
    return { ...rest, State: 2, Type: 'Transparent', SharedContainers: [] };
  }

  private install(): void {
    const ps = this.ps;
    const fail = (fn: (m: RegExpExecArray) => unknown[]) => (m: RegExpExecArray) => {
      if (this.failNext !== undefined && this.failNext.re.test(m.input)) {
        const e = this.failNext.error;
        this.failNext = undefined;
        throw e;
      }
      return fn(m);
    };
    const on = (re: RegExp, fn: (m: RegExpExecArray) => unknown[]): void => void ps.on(re, fail(fn));

    // HNS
    on(q('^Get-HnsNetwork \\| Where-Object Name -EQ @Q$'), (m) =>
      this.networks.filter((n) => n.Name === unquote(m[1]!)).map((n) => this.netOut(n)),
    );
    on(q("^Invoke-AntreaHns -Method POST -Path '/networks' -Data @Q$"), (m) => {
      const req = JSON.parse(unquote(m[1]!)) as FakeNetwork;
      const n: FakeNetwork = {
        ...req,
        ID: guid(++this.seq),
        Extensions: [
          {
            Id: 'E7C3B2F0-F3C5-48DF-AF2B-10FED6D72E7A',
            IsEnabled: false,
            Name: 'Microsoft Windows Filtering Platform',
          },
          { Id: '583CC151-73EC-4A6A-8B47-578297AD7623', IsEnabled: false, Name: 'Open vSwitch Extension' },
        ],
      };
      this.networks.push(n);
      const nic = this.adapters.find((a) => a.Name === req.NetworkAdapterName);
      if (nic !== undefined) {
        const vnic = this.addAdapter(`vEthernet (${nic.Name})`, nic.MacAddress, { mtu: nic.NlMtu });
        for (const a of this.addresses.filter((x) => x.InterfaceIndex === nic.ifIndex)) {
          if (this.hnsMovesIp) a.InterfaceIndex = vnic.ifIndex;
        }
        for (const r of this.routes.filter((x) => x.InterfaceIndex === nic.ifIndex)) r.InterfaceIndex = vnic.ifIndex;
      }
      return [this.netOut(n)];
    });
    on(q("^Invoke-AntreaHns -Method POST -Path '/networks/([0-9a-f-]+)' -Data @Q \\| Out-Null$"), (m) => {
      const n = this.networks.find((x) => x.ID.toLowerCase() === m[1]!);
      if (n === undefined) throw cmdletError('Invoke-AntreaHns', 'ObjectNotFound', 'Element not found.');
      const req = JSON.parse(unquote(m[2]!)) as { Extensions: { Id: string; IsEnabled: boolean }[] };
      for (const e of req.Extensions) {
        const ext = n.Extensions.find((x) => x.Id === e.Id);
        if (ext !== undefined) ext.IsEnabled = e.IsEnabled;
      }
      return [];
    });
    on(/^Get-HnsNetwork \| Where-Object ID -EQ '([0-9a-f-]+)' \| ForEach-Object/, (m) => {
      const i = this.networks.findIndex((x) => x.ID.toLowerCase() === m[1]);
      if (i >= 0) this.networks.splice(i, 1);
      return [];
    });
    on(/^Get-HnsEndpoint$/, () => this.endpoints.map((e) => this.epOut(e)));
    on(q('^Get-HnsEndpoint \\| Where-Object Name -EQ @Q$'), (m) =>
      this.endpoints.filter((e) => e.Name === unquote(m[1]!)).map((e) => this.epOut(e)),
    );
    on(q("^Invoke-AntreaHns -Method POST -Path '/endpoints' -Data @Q$"), (m) => {
      const req = JSON.parse(unquote(m[1]!)) as FakeEndpoint;
      const net = this.networks.find((n) => n.ID.toLowerCase() === req.VirtualNetwork);
      if (net === undefined)
        throw cmdletError('Invoke-AntreaHns', 'ObjectNotFound', 'HNS POST /endpoints: Element not found.');
      const n = ++this.seq;
      const e: FakeEndpoint = {
        ...req,
        ID: guid(n, 'e'),
        VirtualNetworkName: net.Name,
        MacAddress: `00-15-5D-00-00-${n.toString(16).padStart(2, '0').toUpperCase()}`,
        namespaces: [],
      };
      this.endpoints.push(e);
      return [this.epOut(e)];
    });
    on(/^Get-HnsEndpoint \| Where-Object ID -EQ '([0-9a-f-]+)' \| ForEach-Object/, (m) => {
      const i = this.endpoints.findIndex((x) => x.ID.toLowerCase() === m[1]);
      if (i >= 0) this.endpoints.splice(i, 1);
      return [];
    });
    on(
      /^Set-AntreaNamespaceEndpoint -NamespaceId '([0-9a-f-]+)' -EndpointId '([0-9a-f-]+)' -RequestType (Add|Remove)$/,
      (m) => {
        if (!this.namespaces.has(m[1]!))
          throw cmdletError('Set-AntreaNamespaceEndpoint', 'ObjectNotFound', `HCN namespace ${m[1]}: 0x803B0008`);
        const e = this.endpoints.find((x) => x.ID.toLowerCase() === m[2]);
        if (e === undefined) throw cmdletError('Set-AntreaNamespaceEndpoint', 'InvalidOperation', 'endpoint not found');
        if (m[3] === 'Add') e.namespaces.push(m[1]!);
        else e.namespaces = e.namespaces.filter((x) => x !== m[1]);
        return [];
      },
    );
    on(/^@\(Get-HnsNamespace \| Where-Object ID -EQ '([0-9a-f-]+)'\)\.Count -gt 0$/, (m) => [
      this.namespaces.has(m[1]!),
    ]);

    // NetAdapter / NetTCPIP
    on(/^Get-NetAdapter -IncludeHidden \| Select-Object /, () => this.adapters.map((a) => this.adapterOut(a)));
    on(q('^Get-NetAdapter -IncludeHidden \\| Where-Object Name -EQ @Q \\| Select-Object'), (m) =>
      this.adapters.filter((a) => a.Name === unquote(m[1]!)).map((a) => this.adapterOut(a)),
    );
    on(/^@\(Get-NetIPAddress(?: -InterfaceIndex (\d+))? -ErrorAction SilentlyContinue\)/, (m) =>
      this.addresses
        .filter((a) => m[1] === undefined || a.InterfaceIndex === Number(m[1]))
        .map((a) => this.addressOut(a)),
    );
    on(/^Get-NetIPInterface -InterfaceIndex (\d+) \|/, (m) => {
      const a = this.adapterByIndex(m[1]!);
      return [
        { ifIndex: a.ifIndex, InterfaceAlias: a.Name, AddressFamily: 2, NlMtu: a.NlMtu, Forwarding: a.Forwarding },
      ];
    });
    on(
      /^Set-NetIPInterface -InterfaceIndex (\d+) -AddressFamily IPv4((?: -NlMtuBytes (\d+))?(?: -Forwarding (Enabled|Disabled))?)$/,
      (m) => {
        const a = this.adapterByIndex(m[1]!);
        if (m[3] !== undefined) a.NlMtu = Number(m[3]);
        if (m[4] !== undefined) a.Forwarding = m[4] === 'Enabled' ? 1 : 0;
        return [];
      },
    );
    on(
      q(
        '^New-NetIPAddress -InterfaceIndex (\\d+) -IPAddress @Q -PrefixLength (\\d+)(?: -DefaultGateway @Q)? \\| Out-Null$',
      ),
      (m) => {
        const idx = Number(m[1]);
        this.adapterByIndex(m[1]!);
        const ip = unquote(m[2]!);
        if (this.addresses.some((a) => a.IPAddress === ip && a.InterfaceIndex === idx)) {
          throw cmdletError('New-NetIPAddress', 'ResourceExists', 'The object already exists.');
        }
        this.addresses.push({ IPAddress: ip, InterfaceIndex: idx, PrefixLength: Number(m[3]) });
        if (m[4] !== undefined) {
          this.routes.push({
            DestinationPrefix: '0.0.0.0/0',
            NextHop: unquote(m[4]),
            InterfaceIndex: idx,
            RouteMetric: 0,
          });
        }
        return [];
      },
    );
    on(
      q(
        '^Get-NetIPAddress -InterfaceIndex (\\d+) -ErrorAction SilentlyContinue \\| Where-Object IPAddress -EQ @Q \\| Remove-NetIPAddress',
      ),
      (m) => {
        const ip = unquote(m[2]!);
        const i = this.addresses.findIndex((a) => a.InterfaceIndex === Number(m[1]) && a.IPAddress === ip);
        if (i >= 0) this.addresses.splice(i, 1);
        return [];
      },
    );
    on(
      q(
        "^Get-NetAdapter -IncludeHidden \\| Where-Object \\{ \\$_.Name -eq @Q -and \\$_.Status -eq 'Disabled' \\} \\| Enable-NetAdapter",
      ),
      (m) => {
        for (const a of this.adapters) if (a.Name === unquote(m[1]!) && a.Status === 'Disabled') a.Status = 'Up';
        return [];
      },
    );
    on(/^@\(Get-NetRoute -AddressFamily IPv4(?: -InterfaceIndex (\d+))? -ErrorAction SilentlyContinue\)/, (m) =>
      this.routes.filter((r) => m[1] === undefined || r.InterfaceIndex === Number(m[1])).map((r) => this.routeOut(r)),
    );
    on(
      q(
        '^New-NetRoute -DestinationPrefix @Q -NextHop @Q -InterfaceIndex (\\d+) -RouteMetric (\\d+) -PolicyStore ActiveStore \\| Out-Null$',
      ),
      (m) => {
        const r = {
          DestinationPrefix: unquote(m[1]!),
          NextHop: unquote(m[2]!),
          InterfaceIndex: Number(m[3]),
          RouteMetric: Number(m[4]),
        };
        this.adapterByIndex(m[3]!);
        if (
          this.routes.some(
            (x) =>
              x.DestinationPrefix === r.DestinationPrefix &&
              x.InterfaceIndex === r.InterfaceIndex &&
              x.NextHop === r.NextHop,
          )
        ) {
          throw cmdletError('New-NetRoute', 'ResourceExists', 'Instance MSFT_NetRoute already exists');
        }
        this.routes.push(r);
        return [];
      },
    );
    on(
      q('^Get-NetRoute -DestinationPrefix @Q -InterfaceIndex (\\d+) -ErrorAction SilentlyContinue \\| Remove-NetRoute'),
      (m) => {
        const dst = unquote(m[1]!);
        for (let i = this.routes.length - 1; i >= 0; i--) {
          const r = this.routes[i]!;
          if (r.DestinationPrefix === dst && r.InterfaceIndex === Number(m[2])) this.routes.splice(i, 1);
        }
        return [];
      },
    );

    // NetNat, firewall, Hyper-V
    on(q('^Get-NetNat \\| Where-Object Name -EQ @Q \\| Select-Object'), (m) =>
      this.nats.filter((n) => n.Name === unquote(m[1]!)),
    );
    on(q('^New-NetNat -Name @Q -InternalIPInterfaceAddressPrefix @Q \\| Out-Null$'), (m) => {
      if (this.nats.length > 0) throw cmdletError('New-NetNat', 'InvalidOperation', 'The parameter is incorrect.');
      this.nats.push({ Name: unquote(m[1]!), InternalIPInterfaceAddressPrefix: unquote(m[2]!), Active: true });
      return [];
    });
    on(q('^Get-NetNat \\| Where-Object Name -EQ @Q \\| Remove-NetNat'), (m) => {
      const i = this.nats.findIndex((n) => n.Name === unquote(m[1]!));
      if (i >= 0) this.nats.splice(i, 1);
      return [];
    });
    on(
      q(
        '^if \\(Get-NetFirewallRule -Name @Q -ErrorAction SilentlyContinue\\) \\{ \\$false \\} else \\{ New-NetFirewallRule -Name @Q .* -(?:Remote|Local)Address @Q ',
      ),
      (m) => {
        const name = unquote(m[1]!);
        if (this.firewallRules.has(name)) return [false];
        this.firewallRules.set(name, unquote(m[3]!));
        return [true];
      },
    );
    on(
      q(
        "^\\$vna = Get-VMNetworkAdapter -ManagementOS -SwitchName @Q \\| Where-Object MacAddress -EQ '([0-9A-F]{12})'\\n.*\\n\\$na = Get-NetAdapter -IncludeHidden \\| Where-Object Name -EQ @Q\\n",
      ),
      (m) => {
        const mac = m[2]!.match(/../g)!.join('-');
        const target = unquote(m[3]!).replace(/^vEthernet \((.*)\)$/, '$1');
        const vnic = this.adapters.find((a) => a.MacAddress === mac && a.Virtual);
        if (vnic !== undefined) vnic.Name = target;
        return [];
      },
    );
    on(q('^\\$sw = Get-VMSwitch -Name @Q;'), () => []);
  }
}
