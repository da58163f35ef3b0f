/**
 * The lab demo (`antrea-lab demo`, the README's main command): brings up a lab (2 Nodes by default),
 * creates the x/y/z model (Namespaces x, y, z with Pods a, b, c), prints the TCP/80 connectivity
 * matrix, applies a sample NetworkPolicy, prints the matrix again next to what the policy asks for,
 * and leaves the lab running with short instructions (`once`: removes it instead). The matrices
 * print what the packets say: where the Nodes' network does not enforce the policy (yet), the demo
 * says so instead of pretending.
 *
 * Interrupting it (the signal aborts) before it finishes removes the lab.
 */
import { type Clock, formatDuration, systemClock } from '../common/util/clock.ts';
import type { CommandRunner, ProcessLauncher } from '../common/util/exec.ts';
import { labClient, labUp, LabPaths, probePods, runningLab } from './control.ts';
import type { KubeClient } from './kube-client.ts';
import { ensureModel, MODEL_KEYS } from './model.ts';
import {
  cell,
  isConnected,
  MATRIX_LEGEND,
  type Matrix,
  outcomeMark,
  probeMatrix,
  probeMatrixSettled,
  renderMatrix,
} from './probe.ts';
import { DEFAULT_DATA_DIR, type LabCni } from './state.ts';
import { teardownLab } from './teardown.ts';
import type { LabEncap } from './topology.ts';

export interface DemoOptions {
  readonly dataDir: string;
  readonly nodes: number;
  readonly encap: LabEncap;
  readonly cni: LabCni;
  readonly runner: CommandRunner;
  readonly launcher: ProcessLauncher;
  /** argv of `antrea-lab` itself (node + the CLI entry). */
  readonly cliCommand: readonly string[];
  /** One line for the user. */
  readonly say: (line: string) => void;
  /** Aborting stops the demo and removes the lab. */
  readonly signal: AbortSignal;
  /** Remove the lab at the end instead of leaving it running. */
  readonly once: boolean;
  readonly clock?: Clock;
  /** How the user runs `antrea-lab` (for the closing instructions), e.g. `node src/cmd/antrea-lab.ts`. */
  readonly labCommand: string;
  /** How long to wait for the policy to show in the matrix (default 10 s). */
  readonly policyWaitMs?: number;
}

export interface DemoResult {
  readonly before: Matrix;
  readonly after: Matrix;
  /** Pairs whose outcome after the policy differs from what the policy asks for. */
  readonly mismatches: readonly string[];
  /** The demo started the lab (rather than using one already running). */
  readonly startedLab: boolean;
}

export const SAMPLE_POLICY_NAME = 'allow-from-same-namespace';

/** The sample policy: Pods in Namespace x accept connections only from Pods in x. */
export const SAMPLE_POLICY = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: SAMPLE_POLICY_NAME, namespace: 'x' },
  spec: { podSelector: {}, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: {} }] }] },
} as const;

const SAMPLE_POLICY_TEXT = [
  'apiVersion: networking.k8s.io/v1',
  'kind: NetworkPolicy',
  `metadata: {name: ${SAMPLE_POLICY_NAME}, namespace: x}`,
  'spec:',
  '  podSelector: {}          # every Pod in x ...',
  '  policyTypes: [Ingress]',
  '  ingress:',
  '  - from:',
  '    - podSelector: {}      # ... accepts connections only from Pods in x',
];

const POLICY_REF = {
  apiVersion: 'networking.k8s.io/v1',
  resource: 'networkpolicies',
  namespace: 'x',
  name: SAMPLE_POLICY_NAME,
} as const;

/** Whether the sample policy lets `from` connect to `to` (keys `ns/name`). */
export function samplePolicyAllows(from: string, to: string): boolean {
  return !to.startsWith('x/') || from.startsWith('x/');
}

/**
 * What the matrix should be once the policy is enforced: the pairs connected before, minus those
 * the policy denies. Returns the pairs (`from → to: got …, want …`) where `after` differs.
 */
export function policyMismatches(before: Matrix, after: Matrix): string[] {
  const out: string[] = [];
  for (const from of after.pods) {
    for (const to of after.pods) {
      const was = cell(before, from, to);
      const want = was !== undefined && isConnected(was.outcome) && samplePolicyAllows(from, to);
      const now = cell(after, from, to);
      const got = now !== undefined && isConnected(now.outcome);
      if (got !== want) {
        out.push(
          `${from} → ${to}: ${got ? 'connected' : (now?.outcome ?? 'not probed')}, the policy asks for ${want ? 'connected' : 'blocked'}`,
        );
      }
    }
  }
  return out;
}

function printMatrix(say: (l: string) => void, m: Matrix, mark?: (from: string, to: string) => boolean): void {
  const lines = renderMatrix(m, {
    mark: (from, to, r) => {
      const c = outcomeMark(r);
      return mark?.(from, to) === true ? `${c}!` : c;
    },
  });
  for (const l of lines) say(`    ${l}`);
}

function countConnected(m: Matrix): number {
  let n = 0;
  for (const from of m.pods) for (const to of m.pods) if (isConnected(cell(m, from, to)?.outcome ?? 'error')) n++;
  return n;
}

async function probeModel(paths: LabPaths, client: KubeClient): Promise<Matrix> {
  const pods = await probePods(paths, client, ['x', 'y', 'z']);
  return probeMatrix(pods, 80, 'TCP', { timeoutMs: 1000 });
}

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const clock = o.clock ?? systemClock;
  const paths = new LabPaths(o.dataDir);
  const say = o.say;
  const check = (): void => {
    if (o.signal.aborted) throw o.signal.reason instanceof Error ? o.signal.reason : new Error('interrupted');
  };
  let startedLab = false;
  let finished = false;
  let xa = '<IP of x/a>';
  const t0 = clock.monotonic();
  try {
    say(`[1/5] bringing up a lab with ${o.nodes} Node(s) in ${o.dataDir}`);
    if (runningLab(paths) !== undefined) {
      say(`  a lab is already running there: using it (antrea-lab down --data-dir ${o.dataDir} removes it)`);
    } else {
      await labUp({
        dataDir: o.dataDir,
        nodes: o.nodes,
        encap: o.encap,
        cni: o.cni,
        runner: o.runner,
        launcher: o.launcher,
        cliCommand: o.cliCommand,
        say: (l) => say(`  ${l}`),
        clock,
        signal: o.signal,
      });
      startedLab = true;
    }
    check();
    const client = labClient(paths);
    try {
      say('[2/5] creating Namespaces x, y, z with Pods a, b, c');
      await client.delete(POLICY_REF);
      const t1 = clock.monotonic();
      const model = await ensureModel(client, 'k8s', { say: (l) => say(`  ${l}`), clock });
      xa = model.find((p) => p.key === 'x/a')?.ip ?? xa;
      say(`  9 Pods Running in ${formatDuration(clock.monotonic() - t1)}:`);
      for (const p of model) say(`    ${p.key.padEnd(5)} ${p.node.padEnd(8)} ${p.ip}`);
      check();

      say('[3/5] probing TCP port 80 from every Pod to every Pod (81 pairs, in parallel)');
      // Pairs that missed are probed again: the first packets of fresh Pods take the userspace
      // datapath's slow path (upstream's probes retry too).
      const before = await probeMatrixSettled(await probePods(paths, client, ['x', 'y', 'z']), 80, 'TCP', {
        timeoutMs: 1000,
      });
      printMatrix(say, before);
      say(`  ${countConnected(before)} of 81 pairs connected   (${MATRIX_LEGEND})`);
      const crossMissing = MODEL_KEYS.flatMap((f) =>
        MODEL_KEYS.filter((t) => model.find((p) => p.key === f)?.node !== model.find((p) => p.key === t)?.node).map(
          (t) => cell(before, f, t),
        ),
      ).filter((r) => r === undefined || !isConnected(r.outcome)).length;
      if (crossMissing > 0) {
        say(`  (${crossMissing} pairs across Nodes do not connect)`);
      }
      check();

      say(`[4/5] applying NetworkPolicy x/${SAMPLE_POLICY_NAME}:`);
      for (const l of SAMPLE_POLICY_TEXT) say(`    ${l}`);
      await client.createOrReplace(POLICY_REF, SAMPLE_POLICY);

      say('[5/5] probing again (the policy should block y/* and z/* → x/*)');
      const deadline = clock.monotonic() + (o.policyWaitMs ?? 10_000);
      let after = await probeModel(paths, client);
      let mismatches = policyMismatches(before, after);
      while (mismatches.length > 0 && clock.monotonic() < deadline) {
        check();
        await clock.sleep(1000, o.signal);
        after = await probeModel(paths, client);
        mismatches = policyMismatches(before, after);
      }
      const wrong = new Set(mismatches.map((m) => m.split(':')[0]));
      printMatrix(say, after, (f, t) => wrong.has(`${f} → ${t}`));
      say(`  ${countConnected(after)} of 81 pairs connected`);
      if (mismatches.length === 0) {
        say('  the matrix is what the policy asks for: Pods in x accept only Pods in x');
      } else {
        say(
          `  ${mismatches.length} pair(s) (marked !) are not what the policy asks for: the Nodes' network does not enforce NetworkPolicy yet`,
        );
        for (const m of mismatches.slice(0, 3)) say(`    ${m}`);
        if (mismatches.length > 3) say(`    … and ${mismatches.length - 3} more`);
      }
      finished = true;
      say(`demo done in ${formatDuration(clock.monotonic() - t0)}`);
      return { before, after, mismatches, startedLab };
    } finally {
      client.close();
    }
  } finally {
    if ((!finished && startedLab) || o.once) {
      if (!finished) say('stopping: removing the lab');
      const report = await teardownLab(paths, { runner: o.runner, clock });
      say(
        report.problems.length === 0
          ? `lab removed (${o.dataDir})`
          : `lab removed with problems:\n${report.problems.map((p) => `  ${p}`).join('\n')}`,
      );
    } else if (finished) {
      const kc = paths.adminKubeconfig;
      const dd = o.dataDir === DEFAULT_DATA_DIR ? '' : ` --data-dir ${o.dataDir}`;
      const lab = o.labCommand;
      say('');
      say('The lab keeps running. Try:');
      const tips: [string, string][] = [
        [`export KUBECONFIG=${kc}`, 'for kubectl'],
        ['kubectl get pods -A -o wide', ''],
        [`${lab} probe${dd}`, 'the matrix again'],
        [`${lab} exec${dd} y/a -- ping -c1 ${xa}`, 'a command inside Pod y/a'],
        [`kubectl delete networkpolicy -n x ${SAMPLE_POLICY_NAME}`, ''],
        [`${lab} status${dd}`, 'Nodes, Pods, processes'],
        [`${lab} down${dd}`, 'remove everything'],
      ];
      const w = Math.max(...tips.map(([c]) => c.length));
      for (const [c, why] of tips) say(`  ${why === '' ? c : `${c.padEnd(w)}   # ${why}`}`);
    }
  }
}
