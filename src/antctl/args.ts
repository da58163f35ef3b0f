/**
 * antctl's command line (Antrea's verbs, aliases and flags; docs/antctl.md):
 *
 *   antctl [flags] version
 *   antctl [flags] get networkpolicy|netpol|np [NAME] [-n NS] [-T K8sNP|ACNP|ANNP|ANP|BANP] [-S SOURCE]
 *                                                   [--sort-by effectivePriority]
 *   antctl [flags] get addressgroup|addrgroup|ag [NAME]
 *   antctl [flags] get appliedtogroup|atg [NAME]
 *   antctl [flags] get podinterface|pi [NAME] [-n NS]                       (agent mode)
 *   antctl [flags] get ovsflows|of [-T TABLE[,TABLE]] [-p POD [-n NS]] [--table-names-only] (agent mode)
 *   antctl [flags] get agentinfo|ai                                          (agent mode)
 *   antctl [flags] get controllerinfo|ci                                     (controller mode)
 *
 * Global flags: -o/--output table|json|yaml, -k/--kubeconfig, -s/--server, -t/--timeout, -v/--verbose,
 * and ours: --mode agent|controller, --token-file, --ca-file, --insecure-skip-tls-verify,
 * --antrea-namespace. Anything else, a flag a command does not take, or a missing or extra
 * argument is a {@link UsageError} naming it.
 */
import { parseArgs } from 'node:util';
import { AntreaError } from '../common/util/errors.ts';

export class UsageError extends AntreaError<'ANTCTL_USAGE'> {
  constructor(message: string) {
    super('ANTCTL_USAGE', message);
  }
}

export const RESOURCES = {
  networkpolicy: ['networkpolicy', 'networkpolicies', 'netpol', 'np'],
  addressgroup: ['addressgroup', 'addressgroups', 'addrgroup', 'ag'],
  appliedtogroup: ['appliedtogroup', 'appliedtogroups', 'atg'],
  podinterface: ['podinterface', 'podinterfaces', 'pi'],
  ovsflows: ['ovsflows', 'of'],
  agentinfo: ['agentinfo', 'ai'],
  controllerinfo: ['controllerinfo', 'ci'],
} as const;
export type Resource = keyof typeof RESOURCES;

export type OutputFormat = 'table' | 'json' | 'yaml';
export type Mode = 'agent' | 'controller';

/** Policy types accepted by `-T` for networkpolicy, and the sourceRef type each stands for. */
export const POLICY_TYPES = {
  K8sNP: 'K8sNetworkPolicy',
  ACNP: 'AntreaClusterNetworkPolicy',
  ANNP: 'AntreaNetworkPolicy',
  ANP: 'AdminNetworkPolicy',
  BANP: 'BaselineAdminNetworkPolicy',
} as const;

export interface GlobalFlags {
  readonly output: OutputFormat | undefined;
  readonly kubeconfig: string | undefined;
  readonly server: string | undefined;
  readonly timeoutMs: number;
  readonly verbose: boolean;
  readonly mode: Mode | undefined;
  readonly tokenFile: string | undefined;
  readonly caFile: string | undefined;
  readonly insecure: boolean;
  readonly antreaNamespace: string;
}

export type Command =
  | { readonly verb: 'help' }
  | { readonly verb: 'version' }
  | {
      readonly verb: 'get';
      readonly resource: Resource;
      readonly name: string | undefined;
      readonly namespace: string | undefined;
      readonly pod: string | undefined;
      /** ovsflows: tables; networkpolicy: policy type. */
      readonly tables: readonly string[];
      readonly policyType: string | undefined;
      readonly source: string | undefined;
      readonly sortBy: string | undefined;
      readonly tableNamesOnly: boolean;
    };

export interface ParsedArgs {
  readonly flags: GlobalFlags;
  readonly command: Command;
}

const OPTIONS = {
  output: { type: 'string', short: 'o' },
  kubeconfig: { type: 'string', short: 'k' },
  server: { type: 'string', short: 's' },
  timeout: { type: 'string', short: 't' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
  mode: { type: 'string' },
  'token-file': { type: 'string' },
  'ca-file': { type: 'string' },
  'insecure-skip-tls-verify': { type: 'boolean' },
  'antrea-namespace': { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  pod: { type: 'string', short: 'p' },
  table: { type: 'string', short: 'T' },
  source: { type: 'string', short: 'S' },
  'sort-by': { type: 'string' },
  'table-names-only': { type: 'boolean' },
} as const;

type OptionName = keyof typeof OPTIONS;

/** Flags each `get` resource takes besides the global ones. */
const RESOURCE_FLAGS: Readonly<Record<Resource, readonly OptionName[]>> = {
  networkpolicy: ['namespace', 'table', 'source', 'sort-by'],
  addressgroup: [],
  appliedtogroup: [],
  podinterface: ['namespace'],
  ovsflows: ['namespace', 'pod', 'table', 'table-names-only'],
  agentinfo: [],
  controllerinfo: [],
};
const COMMAND_FLAGS: readonly OptionName[] = ['namespace', 'pod', 'table', 'source', 'sort-by', 'table-names-only'];

function flagName(o: OptionName): string {
  const s = (OPTIONS[o] as { short?: string }).short;
  return s === undefined ? `--${o}` : `-${s}/--${o}`;
}

/** Parses a Go-style duration ("10s", "1m30s", "500ms", "0"); milliseconds. */
export function parseDuration(field: string, v: string): number {
  if (v === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(v); m !== null; m = re.exec(v)) {
    const n = Number(m[1]);
    total += n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    consumed = re.lastIndex;
  }
  if (v === '' || consumed !== v.length) {
    throw new UsageError(`invalid value "${v}" for ${field}: expected a duration such as 10s, 1m or 500ms`);
  }
  return total;
}

/** Resolves a resource name or alias; a UsageError lists the known ones. */
export function resolveResource(word: string): Resource {
  const w = word.toLowerCase();
  for (const [r, names] of Object.entries(RESOURCES) as [Resource, readonly string[]][]) {
    if (names.includes(w)) return r;
  }
  const known = Object.values(RESOURCES)
    .map((n) => n.join('|'))
    .join(', ');
  throw new UsageError(`unknown resource type "${word}" for get (known: ${known})`);
}

export function parseAntctlArgs(argv: readonly string[]): ParsedArgs {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new UsageError(msg.replace(/\. To specify a positional argument.*$/s, ''));
  }
  const v = parsed.values;
  const pos = parsed.positionals;
  const output = v.output;
  if (output !== undefined && output !== 'table' && output !== 'json' && output !== 'yaml') {
    throw new UsageError(`invalid value "${output}" for -o/--output: must be table, json or yaml`);
  }
  const mode = v.mode;
  if (mode !== undefined && mode !== 'agent' && mode !== 'controller') {
    throw new UsageError(`invalid value "${mode}" for --mode: must be agent or controller`);
  }
  const server = v.server;
  if (server !== undefined && !/^https:\/\/[^/\s]+\/?$/.test(server)) {
    throw new UsageError(`invalid value "${server}" for -s/--server: expected https://HOST:PORT`);
  }
  const flags: GlobalFlags = {
    output,
    kubeconfig: v.kubeconfig,
    server: server?.replace(/\/$/, ''),
    timeoutMs: v.timeout === undefined ? 30_000 : parseDuration('-t/--timeout', v.timeout),
    verbose: v.verbose === true,
    mode,
    tokenFile: v['token-file'],
    caFile: v['ca-file'],
    insecure: v['insecure-skip-tls-verify'] === true,
    antreaNamespace: v['antrea-namespace'] ?? 'kube-system',
  };
  const given = (Object.keys(v) as OptionName[]).filter((k) => v[k] !== undefined);
  const refuse = (allowed: readonly OptionName[], what: string): void => {
    const bad = given.filter((k) => COMMAND_FLAGS.includes(k) && !allowed.includes(k));
    if (bad.length > 0) {
      throw new UsageError(`${bad.map(flagName).join(', ')} ${bad.length === 1 ? 'is' : 'are'} not valid for ${what}`);
    }
  };
  if (v.help === true || pos.length === 0) {
    if (v.help !== true) throw new UsageError('a command is required');
    return { flags, command: { verb: 'help' } };
  }
  const [verb = '', ...rest] = pos;
  if (verb === 'version') {
    if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}" for version`);
    refuse([], 'version');
    return { flags, command: { verb: 'version' } };
  }
  if (verb !== 'get') throw new UsageError(`unknown command "${verb}" (commands: version, get)`);
  const [word, name, ...extra] = rest;
  if (word === undefined) throw new UsageError('get needs a resource type (for example: antctl get networkpolicy)');
  const resource = resolveResource(word);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}" for get ${resource}`);
  if (name !== undefined && (resource === 'ovsflows' || resource === 'agentinfo' || resource === 'controllerinfo')) {
    throw new UsageError(`get ${resource} takes no NAME argument (got "${name}")`);
  }
  refuse(RESOURCE_FLAGS[resource], `get ${resource}`);
  const tableFlag = v.table;
  let policyType: string | undefined;
  let tables: string[] = [];
  if (tableFlag !== undefined && resource === 'networkpolicy') {
    if (!(tableFlag in POLICY_TYPES)) {
      throw new UsageError(
        `invalid value "${tableFlag}" for -T/--table: the policy type must be one of ${Object.keys(POLICY_TYPES).join(', ')}`,
      );
    }
    policyType = tableFlag;
  } else if (tableFlag !== undefined) {
    tables = tableFlag
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    if (tables.length === 0) throw new UsageError('-T/--table needs at least one table name or number');
  }
  const sortBy = v['sort-by'];
  if (sortBy !== undefined && sortBy !== 'effectivePriority' && sortBy !== 'name') {
    throw new UsageError(`invalid value "${sortBy}" for --sort-by: must be effectivePriority or name`);
  }
  if (resource === 'ovsflows') {
    if (v.namespace !== undefined && v.pod === undefined) throw new UsageError('-n/--namespace needs -p/--pod');
    if (v['table-names-only'] === true && (v.pod !== undefined || tableFlag !== undefined)) {
      throw new UsageError('--table-names-only cannot be combined with -p/--pod or -T/--table');
    }
  }
  return {
    flags,
    command: {
      verb: 'get',
      resource,
      name,
      namespace: v.namespace,
      pod: v.pod,
      tables,
      policyType,
      source: v.source,
      sortBy,
      tableNamesOnly: v['table-names-only'] === true,
    },
  };
}

/** The modes a command works in (as Antrea's command list). */
export function commandModes(c: Command): readonly Mode[] {
  if (c.verb !== 'get') return ['agent', 'controller'];
  switch (c.resource) {
    case 'podinterface':
    case 'ovsflows':
    case 'agentinfo':
      return ['agent'];
    case 'controllerinfo':
      return ['controller'];
    case 'networkpolicy':
    case 'addressgroup':
    case 'appliedtogroup':
      return ['agent', 'controller'];
  }
}

/**
 * The mode, as Antrea decides it: inside an antrea-agent Pod (POD_NAME starts with antrea-agent)
 * agent mode, inside antrea-controller's Pod controller mode, elsewhere controller mode (reaching
 * the controller from a kubeconfig); `--mode` overrides.
 */
export function detectMode(
  env: Readonly<Record<string, string | undefined>>,
  flag: Mode | undefined,
): { mode: Mode; inPod: boolean } {
  const pod = env['POD_NAME'] ?? '';
  const inAgent = pod.startsWith('antrea-agent');
  const inController = pod.startsWith('antrea-controller');
  const inPod = inAgent || inController;
  if (flag !== undefined) return { mode: flag, inPod };
  return { mode: inAgent ? 'agent' : 'controller', inPod };
}

export function usage(prog: string): string {
  return `${prog}: the Antrea CLI, for antrea-controller (controller mode) and antrea-agent (agent mode)

Usage:
  ${prog} version
  ${prog} get networkpolicy|netpol|np [NAME] [-n NAMESPACE] [-T K8sNP|ACNP|ANNP|ANP|BANP] [-S SOURCE] [--sort-by effectivePriority]
  ${prog} get addressgroup|addrgroup|ag [NAME]
  ${prog} get appliedtogroup|atg [NAME]
  ${prog} get podinterface|pi [NAME] [-n NAMESPACE]                          (agent mode)
  ${prog} get ovsflows|of [-T TABLE[,TABLE]] [-p POD [-n NAMESPACE]] [--table-names-only]   (agent mode)
  ${prog} get agentinfo|ai                                                     (agent mode)
  ${prog} get controllerinfo|ci                                                (controller mode)

Flags:
  -o, --output table|json|yaml   output format (default table; yaml for version)
  -k, --kubeconfig PATH          kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)
  -s, --server https://HOST:PORT the controller or agent API to talk to directly
  -t, --timeout DURATION         request timeout (default 30s)
  -v, --verbose                  print the requests made to stderr
      --mode agent|controller    override the mode (default: agent inside an antrea-agent Pod, else controller)
      --token-file PATH          agent mode: bearer token file (default /var/run/antrea/apiserver/loopback-client-token)
      --ca-file PATH             CA bundle to verify the server with
      --insecure-skip-tls-verify do not verify the server's certificate
      --antrea-namespace NS      Namespace of Antrea's objects (ConfigMap antrea-ca; default kube-system)
`;
}
