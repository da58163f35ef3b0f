/**
 * antctl: runs one command line and returns the exit code (0 success, 1 failure, 2 bad usage).
 * The mode (agent or controller) is detected as Antrea does (see {@link detectMode}); a command
 * that does not exist in the mode is refused with a message saying where it works.
 */
import { decodeObject, type Kind } from '../common/apis/controlplane/codec.ts';
import { K8S_NETWORK_POLICY_TIER_PRIORITY, type NetworkPolicy } from '../common/apis/controlplane/types.ts';
import { errorMessage, isAntreaError } from '../common/util/errors.ts';
import { ANTREA_TS_VERSION } from '../common/version.ts';
import {
  type Command,
  commandModes,
  detectMode,
  type Mode,
  parseAntctlArgs,
  POLICY_TYPES,
  type Resource,
  UsageError,
  usage,
} from './args.ts';
import { agentEndpoint, AntctlError, controllerEndpoint, type Endpoint, httpGet, serverError } from './client.ts';
import { render } from './output.ts';

export interface AntctlIO {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
}

type GetCommand = Extract<Command, { verb: 'get' }>;

interface Ctx {
  readonly ep: Endpoint;
  readonly mode: Mode;
  readonly timeoutMs: number;
  readonly log: ((line: string) => void) | undefined;
}

async function getJson(ctx: Ctx, path: string): Promise<Buffer> {
  const a = await httpGet(ctx.ep, path, ctx.timeoutMs, ctx.log);
  if (a.status === 404 && ctx.ep.via === 'kubernetes' && path.startsWith('/apis/')) {
    const group = path.split('/')[2] ?? '';
    const text = a.body.toString('utf8');
    // The group itself is not served: no APIService (API aggregation) for antrea-controller.
    if (!/"name"\s*:/.test(text) || /could not find the requested resource/.test(text)) {
      const probe = await httpGet(ctx.ep, `/apis/${group}`, ctx.timeoutMs, ctx.log);
      if (probe.status === 404) {
        throw new AntctlError(
          `the Kubernetes API at ${ctx.ep.base} does not serve ${group} (no APIService for antrea-controller); ` +
            `pass -s/--server https://<controller-address>:10349 to reach antrea-controller directly`,
          404,
        );
      }
    }
  }
  if (a.status < 200 || a.status > 299) throw serverError(a);
  return a.body;
}

function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, v);
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

const CONTROLPLANE = '/apis/controlplane.antrea.io/v1beta2';
const CONTROLLER_INFO = '/apis/system.antrea.io/v1beta1/controllerinfos/antrea-controller';

const CP_KINDS: Partial<Record<Resource, { path: string; kind: Kind; list: Kind }>> = {
  networkpolicy: { path: 'networkpolicies', kind: 'NetworkPolicy', list: 'NetworkPolicyList' },
  addressgroup: { path: 'addressgroups', kind: 'AddressGroup', list: 'AddressGroupList' },
  appliedtogroup: { path: 'appliedtogroups', kind: 'AppliedToGroup', list: 'AppliedToGroupList' },
};

/** Antrea's effectivePriority order: tier priority (K8s policies between application and baseline), then priority, then name. */
function sortPolicies(list: NetworkPolicy[], by: string | undefined): NetworkPolicy[] {
  const byName = (a: NetworkPolicy, b: NetworkPolicy): number => a.metadata.name.localeCompare(b.metadata.name);
  if (by !== 'effectivePriority') return list.sort(byName);
  return list.sort(
    (a, b) =>
      (a.tierPriority ?? K8S_NETWORK_POLICY_TIER_PRIORITY) - (b.tierPriority ?? K8S_NETWORK_POLICY_TIER_PRIORITY) ||
      (a.priority !== undefined && b.priority !== undefined ? a.priority - b.priority : 0) ||
      byName(a, b),
  );
}

/** Fetches what `get` shows: the data and whether it is a single object. */
async function fetchGet(ctx: Ctx, c: GetCommand): Promise<{ data: unknown; single: boolean }> {
  const cp = CP_KINDS[c.resource];
  if (cp !== undefined) {
    let items: unknown[];
    if (ctx.mode === 'controller') {
      if (c.name !== undefined) {
        const body = await getJson(ctx, `${CONTROLPLANE}/${cp.path}/${encodeURIComponent(c.name)}`);
        const obj = decodeObject('json', body, [cp.kind]).object;
        items = [obj];
      } else {
        const body = await getJson(ctx, `${CONTROLPLANE}/${cp.path}`);
        items = [...(decodeObject('json', body, [cp.list]).object as { items: unknown[] }).items];
      }
    } else {
      const q =
        c.resource === 'networkpolicy'
          ? query({ name: c.name, namespace: c.namespace, source: c.source })
          : query({ name: c.name });
      items = JSON.parse((await getJson(ctx, `/${cp.path}${q}`)).toString('utf8')) as unknown[];
      if (c.name !== undefined && items.length === 0) {
        throw new AntctlError(`Error from server (NotFound): ${c.resource} "${c.name}" not found on this Node`, 404);
      }
    }
    if (c.resource === 'networkpolicy') {
      const type = c.policyType === undefined ? undefined : POLICY_TYPES[c.policyType as keyof typeof POLICY_TYPES];
      const ps = (items as NetworkPolicy[]).filter(
        (p) =>
          (c.namespace === undefined || p.sourceRef?.namespace === c.namespace) &&
          (c.source === undefined || p.sourceRef?.name === c.source) &&
          (type === undefined || p.sourceRef?.type === type),
      );
      items = sortPolicies(ps, c.sortBy);
    } else {
      items = (items as { metadata: { name: string } }[]).sort((a, b) =>
        a.metadata.name.localeCompare(b.metadata.name),
      );
    }
    return c.name !== undefined && items.length === 1
      ? { data: items[0], single: true }
      : { data: items, single: false };
  }
  switch (c.resource) {
    case 'podinterface': {
      const q = query({ name: c.name, namespace: c.namespace });
      return { data: JSON.parse((await getJson(ctx, `/podinterfaces${q}`)).toString('utf8')), single: false };
    }
    case 'ovsflows': {
      const q = c.tableNamesOnly
        ? '?table-names-only'
        : query({
            table: c.tables.length === 0 ? undefined : c.tables.join(','),
            pod: c.pod,
            namespace: c.pod === undefined ? undefined : (c.namespace ?? 'default'),
          });
      return { data: JSON.parse((await getJson(ctx, `/ovsflows${q}`)).toString('utf8')), single: false };
    }
    case 'agentinfo':
      return { data: JSON.parse((await getJson(ctx, '/agentinfo')).toString('utf8')), single: true };
    case 'networkpolicy':
    case 'addressgroup':
    case 'appliedtogroup':
    case 'controllerinfo': {
      const info = JSON.parse((await getJson(ctx, CONTROLLER_INFO)).toString('utf8')) as Record<string, unknown>;
      const { apiVersion: _a, kind: _k, metadata: _m, ...fields } = info;
      return { data: fields, single: true };
    }
  }
}

async function version(ctx: Ctx): Promise<Record<string, string>> {
  if (ctx.mode === 'agent') {
    const info = JSON.parse((await getJson(ctx, '/agentinfo')).toString('utf8')) as { version?: string };
    return { antctlVersion: ANTREA_TS_VERSION, agentVersion: info.version ?? '' };
  }
  const info = JSON.parse((await getJson(ctx, CONTROLLER_INFO)).toString('utf8')) as { version?: string };
  return { antctlVersion: ANTREA_TS_VERSION, controllerVersion: info.version ?? '' };
}

function describe(c: Command): string {
  return c.verb === 'get' ? `get ${c.resource}` : c.verb;
}

/** Runs antctl; `prog` is how the user called it ("antctl" or "kubectl antctl"). */
export async function runAntctl(argv: readonly string[], io: AntctlIO, prog = 'antctl'): Promise<number> {
  let parsed;
  try {
    parsed = parseAntctlArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`Error: ${err.message}\nRun '${prog} --help' for usage.\n`);
      return 2;
    }
    throw err;
  }
  const { flags, command } = parsed;
  if (command.verb === 'help') {
    io.stdout(usage(prog));
    return 0;
  }
  const { mode, inPod } = detectMode(io.env, flags.mode);
  const modes = commandModes(command);
  if (!modes.includes(mode)) {
    const where =
      modes[0] === 'agent'
        ? 'inside the antrea-agent Pod, or with --mode agent'
        : 'from a kubeconfig, or with --mode controller';
    io.stderr(
      `Error: "${describe(command)}" is only available in ${modes.join(' and ')} mode (run ${prog} ${where}); this is ${mode} mode\n`,
    );
    return 2;
  }
  const log = flags.verbose ? (line: string): void => io.stderr(`${line}\n`) : undefined;
  try {
    const ep = mode === 'agent' ? agentEndpoint(flags) : await controllerEndpoint(flags, inPod, log);
    const ctx: Ctx = { ep, mode, timeoutMs: flags.timeoutMs, log };
    if (command.verb === 'version') {
      const v = await version(ctx);
      const fmt = flags.output === 'json' ? 'json' : 'yaml';
      io.stdout(
        fmt === 'json'
          ? JSON.stringify(v, null, 2) + '\n'
          : Object.entries(v)
              .map(([k, x]) => `${k}: ${x}\n`)
              .join(''),
      );
      return 0;
    }
    const { data, single } = await fetchGet(ctx, command);
    io.stdout(render(flags.output ?? 'table', command.resource, data, single));
    return 0;
  } catch (err) {
    if (err instanceof AntctlError || isAntreaError(err)) {
      io.stderr(`Error: ${err.message}\n`);
      return 1;
    }
    io.stderr(`Error: ${errorMessage(err)}\n`);
    return 1;
  }
}
