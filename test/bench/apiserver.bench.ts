/**
 * `npm run bench -- apiserver [pods] [watchers]`: 100 watchers on Pods while 10,000 Pods are created
 * and then updated (20,000 writes over HTTP, 32 in flight), against the same load with one watcher
 * in the same run. Reports events delivered per second to all watchers and the p99 delivery latency
 * (write sent to event received). The server runs on this thread; the writer and the watchers run
 * in a worker thread (the clients do not parse JSON, they only find the send-time annotation).
 */
import { Worker } from 'node:worker_threads';
import { emit, round } from './lib.ts';
import { startApiServer } from '../../src/lab/apiserver/server.ts';
import { typeOf } from '../../src/lab/apiserver/core.ts';
import type { ClientJob, ClientResult } from './apiserver-clients.ts';

async function measure(pods: number, watchers: number): Promise<ClientResult & { cutOff: number }> {
  const s = await startApiServer({ insecureHttp: true, watchFlushDelayMs: Number(process.env['FLUSH_MS'] ?? 0) });
  try {
    s.registry.create(typeOf(s.types, '', 'namespaces'), undefined, { metadata: { name: 'bench' } });
    await s.idle();
    const job: ClientJob = {
      url: s.url,
      token: s.adminToken,
      namespace: 'bench',
      resourceVersion: String(s.store.rv),
      watchers,
      pods,
      concurrency: 32,
    };
    const worker = new Worker(new URL('./apiserver-clients.ts', import.meta.url), { workerData: job });
    const msg = await new Promise<{ ok: boolean; result?: ClientResult; error?: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    if (!msg.ok || msg.result === undefined) throw new Error(`bench clients failed: ${msg.error ?? 'no result'}`);
    return { ...msg.result, cutOff: msg.result.endedEarly };
  } finally {
    await s.stop();
  }
}

function figures(r: ClientResult, watchers: number): Record<string, number> {
  return {
    watchers,
    writes: r.writes,
    events_delivered: r.delivered,
    events_expected: r.expected,
    watchers_cut_off: r.endedEarly,
    events_per_s: round(r.delivered / (r.totalMs / 1000), 0),
    writes_per_s: round(r.writes / (r.writeMs / 1000), 0),
    p50_latency_ms: round(r.p50Ms, 2),
    p99_latency_ms: round(r.p99Ms, 2),
    max_latency_ms: round(r.maxMs, 2),
    duration_s: round(r.totalMs / 1000, 2),
  };
}

export async function run(args: string[]): Promise<void> {
  const pods = Number(args[0] ?? 10_000);
  const watchers = Number(args[1] ?? 100);
  const one = await measure(pods, 1);
  const many = await measure(pods, watchers);
  const base = figures(one, 1);
  const cur = figures(many, watchers);
  emit({
    bench: 'apiserver',
    case: `${watchers}-watchers-events`,
    ...cur,
    baseline: base,
    // Fan-out: how many times more events per second are delivered with N watchers than with one.
    ratio: round(cur['events_per_s']! / base['events_per_s']!, 2),
  });
  emit({
    bench: 'apiserver',
    case: `${watchers}-watchers-p99-latency`,
    watchers,
    p99_latency_ms: cur['p99_latency_ms'],
    baseline: { watchers: 1, p99_latency_ms: base['p99_latency_ms'] },
    // Latency cost of the fan-out: baseline p99 / N-watcher p99 (1 = no cost, < 1 = slower).
    ratio: round(base['p99_latency_ms']! / cur['p99_latency_ms']!, 3),
  });
}
