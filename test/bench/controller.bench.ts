/**
 * `npm run bench -- controller [SCENARIO...]`: NetworkPolicy computation at the scale of Antrea's
 * controller perf test (scenarios in controller-scenarios.ts). Each scenario runs in a fresh Node
 * process (so heap and RSS figures are its own):
 *
 * - the objects are delivered to the controller's handlers the way informers deliver their initial
 *   lists (pages of 500, Namespaces, NetworkPolicies and Pods interleaved, yielding between pages);
 *   the input objects stay referenced all along, as an informer cache would keep them;
 * - `seconds` runs from the first event to quiescence: everything computed and the stores published;
 * - `peakHeapMB` is the largest V8 heapUsed sampled every 10 ms and at every yield (Antrea reports the
 *   largest Go heap Alloc sampled every 500 ms); `peakRssMB` is the process's maximum RSS;
 * - then 200 Pod label changes (a Pod takes the labels of another Pod of its Namespace, or leaves its
 *   groups when all have the same labels, and back), each timed from the Pod event to all events
 *   emitted to store subscribers: `incrementalP50Ms` / `incrementalP99Ms`.
 *
 * The baseline is Antrea's published figure for the scenario (it cannot run here); `ratio` is the
 * smaller of the time and memory ratios (>1: we are better).
 */
import { join } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { createCommandRunner } from '../../src/common/util/exec.ts';
import type { Pod } from '../../src/common/k8s/objects.ts';
import { NetworkPolicyController } from '../../src/controller/networkpolicy/controller.ts';
import { SCENARIOS, prng } from './controller-scenarios.ts';
import { emit, percentile, round } from './lib.ts';

const MB = 1024 * 1024;

export async function run(args: string[]): Promise<void> {
  if (args[0] === '--child') {
    await runScenario(args[1] ?? '', Number(args[2] ?? '1'));
    return;
  }
  const wanted = args.filter((a) => !a.startsWith('--'));
  for (const name of wanted) {
    if (!(name in SCENARIOS)) throw new Error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  }
  const runner = createCommandRunner();
  for (const name of Object.keys(SCENARIOS)) {
    if (wanted.length > 0 && !wanted.includes(name)) continue;
    const r = await runner.run(
      process.execPath,
      ['--max-old-space-size=4096', join(import.meta.dirname, 'run.ts'), 'controller', '--child', name, '1'],
      { timeoutMs: 900_000 },
    );
    process.stdout.write(r.stdout);
    if (r.stderr.trim() !== '') process.stderr.write(r.stderr);
  }
}

async function runScenario(name: string, seed: number): Promise<void> {
  const make = SCENARIOS[name];
  if (make === undefined) throw new Error(`unknown scenario ${name}`);
  const sc = make(seed);
  const controller = new NetworkPolicyController();
  let peakHeap = 0;
  const sample = (): void => {
    const used = getHeapStatistics().used_heap_size;
    if (used > peakHeap) peakHeap = used;
  };
  const sampler = setInterval(sample, 10);
  const yieldNow = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

  // ---- initial computation
  const t0 = performance.now();
  const pages = Math.max(
    Math.ceil(sc.namespaces.length / 500),
    Math.ceil(sc.policies.length / 500),
    Math.ceil(sc.pods.length / 500),
  );
  for (let p = 0; p < pages; p++) {
    for (const ns of sc.namespaces.slice(p * 500, p * 500 + 500)) controller.handleNamespace('ADDED', ns);
    for (const np of sc.policies.slice(p * 500, p * 500 + 500)) controller.handleNetworkPolicy('ADDED', np);
    for (const pod of sc.pods.slice(p * 500, p * 500 + 500)) controller.handlePod('ADDED', pod);
    sample();
    await yieldNow();
  }
  while (!controller.flush(performance.now() + 20)) {
    sample();
    await yieldNow();
  }
  controller.publish();
  const seconds = (performance.now() - t0) / 1000;
  sample();
  const stats = controller.stats();

  // ---- incremental Pod label changes
  let events = 0;
  controller.networkPolicies.subscribe(() => events++);
  controller.addressGroups.subscribe(() => events++);
  controller.appliedToGroups.subscribe(() => events++);
  const byNamespace = new Map<string, Pod[]>();
  for (const pod of sc.pods) {
    const ns = pod.metadata?.namespace ?? '';
    const list = byNamespace.get(ns);
    if (list === undefined) byNamespace.set(ns, [pod]);
    else list.push(pod);
  }
  const rnd = prng(seed + 1);
  const times: number[] = [];
  for (let i = 0; i < 100; i++) {
    const pod = sc.pods[Math.floor(rnd() * sc.pods.length)];
    if (pod === undefined) break;
    const siblings = byNamespace.get(pod.metadata?.namespace ?? '') ?? [];
    const labelsKey = JSON.stringify(pod.metadata?.labels);
    let other: Pod | undefined;
    for (let tries = 0; tries < 20 && other === undefined; tries++) {
      const cand = siblings[Math.floor(rnd() * siblings.length)];
      if (cand !== undefined && JSON.stringify(cand.metadata?.labels) !== labelsKey) other = cand;
    }
    const newLabels = other?.metadata?.labels ?? { 'app-1': 'relabelled' };
    const changed: Pod = { ...pod, metadata: { ...pod.metadata, labels: newLabels } };
    for (const next of [changed, pod]) {
      const before = events;
      const s = performance.now();
      controller.handlePod('MODIFIED', next);
      controller.flush();
      times.push(performance.now() - s);
      if (events === before) throw new Error('a label change produced no event');
    }
    if (i % 10 === 0) await yieldNow();
  }
  clearInterval(sampler);
  sample();

  const peakHeapMB = peakHeap / MB;
  const peakRssMB = process.resourceUsage().maxRSS / 1024;
  const timeRatio = sc.antrea.seconds / seconds;
  const memoryRatio = sc.antrea.memoryMB === null ? null : sc.antrea.memoryMB / peakHeapMB;
  emit({
    bench: 'controller',
    case: sc.name,
    scenario: sc.name,
    namespaces: sc.namespaces.length,
    pods: sc.pods.length,
    policies: sc.policies.length,
    seconds: round(seconds, 3),
    peakHeapMB: round(peakHeapMB, 1),
    peakRssMB: round(peakRssMB, 1),
    incrementalP50Ms: round(percentile(times, 50), 3),
    incrementalP99Ms: round(percentile(times, 99), 3),
    incrementalChanges: times.length,
    incrementalEvents: events,
    addressGroups: stats.addressGroups,
    appliedToGroups: stats.appliedToGroups,
    internalPolicies: stats.networkPolicies,
    baseline: { system: 'antrea', seconds: sc.antrea.seconds, memoryMB: sc.antrea.memoryMB, source: sc.antrea.source },
    timeRatio: round(timeRatio, 2),
    memoryRatio: memoryRatio === null ? null : round(memoryRatio, 2),
    ratio: round(memoryRatio === null ? timeRatio : Math.min(timeRatio, memoryRatio), 2),
  });
}
