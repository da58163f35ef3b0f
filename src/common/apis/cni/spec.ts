/**
 * The CNI specification's data (containernetworking/cni SPEC.md, spec 0.3.0 to 1.1.0): supported
 * versions, the network configuration, the ADD result in each version, CNI_ARGS, the validation
 * rules for container IDs and interface names, and the typed error every CNI boundary maps to its
 * numeric code exactly once.
 *
 * Imported by the antrea-cni plugin, so it depends on nothing heavier than errors.ts.
 */
import { AntreaError } from '../../util/errors.ts';
import { ErrorCode, type ErrorCodeName } from './proto.ts';

/** The spec versions we speak, oldest first. */
export const SUPPORTED_CNI_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_CNI_VERSIONS)[number];
/** The newest version; results are built in it and converted down. */
export const CURRENT_CNI_VERSION: CniVersion = '1.1.0';

/**
 * A CNI error: `cniCode` is the number printed in the error JSON and carried in the gRPC `Error`;
 * `code` is its name in cni.proto's ErrorCode.
 */
export class CniError extends AntreaError<ErrorCodeName> {
  readonly cniCode: number;
  /** The spec's optional long message. */
  readonly cniDetails: string;

  constructor(code: ErrorCodeName, message: string, opts: { details?: string; cause?: unknown } = {}) {
    super(code, message, { cause: opts.cause, details: opts.details === undefined ? {} : { details: opts.details } });
    this.cniCode = ErrorCode[code];
    this.cniDetails = opts.details ?? '';
  }
}

/** The name of a numeric code (UNKNOWN for codes cni.proto does not list). */
export function errorCodeName(code: number): ErrorCodeName {
  for (const [name, value] of Object.entries(ErrorCode)) if (value === code) return name as ErrorCodeName;
  return 'UNKNOWN';
}

function parseVersion(v: string): [number, number, number] | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  return m === null ? undefined : [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** Compares two x.y.z versions (<0, 0, >0). Throws CniError DECODING_FAILURE for malformed input. */
export function compareCniVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (pa === undefined || pb === undefined) {
    throw new CniError('DECODING_FAILURE', `invalid CNI version "${pa === undefined ? a : b}"`);
  }
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function isSupportedCniVersion(v: string): v is CniVersion {
  return (SUPPORTED_CNI_VERSIONS as readonly string[]).includes(v);
}

/** Throws INCOMPATIBLE_CNI_VERSION unless `v` is one we speak. */
export function requireSupportedVersion(v: string): CniVersion {
  if (!isSupportedCniVersion(v)) {
    throw new CniError(
      'INCOMPATIBLE_CNI_VERSION',
      `Unsupported CNI version [${v}], supported versions ${JSON.stringify(SUPPORTED_CNI_VERSIONS)}`,
    );
  }
  return v;
}

// ---- environment ----------------------------------------------------------------------------

const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** CNI_CONTAINERID rules (spec "Parameters"). */
export function validateContainerId(id: string): void {
  if (id === '') throw new CniError('UNKNOWN_CONTAINER', 'missing containerID (CNI_CONTAINERID)');
  if (!CONTAINER_ID_RE.test(id)) {
    throw new CniError('INVALID_ENVIRONMENT_VARIABLES', 'invalid characters in containerID (CNI_CONTAINERID)', {
      details: id,
    });
  }
}

/** CNI_IFNAME rules: not empty, not "." or "..", under 16 characters, no "/", ":" or whitespace. */
export function validateIfName(name: string): void {
  const bad = (why: string): never => {
    throw new CniError('INVALID_ENVIRONMENT_VARIABLES', `interface name (CNI_IFNAME) ${why}`, { details: name });
  };
  if (name === '') bad('is empty');
  if (name.length > 15) bad('is too long (at most 15 characters)');
  if (name === '.' || name === '..') bad('is "." or ".."');
  if (/[/:\s]/.test(name)) bad('contains "/", ":" or whitespace');
}

/** Parses CNI_ARGS ("K=V;K=V"). Throws INVALID_ENVIRONMENT_VARIABLES for a pair without "=". */
export function parseCniArgs(args: string): Map<string, string> {
  const out = new Map<string, string>();
  if (args.trim() === '') return out;
  for (const pair of args.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError('INVALID_ENVIRONMENT_VARIABLES', `CNI_ARGS: invalid pair "${pair}"`);
    out.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return out;
}

/** The Kubernetes arguments a CRI runtime passes in CNI_ARGS. */
export interface K8sArgs {
  readonly podName: string;
  readonly podNamespace: string;
  readonly infraContainerId: string;
}

export function k8sArgs(args: ReadonlyMap<string, string>): K8sArgs {
  return {
    podName: args.get('K8S_POD_NAME') ?? '',
    podNamespace: args.get('K8S_POD_NAMESPACE') ?? '',
    infraContainerId: args.get('K8S_POD_INFRA_CONTAINER_ID') ?? '',
  };
}

// ---- results --------------------------------------------------------------------------------

export interface CniInterface {
  readonly name: string;
  readonly mac?: string;
  /** 1.1.0 */
  readonly mtu?: number;
  /** Netns path for container interfaces; absent for host interfaces. */
  readonly sandbox?: string;
  readonly socketPath?: string;
  readonly pciID?: string;
}

export interface CniIpConfig {
  /** CIDR notation, e.g. 10.10.0.5/24. */
  readonly address: string;
  readonly gateway?: string;
  /** Index into `interfaces`. */
  readonly interface?: number;
}

export interface CniRoute {
  readonly dst: string;
  readonly gw?: string;
  readonly mtu?: number;
  readonly advmss?: number;
  readonly priority?: number;
  readonly table?: number;
  readonly scope?: number;
}

export interface CniDns {
  readonly nameservers?: readonly string[];
  readonly domain?: string;
  readonly search?: readonly string[];
  readonly options?: readonly string[];
}

/** A result in the newest spec's shape (the agent builds these and converts on output). */
export interface CniResult {
  readonly interfaces: readonly CniInterface[];
  readonly ips: readonly CniIpConfig[];
  readonly routes: readonly CniRoute[];
  readonly dns: CniDns;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function invalid(field: string, why: string): CniError {
  return new CniError('INVALID_NETWORK_CONFIG', `${field}: ${why}`);
}

function optString(o: Json, key: string, field: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalid(`${field}.${key}`, `must be a string, got ${JSON.stringify(v)}`);
  return v;
}

function optNumber(o: Json, key: string, field: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw invalid(`${field}.${key}`, `must be an integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function optStrings(o: Json, key: string, field: string): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) {
    throw invalid(`${field}.${key}`, 'must be a list of strings');
  }
  return v as string[];
}

function list(o: Json, key: string, field: string): Json[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((e) => !isObject(e))) throw invalid(`${field}.${key}`, 'must be a list of objects');
  return v as Json[];
}

type Compact<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & {
  [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined>;
};

/** Drops undefined values so results and JSON stay compact under exactOptionalPropertyTypes. */
function compact<T extends object>(o: T): Compact<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Compact<T>;
}

export function parseDns(v: unknown, field: string): CniDns {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw invalid(field, 'must be an object');
  return compact({
    nameservers: optStrings(v, 'nameservers', field),
    domain: optString(v, 'domain', field),
    search: optStrings(v, 'search', field),
    options: optStrings(v, 'options', field),
  });
}

/**
 * Parses a result of any supported version (an IPAM plugin's output or a runtime's prevResult).
 * Throws CniError INVALID_NETWORK_CONFIG naming the field.
 */
export function parseCniResult(v: unknown, field = 'result'): CniResult {
  if (!isObject(v)) throw invalid(field, 'must be an object');
  const interfaces = list(v, 'interfaces', field).map((i, n) => {
    const f = `${field}.interfaces[${n}]`;
    const name = optString(i, 'name', f);
    if (name === undefined || name === '') throw invalid(`${f}.name`, 'is required');
    return compact({
      name,
      mac: optString(i, 'mac', f),
      mtu: optNumber(i, 'mtu', f),
      sandbox: optString(i, 'sandbox', f),
      socketPath: optString(i, 'socketPath', f),
      pciID: optString(i, 'pciID', f),
    });
  });
  const ips = list(v, 'ips', field).map((ip, n) => {
    const f = `${field}.ips[${n}]`;
    const address = optString(ip, 'address', f);
    if (address === undefined || !/^[0-9a-fA-F.:]+\/\d{1,3}$/.test(address)) {
      throw invalid(`${f}.address`, `must be an address in CIDR notation, got ${JSON.stringify(ip['address'])}`);
    }
    return compact({ address, gateway: optString(ip, 'gateway', f), interface: optNumber(ip, 'interface', f) });
  });
  const routes = list(v, 'routes', field).map((r, n) => {
    const f = `${field}.routes[${n}]`;
    const dst = optString(r, 'dst', f);
    if (dst === undefined) throw invalid(`${f}.dst`, 'is required');
    return compact({
      dst,
      gw: optString(r, 'gw', f),
      mtu: optNumber(r, 'mtu', f),
      advmss: optNumber(r, 'advmss', f),
      priority: optNumber(r, 'priority', f),
      table: optNumber(r, 'table', f),
      scope: optNumber(r, 'scope', f),
    });
  });
  return { interfaces, ips, routes, dns: parseDns(v['dns'], `${field}.dns`) };
}

/** The result as the JSON object of spec `version` (fields the version lacks are dropped). */
export function formatCniResult(result: CniResult, version: CniVersion): Json {
  const v1 = compareCniVersions(version, '1.0.0') >= 0;
  const v11 = compareCniVersions(version, '1.1.0') >= 0;
  const interfaces = result.interfaces.map((i) =>
    compact({
      name: i.name,
      mac: i.mac,
      mtu: v11 ? i.mtu : undefined,
      sandbox: i.sandbox,
      socketPath: v11 ? i.socketPath : undefined,
      pciID: v11 ? i.pciID : undefined,
    }),
  );
  const ips = result.ips.map((ip) =>
    compact({
      // Before 1.0.0 every IP carried its family as "version".
      version: v1 ? undefined : ip.address.includes(':') ? '6' : '4',
      address: ip.address,
      gateway: ip.gateway,
      interface: ip.interface,
    }),
  );
  const routes = result.routes.map((r) =>
    v11
      ? compact({ ...r })
      : compact({
          dst: r.dst,
          gw: r.gw,
        }),
  );
  const out: Json = { cniVersion: version };
  if (interfaces.length > 0) out['interfaces'] = interfaces;
  if (ips.length > 0) out['ips'] = ips;
  if (routes.length > 0) out['routes'] = routes;
  out['dns'] = compact({ ...result.dns });
  return out;
}

// ---- network configuration ------------------------------------------------------------------

export interface IpamConfig {
  readonly type: string;
  readonly [key: string]: unknown;
}

/** One attachment in GC's `cni.dev/valid-attachments`. */
export interface CniAttachment {
  readonly containerID: string;
  readonly ifname: string;
}

export interface NetworkConfig {
  readonly cniVersion: CniVersion;
  readonly name: string;
  readonly type: string;
  readonly mtu: number | undefined;
  readonly dns: CniDns;
  readonly ipam: IpamConfig | undefined;
  readonly runtimeConfig: Readonly<Record<string, unknown>>;
  /** The raw prevResult (parse with {@link parseCniResult} when needed). */
  readonly prevResult: unknown;
  /** GC's valid attachments (undefined when the key is absent). */
  readonly validAttachments: readonly CniAttachment[] | undefined;
  /** The whole decoded object. */
  readonly raw: Readonly<Record<string, unknown>>;
}

const NETWORK_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * Decodes the network configuration (the plugin's stdin). Throws CniError: DECODING_FAILURE for
 * bytes that are not a JSON object, INVALID_NETWORK_CONFIG for a bad field (named),
 * INCOMPATIBLE_CNI_VERSION for a version we do not speak.
 */
export function parseNetworkConfig(bytes: Uint8Array | string): NetworkConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new CniError('DECODING_FAILURE', 'Failed to decode network config', { details: String(err), cause: err });
  }
  if (!isObject(raw)) throw new CniError('DECODING_FAILURE', 'Failed to decode network config: not a JSON object');
  const f = 'networkConfig';
  const cniVersionRaw = optString(raw, 'cniVersion', f);
  if (cniVersionRaw === undefined || cniVersionRaw === '') throw invalid(`${f}.cniVersion`, 'is required');
  compareCniVersions(cniVersionRaw, '0.0.0'); // malformed → DECODING_FAILURE
  const cniVersion = requireSupportedVersion(cniVersionRaw);
  const name = optString(raw, 'name', f);
  if (name === undefined || name === '') throw invalid(`${f}.name`, 'missing network name');
  if (!NETWORK_NAME_RE.test(name)) throw invalid(`${f}.name`, `invalid network name "${name}"`);
  const type = optString(raw, 'type', f) ?? '';
  const mtu = optNumber(raw, 'mtu', f);
  if (mtu !== undefined && (mtu < 68 || mtu > 65535)) throw invalid(`${f}.mtu`, `must be in 68-65535, got ${mtu}`);
  let ipam: IpamConfig | undefined;
  const ipamRaw = raw['ipam'];
  if (ipamRaw !== undefined && ipamRaw !== null) {
    if (!isObject(ipamRaw)) throw invalid(`${f}.ipam`, 'must be an object');
    const ipamType = optString(ipamRaw, 'type', `${f}.ipam`);
    if (ipamType === undefined || ipamType === '') throw invalid(`${f}.ipam.type`, 'is required');
    ipam = { ...ipamRaw, type: ipamType };
  }
  const rc = raw['runtimeConfig'];
  if (rc !== undefined && rc !== null && !isObject(rc)) throw invalid(`${f}.runtimeConfig`, 'must be an object');
  let validAttachments: CniAttachment[] | undefined;
  const va = raw['cni.dev/valid-attachments'];
  if (va !== undefined && va !== null) {
    if (!Array.isArray(va)) throw invalid(`${f}.cni.dev/valid-attachments`, 'must be a list');
    validAttachments = va.map((a: unknown, i) => {
      const af = `${f}.cni.dev/valid-attachments[${i}]`;
      if (!isObject(a)) throw invalid(af, 'must be an object');
      const containerID = optString(a, 'containerID', af);
      const ifname = optString(a, 'ifname', af);
      if (containerID === undefined || ifname === undefined) throw invalid(af, 'needs containerID and ifname');
      return { containerID, ifname };
    });
  }
  return {
    cniVersion,
    name,
    type,
    mtu,
    dns: parseDns(raw['dns'], `${f}.dns`),
    ipam,
    runtimeConfig: isObject(rc) ? rc : {},
    prevResult: raw['prevResult'],
    validAttachments,
    raw,
  };
}

/** The error JSON of the spec ("cniVersion, code, msg, details"). */
export function formatCniError(err: { cniCode: number; message: string; cniDetails?: string }, version: string): Json {
  const out: Json = { cniVersion: version, code: err.cniCode, msg: err.message };
  if (err.cniDetails !== undefined && err.cniDetails !== '') out['details'] = err.cniDetails;
  return out;
}
