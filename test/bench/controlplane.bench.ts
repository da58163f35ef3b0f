/**
 * `npm run bench -- controlplane [--agents N]`: the controller's fan-out to 1,000 simulated agents
 * over real HTTPS (the controlplane server with its TLS, bearer-token authentication through the
 * caching authenticator and authorizer, Node binding, per-Node filtering and shared encodings).
 *
 * Runs in a child process started with --expose-gc. The controller runs on the main thread; the
 * agents run in a worker thread (its own V8 heap), each with three watches (networkpolicies,
 * addressgroups, appliedtogroups) of its Node: half in protobuf, half in JSON, decoding every frame.
 * The cluster: N Nodes, 10 Pods per Node spread over 100 Namespaces, 100 background policies, and a
 * Namespace `probe` with one Pod per Node. Then 20 policies selecting every probe Pod are created
 * one after another; each is timed from the controller receiving it to the last agent decoding its
 * NetworkPolicy ADDED event.
 *
 * Cases:
 * - `fanout-latency`: p50/p99 of that time (baseline: Cilium's published "all agents saw the new
 *   policy revision within ~2 s" at 1,000 Nodes, perf-anchors R4; it cannot run here);
 * - `bytes-per-agent`: bytes an agent received (initial sets + the 20 policies), protobuf vs JSON
 *   (the JSON agents are the baseline, measured in the same run; ratio = JSON / protobuf);
 * - `memory-per-agent`: growth of the controller's heap + external memory (after GC) from no agent
 *   to N connected agents, per agent (baseline: Antrea's 1.3 GB → 1.5 GB at 1k agents, C10, i.e.
 *   about 200 KB per agent; at a larger scale than here).
 */
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { ControlplaneEncoder, RESOURCE_NAMES, WatchDecoder } from '../../src/common/apis/controlplane/codec.ts';
import { openRequest } from '../../src/common/agent/controlplane/client.ts';
import type { Pod } from '../../src/common/k8s/objects.ts';
import { createCommandRunner } from '../../src/common/util/exec.ts';
import { MetricsRegistry } from '../../src/common/util/metrics.ts';
import { createServingPki } from '../../src/common/util/pki.ts';
import {
  DelegatingAuthorizer,
  NODE_NAME_EXTRA,
  NodeAccessPolicy,
  TokenAuthenticator,
} from '../../src/controller/apiserver/auth.ts';
import { ControlplaneServer } from '../../src/controller/apiserver/server.ts';
import { WatchHub } from '../../src/controller/apiserver/watch.ts';
import { StaticCertificateProvider } from '../../src/controller/certificate.ts';
import { NetworkPolicyController } from '../../src/controller/networkpolicy/controller.ts';
import { StatusAggregator } from '../../src/controller/status/aggregator.ts';
import { emit, percentile, round } from './lib.ts';

const AGENT = 'system:serviceaccount:kube-system:antrea-agent';
const POLICIES = 20;

interface AgentSpec {
  readonly url: string;
  readonly ca: string;
  readonly nodes: number;
}

type FromWorker =
  | { type: 'synced'; count: number }
  | { type: 'arrived'; policy: string; at: number; count: number }
  | { type: 'bytes'; protobuf: number[]; json: number[] }
  | { type: 'error'; message: string };

export async function run(args: string[]): Promise<void> {
  if (args[0] === '--child') {
    await controllerSide(Number(args[1] ?? '1000'));
    return;
  }
  const i = args.indexOf('--agents');
  const n = i >= 0 ? Number(args[i + 1]) : 1000;
  const r = await createCommandRunner().run(
    process.execPath,
    [
      '--expose-gc',
      '--max-old-space-size=4096',
      join(import.meta.dirname, 'run.ts'),
      'controlplane',
      '--child',
      String(n),
    ],
    { timeoutMs: 900_000 },
  );
  process.stdout.write(r.stdout);
  if (r.stderr.trim() !== '') process.stderr.write(r.stderr);
}

function podOf(ns: string, name: string, labels: Record<string, string>, node: string, ip: string): Pod {
  return {
    metadata: { namespace: ns, name, uid: `uid-${ns}-${name}`, labels },
    spec: { nodeName: node },
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
  };
}

function memory(): number {
  (globalThis as { gc?: () => void }).gc?.();
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

async function controllerSide(nodes: number): Promise<void> {
  const controller = new NetworkPolicyController();
  const encoder = new ControlplaneEncoder();
  const hub = new WatchHub(controller, encoder);
  const status = new StatusAggregator(controller);
  const pki = createServingPki({ now: Date.now(), dnsNames: ['localhost'], ips: ['127.0.0.1'] });
  const server = new ControlplaneServer({
    controller,
    hub,
    encoder,
    authenticator: new TokenAuthenticator({
      reviewToken: (token) => {
        const m = /^agent-(n\d+)$/.exec(token);
        return Promise.resolve(
          m === null
            ? { authenticated: false, error: 'unknown token' }
            : {
                authenticated: true,
                user: {
                  username: AGENT,
                  groups: ['system:serviceaccounts'],
                  extra: { [NODE_NAME_EXTRA]: [m[1] ?? ''] },
                },
              },
        );
      },
    }),
    authorizer: new DelegatingAuthorizer({ reviewAccess: () => Promise.resolve({ allowed: true }) }),
    nodePolicy: new NodeAccessPolicy({ agentUsers: [AGENT] }),
    status,
    metrics: new MetricsRegistry(),
    certificate: new StaticCertificateProvider({
      certPem: pki.server.certPem,
      keyPem: pki.server.keyPem,
      caBundlePem: pki.ca.certPem,
    }),
    host: '127.0.0.1',
    port: 0,
    maxBufferedEvents: 100_000,
  });
  const addr = await server.start();

  // The cluster.
  for (let k = 0; k < 100; k++) {
    controller.handleNamespace('ADDED', { metadata: { name: `ns${k}`, labels: { team: `t${k % 10}` } } });
  }
  controller.handleNamespace('ADDED', { metadata: { name: 'probe', labels: {} } });
  for (let i = 0; i < nodes; i++) {
    const node = `n${i}`;
    for (let j = 0; j < 10; j++) {
      const ns = `ns${(i * 10 + j) % 100}`;
      const ip = `10.${(i >> 8) & 255}.${i & 255}.${j + 1}`;
      controller.handlePod('ADDED', podOf(ns, `p${i}-${j}`, { app: `a${j % 5}`, role: `r${j % 2}` }, node, ip));
    }
    controller.handlePod(
      'ADDED',
      podOf('probe', `probe-${i}`, { app: 'probe' }, node, `10.${(i >> 8) & 255}.${i & 255}.100`),
    );
  }
  for (let k = 0; k < 100; k++) {
    controller.handleNetworkPolicy('ADDED', {
      metadata: { namespace: `ns${k}`, name: `bg${k}`, uid: `uid-bg-${k}`, generation: 1 },
      spec: {
        podSelector: { matchLabels: { app: `a${k % 5}` } },
        policyTypes: ['Ingress'],
        ingress: [
          {
            from: [
              { podSelector: { matchLabels: { role: 'r0' } } },
              { namespaceSelector: { matchLabels: { team: `t${k % 10}` } } },
            ],
            ports: [{ protocol: 'TCP', port: 8080 }],
          },
        ],
      },
    });
  }
  controller.flush();
  controller.publish();
  const before = memory();

  const worker = new Worker(new URL(import.meta.url), {
    workerData: { url: `https://127.0.0.1:${addr.port}`, ca: pki.ca.certPem, nodes } satisfies AgentSpec,
  });
  const waiters: ((m: FromWorker) => boolean)[] = [];
  let failure: Error | undefined;
  worker.on('message', (m: FromWorker) => {
    if (m.type === 'error') failure = new Error(m.message);
    for (let k = waiters.length - 1; k >= 0; k--) if (waiters[k]?.(m) === true) waiters.splice(k, 1);
  });
  worker.on('error', (err: Error) => {
    failure = err;
  });
  const next = <T extends FromWorker>(pred: (m: FromWorker) => m is T, ms: number): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(failure ?? new Error('timed out waiting for the agents')), ms);
      waiters.push((m) => {
        if (!pred(m)) return false;
        clearTimeout(timer);
        resolve(m);
        return true;
      });
    });

  const t0 = performance.now();
  await next((m): m is Extract<FromWorker, { type: 'synced' }> => m.type === 'synced', 600_000);
  const connectSeconds = (performance.now() - t0) / 1000;
  const after = memory();

  const latencies: number[] = [];
  for (let k = 0; k < POLICIES; k++) {
    const name = `uid-probe-${k}`;
    const arrived = next(
      (m): m is Extract<FromWorker, { type: 'arrived' }> => m.type === 'arrived' && m.policy === name,
      120_000,
    );
    const start = performance.timeOrigin + performance.now();
    controller.handleNetworkPolicy('ADDED', {
      metadata: { namespace: 'probe', name: `probe-${k}`, uid: name, generation: 1 },
      spec: {
        podSelector: { matchLabels: { app: 'probe' } },
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: `t${k % 10}` } } }] }],
      },
    });
    controller.flush();
    const m = await arrived;
    if (m.count !== nodes) throw new Error(`${name} reached ${m.count} agents, not ${nodes}`);
    latencies.push(m.at - start);
  }
  worker.postMessage('bytes');
  const bytes = await next((m): m is Extract<FromWorker, { type: 'bytes' }> => m.type === 'bytes', 60_000);
  const avg = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const pb = avg(bytes.protobuf);
  const js = avg(bytes.json);
  const p50 = percentile(latencies, 50);
  const p99 = percentile(latencies, 99);
  emit({
    bench: 'controlplane',
    case: 'fanout-latency',
    agents: nodes,
    watches: nodes * 3,
    policies: POLICIES,
    connectAndSyncSeconds: round(connectSeconds),
    createToLastAgentP50Ms: round(p50),
    createToLastAgentP99Ms: round(p99),
    baseline: {
      source: 'Cilium 1,000 Nodes: all agents saw a new policy revision within ~2 s (perf-anchors R4)',
      allAgentsMs: 2000,
    },
    ratio: round(2000 / p99),
  });
  emit({
    bench: 'controlplane',
    case: 'bytes-per-agent',
    agentsPerEncoding: { protobuf: bytes.protobuf.length, json: bytes.json.length },
    protobufBytesPerAgent: Math.round(pb),
    baseline: { encoding: 'json', jsonBytesPerAgent: Math.round(js) },
    ratio: round(js / pb),
  });
  const perAgentKB = (after - before) / nodes / 1024;
  emit({
    bench: 'controlplane',
    case: 'memory-per-agent',
    agents: nodes,
    controllerHeapAndExternalBeforeMB: round(before / 1024 / 1024),
    controllerHeapAndExternalAfterMB: round(after / 1024 / 1024),
    perAgentKB: round(perAgentKB),
    baseline: { source: 'Antrea 1.3 GB -> 1.5 GB with 1k agents at 75k NPs (perf-anchors C10)', perAgentKB: 200 },
    ratio: round(200 / perAgentKB),
  });
  await worker.terminate();
  hub.stop();
  status.stop();
  await server.stop();
}

/** The agents (worker thread). */
async function agentSide(spec: AgentSpec): Promise<void> {
  const port = parentPort;
  if (port === null) return;
  const bytes: number[] = new Array<number>(spec.nodes).fill(0);
  const seen = new Map<string, number>();
  let synced = 0;
  const connect = async (i: number): Promise<void> => {
    const encoding = i % 2 === 0 ? 'protobuf' : 'json';
    const endpoint = { url: spec.url, ca: () => spec.ca, token: () => `agent-n${i}`, serverName: 'localhost' };
    await Promise.all(
      RESOURCE_NAMES.map(async (resource) => {
        const res = await openRequest(endpoint, {
          path: `/apis/controlplane.antrea.io/v1beta2/${resource}?watch=true&fieldSelector=nodeName%3Dn${i}`,
          headers: { Accept: encoding === 'protobuf' ? 'application/vnd.kubernetes.protobuf' : 'application/json' },
          timeoutMs: 600_000,
        });
        if (res.statusCode !== 200) throw new Error(`agent n${i} ${resource}: HTTP ${res.statusCode}`);
        const decoder = new WatchDecoder(encoding);
        let initial = true;
        await new Promise<void>((resolve, reject) => {
          res.on('error', reject);
          res.on('data', (chunk: Buffer) => {
            bytes[i] = (bytes[i] ?? 0) + chunk.length;
            for (const ev of decoder.push(chunk)) {
              if (ev.type === 'BOOKMARK' && initial) {
                initial = false;
                resolve();
              } else if (!initial && resource === 'networkpolicies' && ev.type === 'ADDED') {
                const name = (ev.object as { metadata: { name: string } }).metadata.name;
                const count = (seen.get(name) ?? 0) + 1;
                seen.set(name, count);
                if (count === spec.nodes) {
                  port.postMessage({
                    type: 'arrived',
                    policy: name,
                    at: performance.timeOrigin + performance.now(),
                    count,
                  });
                }
              }
            }
          });
        });
      }),
    );
    synced++;
  };
  port.on('message', () => {
    port.postMessage({
      type: 'bytes',
      protobuf: bytes.filter((_, i) => i % 2 === 0),
      json: bytes.filter((_, i) => i % 2 === 1),
    });
  });
  try {
    // Connect in waves of 50 (TLS handshakes are CPU-bound on both sides).
    for (let i = 0; i < spec.nodes; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, spec.nodes - i) }, (_, k) => connect(i + k)));
    }
    port.postMessage({ type: 'synced', count: synced });
  } catch (err) {
    port.postMessage({ type: 'error', message: (err as Error).message });
  }
}

if (!isMainThread) await agentSide(workerData as AgentSpec);
