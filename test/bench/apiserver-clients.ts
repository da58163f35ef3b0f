/**
 * Worker thread of the apiserver benchmark: opens the watchers, then creates and updates the Pods
 * over HTTP, and measures when each watcher receives each event. Every Pod write carries its send
 * time (performance.timeOrigin + performance.now(), comparable across threads) in an annotation;
 * watchers only scan for it, so the clients stay cheap next to the server under test.
 */
import { Agent, request, type IncomingMessage } from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';

export interface ClientJob {
  readonly url: string;
  readonly token: string;
  readonly namespace: string;
  readonly resourceVersion: string;
  readonly watchers: number;
  readonly pods: number;
  readonly concurrency: number;
}

export interface ClientResult {
  readonly delivered: number;
  readonly expected: number;
  readonly writes: number;
  readonly writeMs: number;
  /** From the first write to the last event received. */
  readonly totalMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly endedEarly: number;
}

const MARK = '"bench.antrea.io/sent":"';
const now = (): number => performance.timeOrigin + performance.now();

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

async function run(job: ClientJob): Promise<ClientResult> {
  const base = new URL(job.url);
  const agent = new Agent({ keepAlive: true, maxSockets: job.concurrency });
  const expectedPerWatcher = job.pods * 2;
  const latencies = new Float64Array(job.watchers * expectedPerWatcher);
  let n = 0;
  let delivered = 0;
  let endedEarly = 0;
  let lastEvent = 0;
  let doneWatchers = 0;
  let resolveAll: () => void = () => undefined;
  const allDone = new Promise<void>((r) => (resolveAll = r));

  const openWatch = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = request(
        new URL(
          `/api/v1/namespaces/${job.namespace}/pods?watch=true&resourceVersion=${job.resourceVersion}&timeoutSeconds=3600`,
          base,
        ),
        { headers: { Authorization: `Bearer ${job.token}` }, agent: false },
        (res: IncomingMessage) => {
          let got = 0;
          let tail = '';
          res.setEncoding('latin1');
          res.on('data', (chunk: string) => {
            const t = now();
            const text = tail + chunk;
            let start = 0;
            for (;;) {
              const nl = text.indexOf('\n', start);
              if (nl < 0) break;
              const i = text.indexOf(MARK, start);
              if (i >= 0 && i < nl) {
                const j = text.indexOf('"', i + MARK.length);
                latencies[n++] = t - Number(text.slice(i + MARK.length, j));
              }
              got++;
              delivered++;
              start = nl + 1;
            }
            tail = text.slice(start);
            lastEvent = t;
            if (got === expectedPerWatcher) {
              doneWatchers++;
              res.destroy();
              if (doneWatchers === job.watchers) resolveAll();
            }
          });
          res.on('end', () => {
            if (got < expectedPerWatcher) {
              endedEarly++;
              doneWatchers++;
              if (doneWatchers === job.watchers) resolveAll();
            }
          });
          resolve();
        },
      );
      req.on('error', reject);
      req.end();
    });

  await Promise.all(Array.from({ length: job.watchers }, openWatch));

  const send = (method: string, path: string, body: string, contentType: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = request(
        new URL(path, base),
        { method, agent, headers: { Authorization: `Bearer ${job.token}`, 'Content-Type': contentType } },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode !== undefined && res.statusCode < 300
              ? resolve()
              : reject(new Error(`${method} ${path}: ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  const writes: (() => Promise<void>)[] = [];
  for (let i = 0; i < job.pods; i++) {
    writes.push(() =>
      send(
        'POST',
        `/api/v1/namespaces/${job.namespace}/pods`,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name: `pod-${i}`,
            labels: { app: 'bench', shard: String(i % 10) },
            annotations: { 'bench.antrea.io/sent': String(now()) },
          },
          spec: { nodeName: `node-${i % 50}`, containers: [{ name: 'c', image: 'registry.k8s.io/pause:3.9' }] },
        }),
        'application/json',
      ),
    );
  }
  for (let i = 0; i < job.pods; i++) {
    writes.push(() =>
      send(
        'PATCH',
        `/api/v1/namespaces/${job.namespace}/pods/pod-${i}/status`,
        JSON.stringify({
          metadata: { annotations: { 'bench.antrea.io/sent': String(now()) } },
          status: { phase: 'Running', podIP: `10.10.${Math.floor(i / 250)}.${i % 250}` },
        }),
        'application/merge-patch+json',
      ),
    );
  }
  const t0 = now();
  let next = 0;
  // Creates must finish before their updates start: run the two halves one after the other.
  const half = job.pods;
  const runHalf = async (end: number): Promise<void> => {
    const ws: Promise<void>[] = [];
    const loop = async (): Promise<void> => {
      while (next < end) {
        const w = writes[next++];
        if (w !== undefined) await w();
      }
    };
    for (let i = 0; i < job.concurrency; i++) ws.push(loop());
    await Promise.all(ws);
  };
  await runHalf(half);
  await runHalf(writes.length);
  const writeMs = now() - t0;
  const timeout = setTimeout(resolveAll, 120_000);
  await allDone;
  clearTimeout(timeout);
  agent.destroy();
  const sorted = latencies.subarray(0, n).sort();
  return {
    delivered,
    expected: expectedPerWatcher * job.watchers,
    writes: writes.length,
    writeMs,
    totalMs: lastEvent - t0,
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    maxMs: sorted[sorted.length - 1] ?? Number.NaN,
    endedEarly,
  };
}

if (parentPort !== null) {
  const port = parentPort;
  run(workerData as ClientJob).then(
    (r) => port.postMessage({ ok: true, result: r }),
    (err: unknown) => port.postMessage({ ok: false, error: err instanceof Error ? err.stack : String(err) }),
  );
}
