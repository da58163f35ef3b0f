/**
 * `npm run bench -- cni [--pods N] [--burst N] [--plugin standalone|node]`
 *
 * CNI ADD and DEL latency for N Pods (default 100) on one real Node (antrea-agent in a Node
 * namespace with a private userspace OVS and its own OpenFlow pipeline), measured from the
 * plugin's exec to its result, exactly as a runtime runs it. The baseline, in the same run and
 * interleaved Pod by Pod, is a shell script doing only the unavoidable kernel work with `ip`: a
 * veth pair created into the Pod's namespace, its address, both ends up (and, for DEL, deleting
 * the veth); it has no IPAM, OVS port or flows, and its host ends are in a namespace of their own
 * (not the Node's, where ovs-vswitchd would react to them). Both are exec'd from a small helper process. The
 * ratio is baseline / ours at p50 (> 1 would be faster than the baseline); the goal for ADD is a
 * ratio of at least 1/3 (within 3x). `agent_steps` says where the agent's share goes.
 *
 * Then a burst (default 30, at most N): that many Pods added at once and deleted at once, and the
 * baseline's kernel work for as many at once (`add-burst`; the agent's own p50/p99 beside it).
 *
 * The plugin is installed as install-cni installs it: the standalone executable built with Bun
 * where Bun is installed (`--plugin node` runs it on Node instead, as the bundled script).
 *
 * Also measured: the plugin's start-up (VERSION) against bare Node, the plugin on Node, and Node
 * loading @grpc/grpc-js, and the agent's own share of ADD (from its log).
 *
 * Needs root (network namespaces and OVS daemons).
 */
import { join } from 'node:path';
import type { Test } from 'tap';
import { AgentNode, Cleanup, PLUGIN_ENTRY, type PodRef } from '../helpers/agent-node.ts';
import { NO_BUN, STANDALONE } from '../helpers/bun.ts';
import { compilePlugin } from '../../src/common/cni/compile.ts';
import { PLUGIN_BUNDLE } from '../../src/common/cni/install.ts';
import { createHelperRunner, type CommandRunner } from '../../src/common/util/exec.ts';
import { OvsdbBridge } from '../../src/common/ovs/ovsdb/bridge.ts';
import { OvsdbClient } from '../../src/common/ovs/ovsdb/client.ts';
import type { OvsDaemons } from '../../src/platform/linux/ovs-daemons.ts';
import { netns, tempOvs } from '../helpers/env.ts';
import { emit, percentile, round } from './lib.ts';

interface Options {
  pods: number;
  burst: number;
  plugin: 'standalone' | 'node';
}

const USAGE = 'usage: npm run bench -- cni [--pods N] [--burst N] [--plugin standalone|node]';

function parseArgs(args: string[]): Options {
  const opts: Options = { pods: 100, burst: 30, plugin: STANDALONE === undefined ? 'node' : 'standalone' };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const value = args[i + 1];
    i++;
    if (flag === '--plugin') {
      if (value !== 'standalone' && value !== 'node') throw new Error(`${USAGE} (bad: --plugin ${value})`);
      if (value === 'standalone' && NO_BUN !== false) throw new Error(`--plugin standalone: ${NO_BUN}`);
      opts.plugin = value;
      continue;
    }
    const v = Number(value);
    if ((flag !== '--pods' && flag !== '--burst') || !Number.isInteger(v) || v < (flag === '--burst' ? 0 : 1)) {
      throw new Error(`${USAGE} (bad: ${flag} ${value})`);
    }
    if (flag === '--pods') opts.pods = v;
    else opts.burst = v;
  }
  if (opts.burst > opts.pods) throw new Error(`--burst (${opts.burst}) cannot exceed --pods (${opts.pods})`);
  return opts;
}

function stats(xs: readonly number[]): { p50_ms: number; p99_ms: number; mean_ms: number } {
  return {
    p50_ms: round(percentile(xs, 50)),
    p99_ms: round(percentile(xs, 99)),
    mean_ms: round(xs.reduce((a, b) => a + b, 0) / xs.length),
  };
}

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** The baseline: only the kernel work, with `ip`, as one script (one exec, like the plugin). */
function baselineAdd(hostNs: string, podNs: string, host: string, ip: string): string {
  return [
    `ip -n ${hostNs} link add ${host} mtu 1450 type veth peer name eth0 mtu 1450 netns ${podNs}`,
    `ip -n ${podNs} addr add ${ip}/24 dev eth0`,
    `ip -n ${podNs} link set eth0 up`,
    `ip -n ${hostNs} link set ${host} up`,
  ].join(' && ');
}

/** ovs-vswitchd's count of full bridge reconfigurations (every OVSDB change and every link event in its namespace makes one). */
async function reconfigures(runner: CommandRunner, ovs: OvsDaemons): Promise<number> {
  const r = await runner.run('ovs-appctl', [
    '-t',
    ovs.ctlSocketPath('ovs-vswitchd'),
    'coverage/read-counter',
    'bridge_reconfigure',
  ]);
  return Number(r.stdout.trim());
}

/** ovs-vswitchd's event counters (coverage/show totals), by name. */
async function coverage(runner: CommandRunner, ovs: OvsDaemons): Promise<Map<string, number>> {
  const r = await runner.run('ovs-appctl', ['-t', ovs.ctlSocketPath('ovs-vswitchd'), 'coverage/show']);
  const out = new Map<string, number>();
  for (const m of r.stdout.matchAll(/^(\S+)\s+.*total: (\d+)$/gm)) out.set(m[1] ?? '', Number(m[2]));
  return out;
}

/** The counters that grew most between two snapshots, per operation. */
function topCounters(a: Map<string, number>, b: Map<string, number>, per: number, n = 10): Record<string, number> {
  return Object.fromEntries(
    [...b]
      .map(([k, v]) => [k, (v - (a.get(k) ?? 0)) / per] as const)
      .filter(([, v]) => v > 0)
      .sort((x, y) => y[1] - x[1])
      .slice(0, n)
      .map(([k, v]) => [k, round(v, 1)]),
  );
}

/**
 * OVS's own cost, without the agent: on a fresh netdev bridge in its own namespace and daemons,
 * `n` veths attached one by one by an OVSDB client in this process (insert the port, wait for its
 * ofport), each veth made up front with `ip`. What grows here with the port count is ovs-vswitchd's.
 */
async function bareOvs(
  cleanup: Cleanup,
  runner: CommandRunner,
  n: number,
): Promise<{ addPort: number[]; reconfiguresPerPort: number; counters: Record<string, number> }> {
  const ovs = await tempOvs(cleanup as unknown as Test);
  const ns = ovs.netns ?? '';
  const client = await OvsdbClient.connect({ endpoint: ovs.dbEndpoint, timeoutMs: 10_000 });
  cleanup.teardown(() => client.close());
  const bridge = new OvsdbBridge(client, 'br-bare');
  await bridge.create({ datapathType: 'netdev', failMode: 'secure' });
  const addPort: number[] = [];
  let before = 0;
  let covBefore = new Map<string, number>();
  for (let i = 0; i < n + 3; i++) {
    const name = `bare${i}`;
    await runner.run('ip', ['-n', ns, 'link', 'add', name, 'up', 'type', 'veth', 'peer', 'name', `bp${i}`]);
    await runner.run('ip', ['-n', ns, 'link', 'set', `bp${i}`, 'up']);
    if (i === 3) {
      before = await reconfigures(runner, ovs);
      covBefore = await coverage(runner, ovs);
    }
    const ms = await timeIt(async () => {
      await bridge.createPort({ name, type: 'system' });
      await bridge.waitForOFPort(name);
    });
    if (i >= 3) addPort.push(ms); // the first 3 warm up
  }
  const after = await reconfigures(runner, ovs);
  const counters = topCounters(covBefore, await coverage(runner, ovs), n);
  return { addPort, reconfiguresPerPort: round((after - before) / n, 2), counters };
}

/** The agent's own time (ms) for its last `n` calls of `method`, from its "done" log lines. */
function agentTimes(log: string, method: string, n: number): number[] {
  return [...log.matchAll(new RegExp(`"msg":"done".*"method":"${method}".*"ms":(\\d+)`, 'g'))]
    .map((m) => Number(m[1]))
    .slice(-n);
}

/** The address of the baseline's Pod `i`. */
function baselineIp(i: number): string {
  return `10.99.${i >> 8}.${(i & 0xff) + 1}`;
}

/** The agent's ADD steps, as its "Pod network configured" log line gives them. */
const ADD_STEPS = [
  'prepareMs',
  'ipamMs',
  'interfaceMs',
  'portMs',
  'ofportMs',
  'portWaitMs',
  'flowsMs',
  'flowsWaitMs',
  'commitMs',
];

/** p50 of each step (`xMs` → `x_p50_ms`) over the last `n` agent log lines with message `msg`. */
function stepFigures(log: string, msg: string, keys: readonly string[], n: number): Record<string, number> {
  const steps: Record<string, number[]> = {};
  for (const line of log.split('\n')) {
    if (!line.includes(`"${msg}"`)) continue;
    const rec = JSON.parse(line) as Record<string, unknown>;
    for (const k of keys) if (typeof rec[k] === 'number') (steps[k] ??= []).push(rec[k]);
  }
  return Object.fromEntries(
    Object.entries(steps).map(([k, v]) => [k.replace(/Ms$/, '_p50_ms'), round(percentile(v.slice(-n), 50))]),
  );
}

export async function run(args: string[]): Promise<void> {
  const opts = parseArgs(args);
  if (process.getuid?.() !== 0) throw new Error('the cni benchmark needs root');
  const cleanup = new Cleanup();
  // Commands start from a small helper process, as a runtime's vfork would: spawning straight from
  // this (large) benchmark process would add ~15 ms to both sides.
  const runner = createHelperRunner();
  cleanup.teardown(() => runner.close());
  try {
    const node = await AgentNode.create(cleanup, { podCIDR: '10.10.0.0/16', plugin: opts.plugin });
    await node.start();
    const podNs: string[] = [];
    const baseNs: string[] = [];
    // The baseline's host ends live in a namespace of their own: in the Node's, ovs-vswitchd would
    // reconfigure its bridge on their link events too, and charge that work to our side.
    const baseHost = `cnibh-${process.pid}`;
    await netns.ensure(baseHost);
    cleanup.teardown(() => netns.delete(baseHost));
    for (let i = 0; i < opts.pods + 3; i++) {
      podNs.push(await node.podNetns(cleanup));
      const b = `cnib-${process.pid}-${i}`;
      await netns.ensure(b);
      cleanup.teardown(() => netns.delete(b));
      baseNs.push(b);
    }
    const pods: PodRef[] = podNs.map((n, i) => ({
      containerId: `bench${process.pid}c${i}`,
      netns: n,
      name: `bench-${i}`,
    }));

    // Warm-up: the first calls pay for caches (host-local VERSION, compile cache, OVS).
    for (let i = 0; i < 3; i++) {
      const p = pods[opts.pods + i]!;
      await node.cni('ADD', p, { runner });
      await node.cni('DEL', p, { runner });
      await runner.run('sh', ['-c', baselineAdd(baseHost, baseNs[opts.pods + i]!, `bw${i}`, `10.99.0.${i + 2}`)]);
      await runner.run('ip', ['-n', baseHost, 'link', 'del', `bw${i}`]);
    }

    const add: number[] = [];
    const addBase: number[] = [];
    const reconfBefore = await reconfigures(runner, node.ovs);
    const covBefore = await coverage(runner, node.ovs);
    const del: number[] = [];
    const delBase: number[] = [];
    const ms = (r: { exitCode: number; stdout: string; ms: number }): number => {
      if (r.exitCode !== 0) throw new Error(`CNI call failed: ${r.stdout}`);
      return r.ms;
    };
    for (let i = 0; i < opts.pods; i++) {
      const ours = async (): Promise<void> => void add.push(ms(await node.cni('ADD', pods[i], { runner })));
      const base = async (): Promise<void> =>
        void addBase.push(
          await timeIt(() => runner.run('sh', ['-c', baselineAdd(baseHost, baseNs[i]!, `b${i}`, baselineIp(i))])),
        );
      if (i % 2 === 0) await ours().then(base);
      else await base().then(ours);
    }
    const reconfPerAdd = round(((await reconfigures(runner, node.ovs)) - reconfBefore) / opts.pods, 2);
    const covPerAdd = topCounters(covBefore, await coverage(runner, node.ovs), opts.pods);
    const dpFlows = (
      await runner.run('ovs-appctl', ['-t', node.ovs.ctlSocketPath('ovs-vswitchd'), 'dpctl/dump-flows'])
    ).stdout
      .split('\n')
      .filter((l) => l.trim() !== '').length;
    for (let i = 0; i < opts.pods; i++) {
      const ours = async (): Promise<void> => void del.push(ms(await node.cni('DEL', pods[i], { runner })));
      const base = async (): Promise<void> =>
        void delBase.push(await timeIt(() => runner.run('sh', ['-c', `ip -n ${baseHost} link del b${i}`])));
      if (i % 2 === 0) await ours().then(base);
      else await base().then(ours);
    }
    const agentAdd = agentTimes(node.log(), 'CmdAdd', opts.pods);

    const stepP50 = stepFigures(node.log(), 'Pod network configured', ADD_STEPS, opts.pods);
    const delStepP50 = stepFigures(node.log(), 'Pod network removed', ['interfaceMs', 'ipamMs'], opts.pods);
    const a = stats(add);
    const ab = stats(addBase);
    emit({
      bench: 'cni',
      case: 'add',
      pods: opts.pods,
      plugin: node.pluginForm,
      ...a,
      // OVS's userspace datapath reconfigures per port in time that grows with the port count.
      first10_p50_ms: round(percentile(add.slice(0, 10), 50)),
      last10_p50_ms: round(percentile(add.slice(-10), 50)),
      agent_p50_ms: round(percentile(agentAdd, 50)),
      agent_steps: stepP50,
      ovs_reconfigures_per_add: reconfPerAdd,
      ovs_top_counters_per_add: covPerAdd,
      datapath_flows_after_adds: dpFlows,
      baseline: { what: 'ip: veth into the netns, address, up', ...ab },
      ratio: round(ab.p50_ms / a.p50_ms, 3),
      goal: 'ratio >= 0.333 (ADD p50 within 3x of the baseline)',
      goal_met: ab.p50_ms / a.p50_ms >= 1 / 3,
    });
    const d = stats(del);
    const db = stats(delBase);
    emit({
      bench: 'cni',
      case: 'del',
      pods: opts.pods,
      ...d,
      agent_p50_ms: round(percentile(agentTimes(node.log(), 'CmdDel', opts.pods), 50)),
      agent_steps: delStepP50,
      baseline: { what: 'ip: delete the veth', ...db },
      ratio: round(db.p50_ms / d.p50_ms, 3),
    });

    // A burst: N Pods added at once, as a kubelet starting many Pods does, then deleted at once;
    // the baseline likewise (its kernel work serializes on the kernel's locks too).
    if (opts.burst > 0) {
      const n = opts.burst;
      const burstPods = pods.slice(0, n).map((p, i) => ({ ...p, containerId: `burst${process.pid}c${i}` }));
      const burstAdd: number[] = [];
      const burstAddBase: number[] = [];
      const burstDel: number[] = [];
      const addWall = await timeIt(() =>
        Promise.all(burstPods.map(async (p) => burstAdd.push(ms(await node.cni('ADD', p, { runner }))))),
      );
      const baseWall = await timeIt(() =>
        Promise.all(
          burstPods.map(async (_p, i) =>
            burstAddBase.push(
              await timeIt(() => runner.run('sh', ['-c', baselineAdd(baseHost, baseNs[i]!, `b${i}`, baselineIp(i))])),
            ),
          ),
        ),
      );
      const delWall = await timeIt(() =>
        Promise.all(burstPods.map(async (p) => burstDel.push(ms(await node.cni('DEL', p, { runner }))))),
      );
      await Promise.all(burstPods.map((_p, i) => runner.run('ip', ['-n', baseHost, 'link', 'del', `b${i}`])));
      const agentBurst = agentTimes(node.log(), 'CmdAdd', n);
      const ba = stats(burstAdd);
      const bb = stats(burstAddBase);
      emit({
        bench: 'cni',
        case: 'add-burst',
        concurrency: n,
        ...ba,
        wall_ms: round(addWall),
        agent_p50_ms: round(percentile(agentBurst, 50)),
        agent_p99_ms: round(percentile(agentBurst, 99)),
        agent_steps: stepFigures(node.log(), 'Pod network configured', ADD_STEPS, n),
        del: { ...stats(burstDel), wall_ms: round(delWall) },
        baseline: { what: 'the add baseline, all at once', ...bb, wall_ms: round(baseWall) },
        ratio: round(bb.p50_ms / ba.p50_ms, 3),
        anchor: 'agent budget: CNI ADD <= 50 ms p50 / <= 200 ms p99 at 30 concurrent Pods (perf-anchors 2.3)',
      });
    }

    // Start-up: the installed plugin answering VERSION, bare Node, the plugin on Node (the bundled
    // script), and Node loading @grpc/grpc-js.
    const plugin = join(node.binDir, 'antrea');
    const root = join(import.meta.dirname, '..', '..');
    const bundle = compilePlugin(PLUGIN_ENTRY, join(node.dir, 'startup', PLUGIN_BUNDLE));
    const version = { env: { CNI_COMMAND: 'VERSION' }, replaceEnv: true };
    const startup: number[] = [];
    const bare: number[] = [];
    const onNode: number[] = [];
    const grpcjs: number[] = [];
    for (let i = 0; i < 30; i++) {
      startup.push(await timeIt(() => runner.run(plugin, [], version)));
      bare.push(await timeIt(() => runner.run(process.execPath, ['-e', '0'])));
      onNode.push(await timeIt(() => runner.run(process.execPath, [bundle], version)));
      grpcjs.push(await timeIt(() => runner.run(process.execPath, ['-e', "import('@grpc/grpc-js')"], { cwd: root })));
    }
    const s = stats(startup);
    const bareP50 = percentile(bare, 50);
    emit({
      bench: 'cni',
      case: 'plugin-startup',
      plugin: node.pluginForm,
      ...s,
      baseline: { what: 'node -e 0 (bare Node start)', ...stats(bare) },
      ratio: round(bareP50 / s.p50_ms, 3),
      // The ADD goal's budget (3x the add baseline), and how much of it the plugin's start and
      // starting Node alone take, exec'd the same way.
      add_goal_budget_ms: round(3 * ab.p50_ms),
      plugin_startup_share_of_add_budget: round(s.p50_ms / (3 * ab.p50_ms), 3),
      bare_node_share_of_add_budget: round(bareP50 / (3 * ab.p50_ms), 3),
      plugin_on_node: { what: 'the plugin on Node (bundled script), VERSION', ...stats(onNode) },
      grpcjs_load: { what: 'node importing @grpc/grpc-js, no call', ...stats(grpcjs) },
    });

    // OVS alone: the floor under the agent's port step, and how it grows with the port count.
    const bareRun = await bareOvs(cleanup, runner, opts.pods);
    const o = stats(bareRun.addPort);
    emit({
      bench: 'cni',
      case: 'ovs-add-port',
      what: 'bare OVS, no agent: insert a veth port on a netdev bridge and wait for its ofport (OVSDB client)',
      ports: opts.pods,
      ...o,
      first10_p50_ms: round(percentile(bareRun.addPort.slice(0, 10), 50)),
      last10_p50_ms: round(percentile(bareRun.addPort.slice(-10), 50)),
      reconfigures_per_port: bareRun.reconfiguresPerPort,
      ovs_top_counters_per_port: bareRun.counters,
      baseline: { what: 'ip: veth into the netns, address, up (the add case baseline)', ...ab },
      ratio: round(ab.p50_ms / o.p50_ms, 3),
    });
  } finally {
    await cleanup.run();
  }
}
