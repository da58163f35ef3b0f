/**
 * NetworkPolicy enforcement through faults on a 3-Node lab on antrea-agent (issue #9, item 4): the
 * x/y/z model, a policy that lets x/a accept TCP/80 only from y/b, and a continuous prober (a fresh
 * TCP connection per pair every 150 ms, through the Pods' own sockets) on the must-deny pairs (every
 * other Pod → x/a) and on must-allow pairs (y/b → x/a, and pairs no policy touches), many across
 * Nodes. Faults, one after another, through the lab's component requests (the supervisor carries
 * them out; one goes through the `antrea-lab component` CLI):
 *  (a) SIGKILL of the antrea-agent on x/a's Node, a while without it, then its restart;
 *  (b) antrea-controller stopped, a while without it (another Node's agent is killed and restarted
 *      meanwhile: it starts from its policy snapshot), then started;
 *  (c) ovs-vswitchd restarted on x/a's Node (the agent replays its flows; br-int is fail_mode=secure).
 * Asserted: no must-deny probe ever connects (during each fault and its recovery: the whole run), the
 * must-deny pairs were probed during every fault, and every must-allow pair answers again within
 * 10 s after each fault ends (the recovery times are printed).
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type ComponentResult, describeResult } from '../../src/lab/components.ts';
import { labComponent, probePods } from '../../src/lab/control.ts';
import { ensureModel } from '../../src/lab/model.ts';
import {
  ContinuousProber,
  firstVerdict,
  isConnected,
  pairKey,
  type ProbePair,
  type ProbePod,
  probeMatrix,
} from '../../src/lab/probe.ts';
import { integrationSkipReason } from '../helpers/env.ts';
import { eventually, labCli, ROOT, startLab } from '../helpers/lab.ts';

const agentMissing = !existsSync(join(ROOT, 'src', 'cmd', 'antrea-agent.ts'))
  ? 'no src/cmd/antrea-agent.ts in this tree yet'
  : undefined;
const skip = integrationSkipReason() ?? agentMissing;
if (skip !== undefined) t.plan(0, skip);

const RECOVERY_LIMIT_MS = 10_000;
const POLICY_REF = { apiVersion: 'networking.k8s.io/v1', resource: 'networkpolicies', namespace: 'x' } as const;
/** x/a accepts TCP/80 only from y/b. */
const POLICY = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'a-only-from-yb', namespace: 'x' },
  spec: {
    podSelector: { matchLabels: { pod: 'a' } },
    policyTypes: ['Ingress'],
    ingress: [
      {
        from: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'b' } } }],
        ports: [{ protocol: 'TCP', port: 80 }],
      },
    ],
  },
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Fault {
  readonly name: string;
  readonly start: number;
  readonly end: number;
}

t.test(
  'no denied connection and allowed pairs back within 10 s through agent, controller and ovs-vswitchd faults',
  async (t) => {
    const lab = await startLab(t, 'faults', ['--nodes', '3', '--cni', 'antrea']);
    // Bad component requests are refused, naming what is wrong, and change nothing.
    const cli = (...args: string[]): ReturnType<typeof labCli> =>
      labCli(['component', ...args, '--data-dir', lab.dataDir]);
    const badAction = await cli('pause', 'antrea-agent', '--node', 'node-1');
    t.equal(badAction.exitCode, 2, 'an unknown action is a usage error');
    t.match(badAction.stderr, /action: must be one of kill, stop, start, restart, got "pause"/);
    const noNode = await cli('kill', 'ovs-vswitchd');
    t.equal(noNode.exitCode, 2, 'a per-Node component needs --node');
    t.match(noNode.stderr, /node: ovs-vswitchd runs per Node/);
    const absent = await cli('kill', 'antrea-agent', '--node', 'node-9');
    t.equal(absent.exitCode, 1, 'an absent Node is an error');
    t.match(absent.stderr, /no Node node-9 in this lab \(node-1, node-2, node-3\)/);
    const noLab = await labCli(['component', 'start', 'antrea-controller', '--data-dir', `${lab.dataDir}-none`]);
    t.equal(noLab.exitCode, 1, 'no lab: an error');
    t.match(noLab.stderr, /no lab is running in/);

    const model = await ensureModel(lab.client, 'k8s', { timeoutMs: 180_000 });
    const nodeOf = new Map(model.map((p) => [p.key, p.node]));
    const pods = new Map((await probePods(lab.paths, lab.client, ['x', 'y', 'z'])).map((p) => [p.key, p]));
    const pod = (key: string): ProbePod => {
      const p = pods.get(key);
      if (p === undefined) throw new Error(`Pod ${key} is not running`);
      return p;
    };
    const pair = (from: string, to: string): ProbePair => ({ from: pod(from), to: pod(to) });
    const across = (p: ProbePair): boolean => nodeOf.get(p.from.key) !== nodeOf.get(p.to.key);
    const describe = (p: ProbePair): string => `${pairKey(p)}${across(p) ? ' (across Nodes)' : ''}`;

    const deny = model
      .map((p) => p.key)
      .filter((k) => k !== 'x/a' && k !== 'y/b')
      .map((k) => pair(k, 'x/a'));
    // Sources of allowed pairs never probe a denied pair (no source port of theirs ever met a drop).
    const allow = [pair('y/b', 'x/a'), pair('x/a', 'y/c'), pair('x/a', 'z/a'), pair('y/b', 'z/b'), pair('y/b', 'x/c')];
    t.comment(`Nodes: ${model.map((p) => `${p.key}@${p.node}`).join(' ')}`);
    t.ok(
      deny.filter(across).length >= 2,
      `must-deny pairs across Nodes: ${deny.filter(across).map(pairKey).join(', ')}`,
    );
    t.ok(
      allow.filter(across).length >= 2,
      `must-allow pairs across Nodes: ${allow.filter(across).map(pairKey).join(', ')}`,
    );

    await lab.client.create(POLICY_REF, POLICY);
    const ok = (m: Awaited<ReturnType<typeof probeMatrix>>, p: ProbePair): boolean =>
      isConnected(m.cells.get(p.from.key)?.get(p.to.key)?.outcome ?? 'error');
    const wanted = new Set([...deny, ...allow].map(pairKey));
    await eventually('the policy to be enforced', async () => {
      const m = await probeMatrix([...pods.values()], 80, 'TCP', {
        timeoutMs: 500,
        pairs: (f, to) => wanted.has(`${f}>${to}`),
      });
      return deny.every((p) => !ok(m, p)) && allow.every((p) => ok(m, p));
    });
    t.pass('the policy is enforced: only y/b (and no other Pod) reaches x/a');

    const prober = new ContinuousProber({ pairs: [...deny, ...allow], port: 80, protocol: 'TCP', intervalMs: 150 });
    const stopProber = new AbortController();
    const probing = prober.run(stopProber.signal);
    t.teardown(async () => {
      stopProber.abort();
      await probing;
    });
    const faults: Fault[] = [];
    /**
     * Runs a fault, then keeps probing through its recovery window (10 s after it ended, or longer
     * until every allowed pair answered, at most 15 s), so the windows of the faults do not overlap.
     */
    const fault = async (name: string, inject: () => Promise<void>): Promise<void> => {
      const start = performance.now();
      await inject();
      const end = performance.now();
      faults.push({ name, start, end });
      t.comment(`${name}: ${Math.round(end - start)} ms`);
      await eventually(
        `every allowed pair to answer after ${name}`,
        () => allow.every((p) => firstVerdict(prober.samples(pairKey(p)), end, true) !== undefined),
        RECOVERY_LIMIT_MS + 5_000,
      ).catch(() => undefined);
      await sleep(Math.max(0, end + RECOVERY_LIMIT_MS - performance.now()));
    };
    const request = async (
      action: 'kill' | 'start' | 'restart',
      component: 'antrea-agent' | 'ovs-vswitchd',
      node: string,
    ): Promise<ComponentResult> => {
      const r = await labComponent(lab.paths, { action, component, node });
      t.comment(describeResult(r));
      return r;
    };
    await sleep(2_000);

    const isolatedNode = nodeOf.get('x/a') ?? '';
    const otherNode = [...new Set(nodeOf.values())].find((n) => n !== isolatedNode) ?? '';
    await fault(`(a) antrea-agent on ${isolatedNode} SIGKILLed, 4 s down, started`, async () => {
      const killed = await request('kill', 'antrea-agent', isolatedNode);
      t.equal(killed.pid, undefined, 'the agent is gone');
      await sleep(4_000);
      const started = await request('start', 'antrea-agent', isolatedNode);
      t.ok(started.pid !== undefined, `the agent runs again (pid ${started.pid ?? '?'})`);
    });

    await fault(
      `(b) antrea-controller stopped 8 s (agent on ${otherNode} killed and restarted meanwhile), started`,
      async () => {
        const stop = await labCli(['component', 'stop', 'antrea-controller', '--data-dir', lab.dataDir]);
        t.equal(stop.exitCode, 0, 'antrea-lab component stop antrea-controller', { output: stop.stdout + stop.stderr });
        t.match(stop.stdout, /antrea-controller: stop done in .*, not running/);
        t.comment(stop.stdout.trim());
        await sleep(2_000);
        await request('kill', 'antrea-agent', otherNode);
        await request('start', 'antrea-agent', otherNode);
        await sleep(4_000);
        const start = await labCli(['component', 'start', 'antrea-controller', '--data-dir', lab.dataDir]);
        t.equal(start.exitCode, 0, 'antrea-lab component start antrea-controller', {
          output: start.stdout + start.stderr,
        });
        t.match(start.stdout, /antrea-controller: start done in .*, pid \d+/);
        t.comment(start.stdout.trim());
      },
    );

    await fault(`(c) ovs-vswitchd on ${isolatedNode} restarted`, async () => {
      const r = await request('restart', 'ovs-vswitchd', isolatedNode);
      t.ok(r.pid !== undefined, `ovs-vswitchd runs again (pid ${r.pid ?? '?'})`);
    });

    stopProber.abort();
    await probing;

    // No must-deny probe ever connected: through every fault and its recovery.
    for (const p of deny) {
      const s = prober.samples(pairKey(p));
      const leaks = s.filter((x) => isConnected(x.outcome));
      t.same(
        leaks.map((x) => Math.round(x.at)),
        [],
        `${describe(p)}: none of ${s.length} probes connected`,
      );
      for (const f of faults) {
        const during = s.filter((x) => x.at >= f.start && x.at <= f.end + RECOVERY_LIMIT_MS).length;
        t.ok(during >= 5, `${pairKey(p)} was probed during ${f.name.slice(0, 3)} and its recovery (${during} probes)`);
      }
    }
    // Every must-allow pair answers again within 10 s after each fault ends.
    const table: string[] = [];
    for (const f of faults) {
      for (const p of allow) {
        const s = prober.samples(pairKey(p));
        const first = firstVerdict(s, f.end, true);
        const ms = first === undefined ? undefined : Math.max(0, Math.round(first.end - f.end));
        const failed = s.filter((x) => x.at >= f.start && x.at <= f.end + RECOVERY_LIMIT_MS && !isConnected(x.outcome));
        table.push(
          `${f.name.slice(0, 3)} ${describe(p).padEnd(30)} recovered ${ms === undefined ? 'never' : `${ms} ms`} after the fault ended; ${failed.length} failed probe(s) during it`,
        );
        t.ok(
          ms !== undefined && ms <= RECOVERY_LIMIT_MS,
          `${f.name.slice(0, 3)} ${describe(p)} answers within 10 s (${ms ?? 'never'} ms)`,
        );
      }
    }
    t.comment(`recovery of the allowed pairs\n${table.join('\n')}`);
  },
);
