/**
 * antrea-lab: a whole Kubernetes cluster on one Linux machine: an embedded API server, N Nodes each
 * in its own network namespace with its own Open vSwitch and CNI, a scheduler and kubelet stand-ins
 * whose Pods are network namespaces running a small server, probes and a conformance runner.
 *
 *   antrea-lab up [--nodes N] [--encap geneve|vxlan|noencap|hybrid] [--cni antrea|bridge] [--data-dir DIR]
 *   antrea-lab down | status | kubeconfig [--data-dir DIR]
 *   antrea-lab exec [-n NAMESPACE] POD -- COMMAND [ARG...]
 *   antrea-lab probe [--port N] [--protocol TCP|UDP] [--namespaces x,y,z] [--data-dir DIR]
 *   antrea-lab demo [--once] [--nodes N] [--data-dir DIR]
 *   antrea-lab component kill|stop|start|restart antrea-agent|antrea-controller|ovs-vswitchd [--node NODE]
 *
 * The data directory (default /var/lib/antrea-lab, or $ANTREA_LAB_DATA_DIR) holds the lab's state,
 * logs and kubeconfig; `down` removes it with everything else the lab made.
 */
import { existsSync, realpathSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { createCommandRunner, createProcessLauncher } from '../common/util/exec.ts';
import { errorMessage, isAntreaError } from '../common/util/errors.ts';
import { formatDuration } from '../common/util/clock.ts';
import { createLogger, parseLogLevel } from '../common/util/log.ts';
import { caseMatches, loadCases } from '../lab/conformance/cases.ts';
import { ConformanceRunner, formatOutcome, summarize } from '../lab/conformance/runner.ts';
import { COMPONENT_ACTIONS, describeResult, LAB_COMPONENTS, parseComponentRequest } from '../lab/components.ts';
import { labClient, labComponent, LabPaths, labUp, findPod, probePods, runningLab } from '../lab/control.ts';
import { runDemo } from '../lab/demo.ts';
import { auditIsolation } from '../lab/fabric.ts';
import { antreaCni, bridgeCni } from '../lab/node-cni.ts';
import { seededPlacement } from '../lab/model.ts';
import { MATRIX_LEGEND, probeMatrix, renderMatrix } from '../lab/probe.ts';
import { resolveDataDir, readState, type LabCni } from '../lab/state.ts';
import { LabSupervisor } from '../lab/supervisor.ts';
import { teardownLab } from '../lab/teardown.ts';
import { controlSubnet, parseEncap, SERVICE_CIDR, validateNodeCount } from '../lab/topology.ts';

const USAGE = `usage: antrea-lab COMMAND [options]

  up          start a lab in the background and wait until its Nodes are Ready
                --nodes N          Nodes (default 2, at most 16)
                --encap MODE       geneve (default), vxlan, noencap or hybrid
                --cni antrea|bridge  the Nodes' CNI (default: antrea once available, else bridge)
  down        stop the lab and remove everything it made (also after a crash)
  status      show the lab's Nodes, Pods and processes
  kubeconfig  print the path of the lab's admin kubeconfig (export KUBECONFIG=$(antrea-lab kubeconfig))
  exec        run a command inside a Pod's network namespace: antrea-lab exec [-n NS] POD -- CMD [ARG...]
  probe       print the connectivity matrix of the running Pods
                --port N (default 80)  --protocol TCP|UDP (default TCP)  --namespaces x,y,z
                --timeout-ms N (default 1000)
  conformance run NetworkPolicy conformance cases (netpol-case/v1 files) against the lab
                --cases DIR        a directory of case files (searched recursively)
                --filter TEXT      only cases whose id, name or file contains TEXT
                --retry-seconds N  retry window of a wrong pair (default 10, as upstream)
                --verbose          print expected and actual matrices of wrong probes
                --diagnose-dir DIR when a probe stays wrong, record why (flows hit, conntrack,
                                   datapath flows per Node) under DIR before the case cleans up
                --placement-seed N place the nine model Pods on the Nodes by a shuffle drawn
                                   from N (the same N, the same placement; default: scheduler)
              Uses the running lab, or brings one up (--nodes, default 2) and removes it after.
  component   kill, stop, start or restart a component of the running lab (fault injection):
                antrea-lab component ACTION COMPONENT [--node NODE]
                ACTION: ${COMPONENT_ACTIONS.join(', ')}; COMPONENT: ${LAB_COMPONENTS.join(', ')}
                (antrea-agent and ovs-vswitchd run per Node: --node names it)
  demo        the demo: a 2-Node lab, Namespaces x, y, z with Pods a, b, c, the connectivity matrix,
              a sample NetworkPolicy, the matrix again; leaves the lab running (--once removes it)
                --nodes N (default 2)  --encap MODE  --cni antrea|bridge

  Every command takes --data-dir DIR (default /var/lib/antrea-lab, or $ANTREA_LAB_DATA_DIR).`;

const runner = createCommandRunner();
const launcher = createProcessLauncher();
const CLI_ENTRY = import.meta.filename;
const POD_ENTRY = join(import.meta.dirname, 'lab-pod.ts');
const say = (line: string): void => console.log(line);
/** How a user runs this CLI again from a plain shell (for instructions): the pinned node, relative to the working directory. */
function selfCommand(): string {
  const short = (p: string): string => {
    const rel = relative(process.cwd(), p);
    return rel.startsWith('..') ? p : rel;
  };
  const pinned = join(import.meta.dirname, '..', '..', 'node_modules', '.bin', 'node');
  const node =
    existsSync(pinned) && realpathSync(pinned) === realpathSync(process.execPath) ? short(pinned) : process.execPath;
  return `${node} ${short(CLI_ENTRY)}`;
}

class UsageError extends Error {}

function needLinuxRoot(what: string): void {
  if (process.platform !== 'linux')
    throw new Error(`antrea-lab ${what} needs Linux (network namespaces and Open vSwitch)`);
  if (process.getuid?.() !== 0) {
    throw new Error(`antrea-lab ${what} needs root (it creates network namespaces and runs Open vSwitch)`);
  }
}

function parse(args: string[], options: ParseArgsOptionsConfig): ReturnType<typeof parseArgs> {
  try {
    return parseArgs({
      args,
      options: { 'data-dir': { type: 'string' }, ...options },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

const AGENT_ENTRY = join(import.meta.dirname, 'antrea-agent.ts');
const INSTALL_CNI_ENTRY = join(import.meta.dirname, 'install-cni.ts');
const CONTROLLER_ENTRY = join(import.meta.dirname, 'antrea-controller.ts');
const RBAC_MANIFEST = join(import.meta.dirname, '..', '..', 'build', 'yamls', 'antrea-rbac.yml');

/** Whether this tree has the antrea agent and its CNI install step. */
function antreaAvailable(): boolean {
  return existsSync(AGENT_ENTRY) && existsSync(INSTALL_CNI_ENTRY);
}

function defaultCni(): LabCni {
  return antreaAvailable() ? 'antrea' : 'bridge';
}

function parseCni(value: string | undefined): LabCni {
  const cni = value ?? defaultCni();
  if (cni !== 'antrea' && cni !== 'bridge') throw new UsageError(`--cni: must be antrea or bridge, got "${cni}"`);
  if (cni === 'antrea' && !antreaAvailable()) {
    throw new UsageError(`--cni antrea: ${AGENT_ENTRY} is not part of this build yet; use --cni bridge`);
  }
  return cni;
}

async function up(args: string[]): Promise<number> {
  const { values } = parse(args, { nodes: { type: 'string' }, encap: { type: 'string' }, cni: { type: 'string' } });
  const dataDir = resolveDataDir(str(values['data-dir']));
  const nodes = validateNodeCount(Number(str(values['nodes']) ?? '2'));
  const encap = parseEncap(str(values['encap']) ?? 'geneve');
  const cniValue = parseCni(str(values['cni']));
  needLinuxRoot('up');
  const ac = new AbortController();
  const onSignal = (): void => ac.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    say(`starting a lab with ${nodes} Node(s) (${encap}, ${cniValue} CNI) in ${dataDir}`);
    const state = await labUp({
      dataDir,
      nodes,
      encap,
      cni: cniValue,
      runner,
      launcher,
      cliCommand: [process.execPath, CLI_ENTRY],
      say: (l) => say(`  ${l}`),
      signal: ac.signal,
    });
    say(`lab ready (${formatDuration(state.upMs ?? 0)}); API server ${state.apiServerURL ?? '?'}`);
    say(`  export KUBECONFIG=${new LabPaths(dataDir).adminKubeconfig}`);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function down(args: string[]): Promise<number> {
  const { values } = parse(args, {});
  const dataDir = resolveDataDir(str(values['data-dir']));
  needLinuxRoot('down');
  const report = await teardownLab(new LabPaths(dataDir), { runner, say: (l) => say(l) });
  for (const p of report.problems) say(`problem: ${p}`);
  if (report.removed.length === 0 && report.processesStopped.length === 0 && !report.supervisorStopped) {
    say(`nothing to remove: no lab in ${dataDir}`);
  } else {
    say(
      `lab removed (${report.removed.length} item(s)${report.processesStopped.length > 0 ? `, ${report.processesStopped.length} leftover process(es) stopped` : ''})`,
    );
  }
  return report.problems.length === 0 ? 0 : 1;
}

async function status(args: string[]): Promise<number> {
  const { values } = parse(args, {});
  const paths = new LabPaths(resolveDataDir(str(values['data-dir'])));
  const state = readState(paths);
  if (state === undefined) {
    say(`no lab in ${paths.dataDir}`);
    return 3;
  }
  const live = runningLab(paths) !== undefined;
  say(
    `lab in ${paths.dataDir}: ${live ? state.phase : `${state.phase}, supervisor not running (antrea-lab down cleans up)`}`,
  );
  say(
    `  supervisor pid ${state.pid}, ${state.options.nodes} Node(s), ${state.options.encap}, ${state.options.cni} CNI`,
  );
  if (state.apiServerURL !== undefined) say(`  API server ${state.apiServerURL}, kubeconfig ${paths.adminKubeconfig}`);
  if (state.controllerPid !== undefined)
    say(`  antrea-controller pid ${state.controllerPid}, log ${paths.controllerLog}`);
  if (state.error !== undefined) say(`  error: ${state.error}`);
  if (!live) return 3;
  if (state.slot !== undefined) {
    const problems = await auditIsolation(runner, state.prefix, controlSubnet(state.slot).cidr);
    say(
      problems.length === 0
        ? "  isolation: ok (no route from the lab to the machine's network; root namespace: one connected route)"
        : `  isolation: ${problems.length} problem(s):\n${problems.map((p) => `    ${p}`).join('\n')}`,
    );
  }
  const client = labClient(paths);
  try {
    const nodes = await client.list<{
      metadata?: { name?: string };
      spec?: { podCIDR?: string };
      status?: { conditions?: { type?: string; status?: string }[]; addresses?: { type: string; address: string }[] };
    }>({ apiVersion: 'v1', resource: 'nodes' });
    say('NODE      READY  INTERNAL-IP     POD-CIDR        PROCESSES');
    for (const n of nodes.items) {
      const name = n.metadata?.name ?? '';
      const ready = (n.status?.conditions ?? []).find((c) => c.type === 'Ready')?.status ?? '?';
      const ip = (n.status?.addresses ?? []).find((a) => a.type === 'InternalIP')?.address ?? '';
      const ns = state.nodes.find((x) => x.name === name);
      const procs = Object.entries(ns?.pids ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      say(`${name.padEnd(9)} ${ready.padEnd(6)} ${ip.padEnd(15)} ${(n.spec?.podCIDR ?? '').padEnd(15)} ${procs}`);
    }
    const pods = await client.list<{
      metadata?: { namespace?: string; name?: string };
      spec?: { nodeName?: string };
      status?: { phase?: string; podIP?: string };
    }>({ apiVersion: 'v1', resource: 'pods' });
    say(`${pods.items.length} Pod(s)`);
    for (const p of pods.items) {
      say(
        `  ${`${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`.padEnd(24)} ${(p.status?.phase ?? '').padEnd(8)} ${(p.status?.podIP ?? '').padEnd(15)} ${p.spec?.nodeName ?? ''}`,
      );
    }
  } finally {
    client.close();
  }
  return 0;
}

function kubeconfig(args: string[]): number {
  const { values } = parse(args, {});
  const paths = new LabPaths(resolveDataDir(str(values['data-dir'])));
  if (runningLab(paths) === undefined) {
    console.error(`antrea-lab kubeconfig: no lab is running in ${paths.dataDir}`);
    return 3;
  }
  say(paths.adminKubeconfig);
  return 0;
}

async function execInPod(args: string[]): Promise<number> {
  const sep = args.indexOf('--');
  if (sep < 0 || sep === args.length - 1) throw new UsageError('exec: give the command after --');
  const { values, positionals } = parseArgs({
    args: args.slice(0, sep),
    options: { 'data-dir': { type: 'string' }, namespace: { type: 'string', short: 'n' } },
    strict: true,
    allowPositionals: true,
  });
  const [pod, ...extra] = positionals;
  if (pod === undefined || extra.length > 0)
    throw new UsageError('exec: give exactly one POD (namespace/name, or name with -n)');
  needLinuxRoot('exec');
  const paths = new LabPaths(resolveDataDir(str(values['data-dir'])));
  const rec = findPod(paths, pod, str(values.namespace) ?? 'default');
  const proc = await launcher.launch('ip', ['netns', 'exec', rec.netns, ...args.slice(sep + 1)], {
    inheritStdio: true,
  });
  const info = await proc.exited;
  return info.code ?? 128 + 9;
}

async function probe(args: string[]): Promise<number> {
  const { values } = parse(args, {
    port: { type: 'string' },
    protocol: { type: 'string' },
    namespaces: { type: 'string' },
    'timeout-ms': { type: 'string' },
  });
  const port = Number(str(values['port']) ?? '80');
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new UsageError(`--port: not a port: ${str(values['port']) ?? ''}`);
  const protocol = (str(values['protocol']) ?? 'TCP').toUpperCase();
  if (protocol !== 'TCP' && protocol !== 'UDP') throw new UsageError(`--protocol: must be TCP or UDP, got ${protocol}`);
  const timeoutMs = Number(str(values['timeout-ms']) ?? '1000');
  const paths = new LabPaths(resolveDataDir(str(values['data-dir'])));
  const client = labClient(paths);
  try {
    const namespaces = str(values['namespaces'])
      ?.split(',')
      .filter((s) => s !== '');
    const pods = await probePods(paths, client, namespaces);
    if (pods.length === 0) {
      say('no running Pods to probe');
      return 0;
    }
    const m = await probeMatrix(pods, port, protocol, { timeoutMs });
    say(`${protocol}/${port}, ${pods.length} Pods, ${pods.length * pods.length} pairs`);
    for (const l of renderMatrix(m)) say(l);
    say(MATRIX_LEGEND);
  } finally {
    client.close();
  }
  return 0;
}

async function component(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args,
      options: { 'data-dir': { type: 'string' }, node: { type: 'string' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
  const [action, comp, ...extra] = parsed.positionals;
  if (action === undefined || comp === undefined || extra.length > 0) {
    throw new UsageError('component: give an ACTION and a COMPONENT');
  }
  const node = str(parsed.values['node']);
  const req = parseComponentRequest({ action, component: comp, ...(node === undefined ? {} : { node }) });
  needLinuxRoot('component');
  const paths = new LabPaths(resolveDataDir(str(parsed.values['data-dir'])));
  say(describeResult(await labComponent(paths, req)));
  return 0;
}

async function conformance(args: string[]): Promise<number> {
  const { values } = parse(args, {
    cases: { type: 'string' },
    filter: { type: 'string' },
    'retry-seconds': { type: 'string' },
    nodes: { type: 'string' },
    verbose: { type: 'boolean' },
    'diagnose-dir': { type: 'string' },
    'placement-seed': { type: 'string' },
  });
  const dir = str(values['cases']);
  const diagnoseDir = str(values['diagnose-dir']);
  const seedText = str(values['placement-seed']);
  const seed = seedText === undefined ? undefined : Number(seedText);
  if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff)) {
    throw new UsageError(`--placement-seed: must be an integer from 0 to 4294967295, got "${seedText ?? ''}"`);
  }
  if (dir === undefined) throw new UsageError('conformance: --cases DIR is required');
  const retrySeconds = Number(str(values['retry-seconds']) ?? '10');
  if (!Number.isFinite(retrySeconds) || retrySeconds < 0)
    throw new UsageError('--retry-seconds: must be a number >= 0');
  const dataDir = resolveDataDir(str(values['data-dir']));
  const { cases: all, invalid } = loadCases(resolve(dir));
  const filter = str(values['filter']);
  const cases = all.filter((c) => caseMatches(c, filter));
  for (const bad of invalid) {
    say(`INVALID ${bad.file}`);
    for (const e of bad.errors) say(`  ${e.path === '' ? '(root)' : e.path}: ${e.message}`);
  }
  if (cases.length === 0 && invalid.length === 0) {
    say(`no case files${filter === undefined ? '' : ` matching "${filter}"`} in ${dir}`);
    return 1;
  }
  needLinuxRoot('conformance');
  const paths = new LabPaths(dataDir);
  let ownLab = false;
  if (runningLab(paths) === undefined && cases.length > 0) {
    const nodes = validateNodeCount(Number(str(values['nodes']) ?? '2'));
    say(`no lab running in ${dataDir}: starting one with ${nodes} Node(s)`);
    await labUp({
      dataDir,
      nodes,
      encap: 'geneve',
      cni: defaultCni(),
      runner,
      launcher,
      cliCommand: [process.execPath, CLI_ENTRY],
      say: (l) => say(`  ${l}`),
    });
    ownLab = true;
  }
  const verbose = values['verbose'] === true;
  let failed = invalid.length;
  try {
    if (cases.length > 0) {
      const client = labClient(paths);
      try {
        const nodeNames = (runningLab(paths)?.nodes ?? []).map((n) => n.name);
        const placement = seed === undefined ? undefined : seededPlacement(nodeNames, seed);
        if (placement !== undefined) {
          say(`placement (seed ${seed ?? ''}): ${[...placement].map(([pod, node]) => `${pod}@${node}`).join(' ')}`);
        }
        say(`running ${cases.length} case(s) from ${dir}`);
        const outcomes = await new ConformanceRunner({
          client,
          paths,
          retrySeconds,
          say,
          ...(diagnoseDir === undefined ? {} : { diagnose: { dir: resolve(diagnoseDir), runner } }),
          ...(placement === undefined ? {} : { placement }),
          onCase: (o) => {
            say(formatOutcome(o));
            if (verbose) for (const d of o.diffs) say(d.replace(/^/gm, '    '));
          },
        }).run(cases);
        const s = summarize(outcomes, invalid.length);
        failed = s.failed;
        say(s.line);
      } finally {
        client.close();
      }
    } else say(summarize([], invalid.length).line);
  } finally {
    if (ownLab) {
      say('removing the lab started for this run');
      await teardownLab(paths, { runner });
    }
  }
  return failed === 0 ? 0 : 1;
}

async function supervise(args: string[]): Promise<number> {
  const { values } = parse(args, {
    nodes: { type: 'string' },
    encap: { type: 'string' },
    cni: { type: 'string' },
    'log-level': { type: 'string' },
  });
  const dataDir = resolveDataDir(str(values['data-dir']));
  const cniKind = parseCni(str(values['cni']));
  const encap = parseEncap(str(values['encap']) ?? 'geneve');
  const logger = createLogger({ level: parseLogLevel(str(values['log-level']) ?? 'info'), format: 'text' });
  const ac = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => ac.abort(new Error(`received ${sig}`)));
  const supervisor = new LabSupervisor({
    dataDir,
    nodes: validateNodeCount(Number(str(values['nodes']) ?? '2')),
    encap,
    cni:
      cniKind === 'antrea'
        ? antreaCni({
            runner,
            launcher,
            agentCommand: [process.execPath, AGENT_ENTRY],
            installCniCommand: [process.execPath, INSTALL_CNI_ENTRY],
            encap,
            serviceCIDR: SERVICE_CIDR,
            logger,
          })
        : { ...bridgeCni, kind: 'bridge' },
    runner,
    launcher,
    podCommand: [process.execPath, POD_ENTRY],
    ...(existsSync(CONTROLLER_ENTRY) && existsSync(RBAC_MANIFEST)
      ? { controller: { command: [process.execPath, CONTROLLER_ENTRY], rbacManifest: RBAC_MANIFEST } }
      : {}),
    logger,
  });
  try {
    await supervisor.run(ac.signal);
    return 0;
  } catch (err) {
    if (ac.signal.aborted) return 0;
    logger.error('supervisor failed', { err: errorMessage(err) });
    return 1;
  }
}

async function demo(args: string[]): Promise<number> {
  const { values } = parse(args, {
    once: { type: 'boolean' },
    nodes: { type: 'string' },
    encap: { type: 'string' },
    cni: { type: 'string' },
  });
  const dataDir = resolveDataDir(str(values['data-dir']));
  const nodes = validateNodeCount(Number(str(values['nodes']) ?? '2'));
  const encap = parseEncap(str(values['encap']) ?? 'geneve');
  const cni = parseCni(str(values['cni']));
  needLinuxRoot('demo');
  const ac = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupts++;
    if (interrupts === 1) {
      say(`\n${sig}: stopping`);
      ac.abort(new Error(`interrupted by ${sig}`));
    } else {
      say('cleanup in progress, please wait');
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await runDemo({
      dataDir,
      nodes,
      encap,
      cni,
      runner,
      launcher,
      cliCommand: [process.execPath, CLI_ENTRY],
      labCommand: selfCommand(),
      say,
      signal: ac.signal,
      once: values['once'] === true,
    });
    return 0;
  } catch (err) {
    if (ac.signal.aborted) {
      say('stopped');
      return 130;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const [command, ...rest] = process.argv.slice(2);
const commands: Record<string, (args: string[]) => number | Promise<number>> = {
  up,
  down,
  status,
  kubeconfig,
  exec: execInPod,
  probe,
  supervise,
  conformance,
  component,
  demo,
};
let code: number;
try {
  if (command === undefined || command === '-h' || command === '--help') {
    say(USAGE);
    code = command === undefined ? 2 : 0;
  } else {
    const fn = commands[command];
    if (fn === undefined) throw new UsageError(`unknown command ${command}`);
    code = await fn(rest);
  }
} catch (err) {
  if (err instanceof UsageError || isAntreaError(err, 'INVALID_ARGUMENT')) {
    console.error(`antrea-lab ${command ?? ''}: ${err.message}\n\n${USAGE}`);
    code = 2;
  } else {
    console.error(`antrea-lab ${command ?? ''}: ${isAntreaError(err) ? err.message : errorMessage(err)}`);
    code = 1;
  }
}
// A background supervisor started by `up` must not keep this process alive.
process.exit(code);
