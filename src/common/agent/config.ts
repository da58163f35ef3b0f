/**
 * `antrea-agent.conf`: Antrea's agent configuration keys and defaults (pkg/config/agent/config.go,
 * cmd/antrea-agent/options.go), plus a few antrea-ts keys for paths Antrea hard-codes (so several
 * agents can run on one machine in the lab). Parsing checks every key's type and range and reports
 * every problem at once, each naming its field; unknown keys are errors (typos would otherwise be
 * silently ignored).
 *
 * Keys accepted but not acted on yet are still validated, so an Antrea configuration file loads.
 * Whether the platform supports a value is a separate question: PlatformCapabilities.validate.
 */
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { AntreaError, ValidationError } from '../util/errors.ts';

export const TRAFFIC_ENCAP_MODES = ['encap', 'noEncap', 'hybrid', 'networkPolicyOnly'] as const;
export type TrafficEncapMode = (typeof TRAFFIC_ENCAP_MODES)[number];
export const AGENT_TUNNEL_TYPES = ['geneve', 'vxlan', 'gre', 'stt'] as const;
export type AgentTunnelType = (typeof AGENT_TUNNEL_TYPES)[number];
export const DATAPATH_TYPES = ['system', 'netdev'] as const;
export type OvsDatapathType = (typeof DATAPATH_TYPES)[number];
export const ENCRYPTION_MODES = ['none', 'ipsec', 'wireGuard'] as const;
export type TrafficEncryptionMode = (typeof ENCRYPTION_MODES)[number];

type Stage = 'Alpha' | 'Beta' | 'GA';

/** Agent feature gates: default and stage (pkg/features/antrea_features.go). */
export const FEATURE_GATES: Readonly<Record<string, { readonly default: boolean; readonly stage: Stage }>> = {
  AntreaPolicy: { default: true, stage: 'Beta' },
  AntreaProxy: { default: true, stage: 'GA' },
  EndpointSlice: { default: true, stage: 'GA' },
  TopologyAwareHints: { default: true, stage: 'GA' },
  ServiceTrafficDistribution: { default: true, stage: 'GA' },
  PreferSameTrafficDistribution: { default: false, stage: 'Alpha' },
  CleanupStaleUDPSvcConntrack: { default: true, stage: 'Beta' },
  Traceflow: { default: true, stage: 'Beta' },
  PacketCapture: { default: false, stage: 'Alpha' },
  AntreaIPAM: { default: false, stage: 'Alpha' },
  FlowExporter: { default: false, stage: 'Alpha' },
  NFTablesHostNetworkMode: { default: false, stage: 'Alpha' },
  NetworkPolicyStats: { default: true, stage: 'Beta' },
  NodePortLocal: { default: true, stage: 'GA' },
  Multicast: { default: true, stage: 'Beta' },
  Multicluster: { default: false, stage: 'Alpha' },
  SecondaryNetwork: { default: false, stage: 'Alpha' },
  ServiceExternalIP: { default: true, stage: 'Beta' },
  TrafficControl: { default: false, stage: 'Alpha' },
  IPsecCertAuth: { default: false, stage: 'Alpha' },
  ExternalNode: { default: false, stage: 'Alpha' },
  SupportBundleCollection: { default: false, stage: 'Alpha' },
  L7NetworkPolicy: { default: false, stage: 'Alpha' },
  LoadBalancerModeDSR: { default: false, stage: 'Alpha' },
  EgressTrafficShaping: { default: false, stage: 'Alpha' },
  EgressSeparateSubnet: { default: true, stage: 'Beta' },
  NodeNetworkPolicy: { default: false, stage: 'Alpha' },
  NodeLatencyMonitor: { default: false, stage: 'Alpha' },
  BGPPolicy: { default: false, stage: 'Alpha' },
  AntreaNodeConfig: { default: true, stage: 'Beta' },
  Egress: { default: true, stage: 'Beta' },
};

function defaultGates(): Record<string, boolean> {
  return Object.fromEntries(Object.entries(FEATURE_GATES).map(([k, v]) => [k, v.default]));
}

export interface AgentConfig {
  /** Feature gates as given, merged over the defaults. */
  readonly featureGates: Readonly<Record<string, boolean>>;
  /** The CNI server's unix socket (Windows: named pipe). */
  readonly cniSocket: string;
  readonly ovsBridge: string;
  /** `system` (kernel) or `netdev` (userspace; Antrea rejects it, antrea-ts uses it where the OVS kernel module is missing). */
  readonly ovsDatapathType: OvsDatapathType;
  /** Holds db.sock and <bridge>.mgmt. */
  readonly ovsRunDir: string;
  readonly hostGateway: string;
  readonly trafficEncapMode: TrafficEncapMode;
  readonly noSNAT: boolean;
  readonly snatFullyRandomPorts: boolean;
  readonly tunnelType: AgentTunnelType;
  /** 0: the IANA port of the tunnel type. */
  readonly tunnelPort: number;
  readonly tunnelCsum: boolean;
  readonly trafficEncryptionMode: TrafficEncryptionMode;
  readonly enableBridgingMode: boolean;
  readonly disableTXChecksumOffload: boolean;
  /** 0: derived from the transport interface's MTU. */
  readonly defaultMTU: number;
  readonly packetInRate: number;
  readonly serviceCIDR: string;
  readonly serviceCIDRv6: string;
  readonly apiPort: number;
  readonly clusterPort: number;
  readonly enablePrometheusMetrics: boolean;
  readonly transportInterface: string;
  readonly transportInterfaceCIDRs: readonly string[];
  /** Prefixed to CNI_NETNS (the agent's view of the host's /proc when it runs in a container). */
  readonly hostProcPathPrefix: string;
  readonly kubeAPIServerOverride: string;
  readonly dnsServerOverride: string;
  readonly nodeType: 'k8sNode' | 'externalNode';
  readonly clientConnection: { readonly kubeconfig: string };
  readonly antreaClientConnection: { readonly kubeconfig: string };
  readonly antreaProxy: {
    readonly enable: boolean;
    readonly proxyAll: boolean;
    readonly nodePortAddresses: readonly string[];
    readonly skipServices: readonly string[];
    readonly proxyLoadBalancerIPs: boolean;
    readonly serviceProxyName: string;
    readonly defaultLoadBalancerMode: 'nat' | 'dsr';
    readonly disableServiceHealthCheckServer: boolean;
    readonly serviceHealthCheckServerBindAddress: string;
  };
  /** Sections Antrea defines that antrea-ts does not act on yet; kept as given (type-checked as objects). */
  readonly passthrough: Readonly<Record<string, unknown>>;

  // ---- antrea-ts keys (Antrea hard-codes these paths) ----
  /** Agent state: the pending-ADD journal, compile cache, and by default the host-local data dir. */
  readonly stateDir: string;
  /** Where host-local keeps its reservations (its `dataDir`); default <stateDir>/networks. */
  readonly hostLocalDataDir: string;
  /** Where the IPAM plugin binaries are looked up, before the request's CNI_PATH (Antrea: /opt/cni/bin). */
  readonly cniPluginDirs: readonly string[];
  /** How long CNI ADD waits for the agent to be ready before answering TRY_AGAIN_LATER (Antrea: 30 s). */
  readonly podNetworkWaitTimeoutMs: number;
}

/** Antrea sections accepted and validated as objects but not interpreted yet. */
const PASSTHROUGH_SECTIONS = [
  'egress',
  'flowExporter',
  'nodePortLocal',
  'multicast',
  'multicluster',
  'externalNode',
  'auditLogging',
  'secondaryNetwork',
  'hostNetworkAcceleration',
  'ipsec',
  'wireGuard',
  'memberlist',
] as const;

/** Antrea's deprecated or rarely used top-level keys, accepted as is. */
const PASSTHROUGH_KEYS = [
  'podCIDRs',
  'flowCollectorAddr',
  'flowPollInterval',
  'activeFlowExportTimeout',
  'idleFlowExportTimeout',
  'fqdnCacheMinTTL',
  'tlsCipherSuites',
  'tlsMinVersion',
  'hostNetworkMode',
  'enableProxyHealthCheck',
] as const;

export const DEFAULT_STATE_DIR = '/var/run/antrea';

/** The defaults (Linux values; the composition root passes Windows paths through `osDefaults`). */
export function defaultAgentConfig(
  osDefaults: Partial<Pick<AgentConfig, 'cniSocket' | 'ovsRunDir'>> = {},
): AgentConfig {
  return {
    featureGates: defaultGates(),
    cniSocket: osDefaults.cniSocket ?? '/var/run/antrea/cni.sock',
    ovsBridge: 'br-int',
    ovsDatapathType: 'system',
    ovsRunDir: osDefaults.ovsRunDir ?? '/var/run/openvswitch',
    hostGateway: 'antrea-gw0',
    trafficEncapMode: 'encap',
    noSNAT: false,
    snatFullyRandomPorts: false,
    tunnelType: 'geneve',
    tunnelPort: 0,
    tunnelCsum: false,
    trafficEncryptionMode: 'none',
    enableBridgingMode: false,
    disableTXChecksumOffload: false,
    defaultMTU: 0,
    packetInRate: 5000,
    serviceCIDR: '10.96.0.0/12',
    serviceCIDRv6: '',
    apiPort: 10350,
    clusterPort: 10351,
    enablePrometheusMetrics: true,
    transportInterface: '',
    transportInterfaceCIDRs: [],
    hostProcPathPrefix: '/host',
    kubeAPIServerOverride: '',
    dnsServerOverride: '',
    nodeType: 'k8sNode',
    clientConnection: { kubeconfig: '' },
    antreaClientConnection: { kubeconfig: '' },
    antreaProxy: {
      enable: true,
      proxyAll: false,
      nodePortAddresses: [],
      skipServices: [],
      proxyLoadBalancerIPs: true,
      serviceProxyName: '',
      defaultLoadBalancerMode: 'nat',
      disableServiceHealthCheckServer: false,
      serviceHealthCheckServerBindAddress: '0.0.0.0:10256',
    },
    passthrough: {},
    stateDir: DEFAULT_STATE_DIR,
    hostLocalDataDir: '',
    cniPluginDirs: ['/opt/cni/bin'],
    podNetworkWaitTimeoutMs: 30_000,
  };
}

/** Every problem found in a configuration; the message lists them all, one per line. */
export class ConfigError extends AntreaError<'INVALID_CONFIG'> {
  readonly problems: readonly ValidationError[];

  constructor(problems: readonly ValidationError[], source: string) {
    super('INVALID_CONFIG', `invalid configuration ${source}:\n${problems.map((p) => `  ${p.message}`).join('\n')}`, {
      details: { fields: problems.map((p) => p.field) },
    });
    this.problems = problems;
  }
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Collects problems while reading typed values out of a parsed document. */
class Reader {
  readonly problems: ValidationError[] = [];

  fail(field: string, message: string): void {
    this.problems.push(new ValidationError(field, message));
  }

  string(o: Obj, key: string, field: string, def: string): string {
    const v = o[key];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'string') {
      this.fail(field, `must be a string, got ${JSON.stringify(v)}`);
      return def;
    }
    return v;
  }

  oneOf<T extends string>(o: Obj, key: string, field: string, values: readonly T[], def: T): T {
    const v = this.string(o, key, field, def);
    if (!(values as readonly string[]).includes(v)) {
      this.fail(field, `must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
      return def;
    }
    return v as T;
  }

  bool(o: Obj, key: string, field: string, def: boolean): boolean {
    const v = o[key];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'boolean') {
      this.fail(field, `must be true or false, got ${JSON.stringify(v)}`);
      return def;
    }
    return v;
  }

  int(o: Obj, key: string, field: string, def: number, min: number, max: number): number {
    const v = o[key];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(field, `must be an integer in ${min}-${max}, got ${JSON.stringify(v)}`);
      return def;
    }
    return v;
  }

  strings(o: Obj, key: string, field: string, def: readonly string[]): readonly string[] {
    const v = o[key];
    if (v === undefined || v === null) return def;
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) {
      this.fail(field, `must be a list of strings, got ${JSON.stringify(v)}`);
      return def;
    }
    return v as string[];
  }

  object(o: Obj, key: string, field: string): Obj {
    const v = o[key];
    if (v === undefined || v === null) return {};
    if (!isObj(v)) {
      this.fail(field, `must be a mapping, got ${JSON.stringify(v)}`);
      return {};
    }
    return v;
  }

  unknownKeys(o: Obj, known: readonly string[], prefix: string): void {
    for (const k of Object.keys(o)) {
      if (!known.includes(k)) this.fail(prefix === '' ? k : `${prefix}.${k}`, 'unknown field');
    }
  }
}

function isCidr(s: string): boolean {
  const [addr, len, extra] = s.split('/');
  if (addr === undefined || len === undefined || extra !== undefined || !/^\d{1,3}$/.test(len)) return false;
  const fam = isIP(addr);
  return fam !== 0 && Number(len) <= (fam === 4 ? 32 : 128);
}

const TOP_LEVEL_KEYS = [
  'featureGates',
  'cniSocket',
  'ovsBridge',
  'ovsDatapathType',
  'ovsRunDir',
  'hostGateway',
  'trafficEncapMode',
  'noSNAT',
  'snatFullyRandomPorts',
  'tunnelType',
  'tunnelPort',
  'tunnelCsum',
  'trafficEncryptionMode',
  'enableBridgingMode',
  'disableTXChecksumOffload',
  'defaultMTU',
  'packetInRate',
  'serviceCIDR',
  'serviceCIDRv6',
  'apiPort',
  'clusterPort',
  'enablePrometheusMetrics',
  'transportInterface',
  'transportInterfaceCIDRs',
  'hostProcPathPrefix',
  'kubeAPIServerOverride',
  'dnsServerOverride',
  'nodeType',
  'clientConnection',
  'antreaClientConnection',
  'antreaProxy',
  'stateDir',
  'hostLocalDataDir',
  'cniPluginDirs',
  'podNetworkWaitTimeoutMs',
  ...PASSTHROUGH_SECTIONS,
  ...PASSTHROUGH_KEYS,
];

/**
 * Builds the configuration from a parsed document over `base` (the defaults). Throws ConfigError
 * listing every problem.
 */
export function agentConfigFromObject(
  doc: unknown,
  base: AgentConfig = defaultAgentConfig(),
  source = '',
): AgentConfig {
  const r = new Reader();
  if (doc === undefined || doc === null) return base;
  if (!isObj(doc)) throw new ConfigError([new ValidationError('(root)', 'must be a mapping of keys')], source);
  r.unknownKeys(doc, TOP_LEVEL_KEYS, '');

  const gatesIn = r.object(doc, 'featureGates', 'featureGates');
  const featureGates: Record<string, boolean> = { ...base.featureGates };
  // AllAlpha / AllBeta set every gate of that stage; gates named explicitly win.
  for (const [all, stage] of [
    ['AllAlpha', 'Alpha'],
    ['AllBeta', 'Beta'],
  ] as const) {
    const v = gatesIn[all];
    if (v === undefined) continue;
    if (typeof v !== 'boolean') {
      r.fail(`featureGates.${all}`, `must be true or false, got ${JSON.stringify(v)}`);
      continue;
    }
    for (const [name, g] of Object.entries(FEATURE_GATES)) if (g.stage === stage) featureGates[name] = v;
  }
  for (const [name, value] of Object.entries(gatesIn)) {
    if (name === 'AllAlpha' || name === 'AllBeta') continue;
    if (!(name in FEATURE_GATES)) r.fail(`featureGates.${name}`, 'unknown feature gate');
    else if (typeof value !== 'boolean')
      r.fail(`featureGates.${name}`, `must be true or false, got ${JSON.stringify(value)}`);
    else featureGates[name] = value;
  }

  const path = (key: string, def: string, allowEmpty = false): string => {
    const v = r.string(doc, key, key, def);
    if (!allowEmpty && v.trim() === '') r.fail(key, 'must not be empty');
    return v;
  };
  const name = (key: string, def: string): string => {
    const v = r.string(doc, key, key, def);
    if (!/^[A-Za-z0-9_.:~@-]{1,15}$/.test(v))
      r.fail(key, `must be a device name of 1-15 characters, got ${JSON.stringify(v)}`);
    return v;
  };
  const cidr = (key: string, def: string): string => {
    const v = r.string(doc, key, key, def);
    if (v !== '' && !isCidr(v)) r.fail(key, `must be a CIDR, got ${JSON.stringify(v)}`);
    return v;
  };

  const defaultMTU = r.int(doc, 'defaultMTU', 'defaultMTU', base.defaultMTU, 0, 65535);
  if (defaultMTU !== 0 && defaultMTU < 576) r.fail('defaultMTU', `must be 0 (auto) or at least 576, got ${defaultMTU}`);

  const transportInterfaceCIDRs = r.strings(doc, 'transportInterfaceCIDRs', 'transportInterfaceCIDRs', []);
  transportInterfaceCIDRs.forEach((c, i) => {
    if (!isCidr(c)) r.fail(`transportInterfaceCIDRs[${i}]`, `must be a CIDR, got ${JSON.stringify(c)}`);
  });

  const conn = (key: 'clientConnection' | 'antreaClientConnection'): { kubeconfig: string } => {
    const o = r.object(doc, key, key);
    r.unknownKeys(o, ['kubeconfig', 'acceptContentTypes', 'contentType', 'qps', 'burst'], key);
    return { kubeconfig: r.string(o, 'kubeconfig', `${key}.kubeconfig`, base[key].kubeconfig) };
  };

  const p = r.object(doc, 'antreaProxy', 'antreaProxy');
  const pb = base.antreaProxy;
  r.unknownKeys(
    p,
    [
      'enable',
      'proxyAll',
      'nodePortAddresses',
      'skipServices',
      'proxyLoadBalancerIPs',
      'serviceProxyName',
      'defaultLoadBalancerMode',
      'disableServiceHealthCheckServer',
      'serviceHealthCheckServerBindAddress',
    ],
    'antreaProxy',
  );
  const antreaProxy = {
    enable: r.bool(p, 'enable', 'antreaProxy.enable', pb.enable),
    proxyAll: r.bool(p, 'proxyAll', 'antreaProxy.proxyAll', pb.proxyAll),
    nodePortAddresses: r.strings(p, 'nodePortAddresses', 'antreaProxy.nodePortAddresses', pb.nodePortAddresses),
    skipServices: r.strings(p, 'skipServices', 'antreaProxy.skipServices', pb.skipServices),
    proxyLoadBalancerIPs: r.bool(
      p,
      'proxyLoadBalancerIPs',
      'antreaProxy.proxyLoadBalancerIPs',
      pb.proxyLoadBalancerIPs,
    ),
    serviceProxyName: r.string(p, 'serviceProxyName', 'antreaProxy.serviceProxyName', pb.serviceProxyName),
    defaultLoadBalancerMode: r.oneOf(
      p,
      'defaultLoadBalancerMode',
      'antreaProxy.defaultLoadBalancerMode',
      ['nat', 'dsr'] as const,
      pb.defaultLoadBalancerMode,
    ),
    disableServiceHealthCheckServer: r.bool(
      p,
      'disableServiceHealthCheckServer',
      'antreaProxy.disableServiceHealthCheckServer',
      pb.disableServiceHealthCheckServer,
    ),
    serviceHealthCheckServerBindAddress: r.string(
      p,
      'serviceHealthCheckServerBindAddress',
      'antreaProxy.serviceHealthCheckServerBindAddress',
      pb.serviceHealthCheckServerBindAddress,
    ),
  };

  const passthrough: Record<string, unknown> = {};
  for (const s of PASSTHROUGH_SECTIONS) if (doc[s] !== undefined) passthrough[s] = r.object(doc, s, s);
  for (const k of PASSTHROUGH_KEYS) if (doc[k] !== undefined) passthrough[k] = doc[k];

  const cniPluginDirs = r.strings(doc, 'cniPluginDirs', 'cniPluginDirs', base.cniPluginDirs);
  cniPluginDirs.forEach((d, i) => {
    if (d.trim() === '') r.fail(`cniPluginDirs[${i}]`, 'must not be empty');
  });

  const cfg: AgentConfig = {
    featureGates,
    cniSocket: path('cniSocket', base.cniSocket),
    ovsBridge: name('ovsBridge', base.ovsBridge),
    ovsDatapathType: r.oneOf(doc, 'ovsDatapathType', 'ovsDatapathType', DATAPATH_TYPES, base.ovsDatapathType),
    ovsRunDir: path('ovsRunDir', base.ovsRunDir),
    hostGateway: name('hostGateway', base.hostGateway),
    trafficEncapMode: r.oneOf(doc, 'trafficEncapMode', 'trafficEncapMode', TRAFFIC_ENCAP_MODES, base.trafficEncapMode),
    noSNAT: r.bool(doc, 'noSNAT', 'noSNAT', base.noSNAT),
    snatFullyRandomPorts: r.bool(doc, 'snatFullyRandomPorts', 'snatFullyRandomPorts', base.snatFullyRandomPorts),
    tunnelType: r.oneOf(doc, 'tunnelType', 'tunnelType', AGENT_TUNNEL_TYPES, base.tunnelType),
    tunnelPort: r.int(doc, 'tunnelPort', 'tunnelPort', base.tunnelPort, 0, 65535),
    tunnelCsum: r.bool(doc, 'tunnelCsum', 'tunnelCsum', base.tunnelCsum),
    trafficEncryptionMode: r.oneOf(
      doc,
      'trafficEncryptionMode',
      'trafficEncryptionMode',
      ENCRYPTION_MODES,
      base.trafficEncryptionMode,
    ),
    enableBridgingMode: r.bool(doc, 'enableBridgingMode', 'enableBridgingMode', base.enableBridgingMode),
    disableTXChecksumOffload: r.bool(
      doc,
      'disableTXChecksumOffload',
      'disableTXChecksumOffload',
      base.disableTXChecksumOffload,
    ),
    defaultMTU,
    packetInRate: r.int(doc, 'packetInRate', 'packetInRate', base.packetInRate, 1, 1_000_000),
    serviceCIDR: cidr('serviceCIDR', base.serviceCIDR),
    serviceCIDRv6: cidr('serviceCIDRv6', base.serviceCIDRv6),
    apiPort: r.int(doc, 'apiPort', 'apiPort', base.apiPort, 1, 65535),
    clusterPort: r.int(doc, 'clusterPort', 'clusterPort', base.clusterPort, 1, 65535),
    enablePrometheusMetrics: r.bool(
      doc,
      'enablePrometheusMetrics',
      'enablePrometheusMetrics',
      base.enablePrometheusMetrics,
    ),
    transportInterface: r.string(doc, 'transportInterface', 'transportInterface', base.transportInterface),
    transportInterfaceCIDRs,
    hostProcPathPrefix: r.string(doc, 'hostProcPathPrefix', 'hostProcPathPrefix', base.hostProcPathPrefix),
    kubeAPIServerOverride: r.string(doc, 'kubeAPIServerOverride', 'kubeAPIServerOverride', base.kubeAPIServerOverride),
    dnsServerOverride: r.string(doc, 'dnsServerOverride', 'dnsServerOverride', base.dnsServerOverride),
    nodeType: r.oneOf(doc, 'nodeType', 'nodeType', ['k8sNode', 'externalNode'] as const, base.nodeType),
    clientConnection: conn('clientConnection'),
    antreaClientConnection: conn('antreaClientConnection'),
    antreaProxy,
    passthrough,
    stateDir: path('stateDir', base.stateDir),
    hostLocalDataDir: path('hostLocalDataDir', base.hostLocalDataDir, true),
    cniPluginDirs,
    podNetworkWaitTimeoutMs: r.int(
      doc,
      'podNetworkWaitTimeoutMs',
      'podNetworkWaitTimeoutMs',
      base.podNetworkWaitTimeoutMs,
      0,
      600_000,
    ),
  };
  if (cfg.tunnelType === 'gre' && cfg.tunnelPort !== 0) r.fail('tunnelPort', 'gre has no destination port');
  if (cfg.tunnelCsum && cfg.tunnelType !== 'geneve' && cfg.tunnelType !== 'vxlan') {
    r.fail('tunnelCsum', `only geneve and vxlan tunnels carry a checksum, not ${cfg.tunnelType}`);
  }
  if (cfg.noSNAT && cfg.trafficEncapMode !== 'noEncap') r.fail('noSNAT', 'is only valid with trafficEncapMode noEncap');
  if (cfg.enableBridgingMode && (cfg.trafficEncapMode !== 'noEncap' || !cfg.noSNAT)) {
    r.fail('enableBridgingMode', 'needs trafficEncapMode noEncap and noSNAT');
  }
  if (r.problems.length > 0) throw new ConfigError(r.problems, source);
  return cfg;
}

/** Parses antrea-agent.conf text (YAML). Throws ConfigError naming every bad field. */
export function parseAgentConfig(text: string, base: AgentConfig = defaultAgentConfig(), source = ''): AgentConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError([new ValidationError('(yaml)', `not valid YAML: ${String(err)}`)], source);
  }
  return agentConfigFromObject(doc, base, source);
}

/** The host-local data directory in effect. */
export function hostLocalDataDir(cfg: AgentConfig): string {
  return cfg.hostLocalDataDir !== '' ? cfg.hostLocalDataDir : `${cfg.stateDir}/networks`;
}
