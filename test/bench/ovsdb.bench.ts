/**
 * `npm run bench -- ovsdb [--ports N] [--batch B] [--rounds R] [--single N]`
 *
 * Adds N ports (default 1000) with Antrea-style external_ids to br-int in transactions of B
 * (default 100) through the bridge client, and the same transactions with `ovs-vsctl --no-wait`
 * (one invocation per transaction, commands chained with `--`), each on a fresh private OVS with
 * the same starting database. Neither waits for ovs-vswitchd. Rounds alternate which goes first; the
 * median round is reported. A second case adds ports one per transaction (as CNI ADD does).
 *
 * Needs root (network namespaces and OVS daemons).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OvsdbBridge, type PortSpec } from '../../src/common/ovs/ovsdb/bridge.ts';
import { OvsdbClient } from '../../src/common/ovs/ovsdb/client.ts';
import { createCommandRunner, createProcessLauncher } from '../../src/common/util/exec.ts';
import { NetnsManager } from '../../src/platform/linux/netns.ts';
import { OvsDaemons } from '../../src/platform/linux/ovs-daemons.ts';
import { emit, percentile, round } from './lib.ts';

const runner = createCommandRunner();
const launcher = createProcessLauncher();
const netns = new NetnsManager(runner);

interface Options {
  ports: number;
  batch: number;
  rounds: number;
  single: number;
}

function parseArgs(args: string[]): Options {
  const opts: Options = { ports: 1000, batch: 100, rounds: 3, single: 100 };
  for (let i = 0; i < args.length; i++) {
    const key = args[i]?.replace(/^--/, '') as keyof Options | undefined;
    const value = Number(args[i + 1]);
    if (key === undefined || !(key in opts) || !Number.isInteger(value) || value < 1) {
      throw new Error(
        `usage: npm run bench -- ovsdb [--ports N] [--batch B] [--rounds R] [--single N] (bad: ${args[i]})`,
      );
    }
    opts[key] = value;
    i++;
  }
  return opts;
}

/** The same Antrea-like port specs for both sides. */
function specs(count: number, prefix: string): PortSpec[] {
  return Array.from({ length: count }, (_, i) => {
    const n = String(i).padStart(4, '0');
    return {
      name: `${prefix}${n}`,
      type: 'system' as const,
      externalIds: {
        'antrea-type': 'container',
        'container-id': `c${n}${'0'.repeat(59)}`,
        'pod-name': `pod-${n}`,
        'pod-namespace': 'bench',
        ip: `10.10.${Math.floor(i / 250)}.${(i % 250) + 2}`,
        'attached-mac': `0a:58:0a:0a:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`,
      },
    };
  });
}

/** One `ovs-vsctl` invocation adding these ports, commands chained with `--`. */
function vsctlArgs(db: string, batch: readonly PortSpec[]): string[] {
  const args = [`--db=${db}`, '--no-wait'];
  for (const p of batch) {
    if (args.length > 2) args.push('--');
    args.push('add-port', 'br-int', p.name, '--', 'set', 'Port', p.name);
    for (const [k, v] of Object.entries(p.externalIds ?? {})) args.push(`external_ids:${k}="${v}"`);
  }
  return args;
}

interface Instance {
  ovs: OvsDaemons;
  cleanup: () => Promise<void>;
}

/** A fresh private OVS with an empty br-int (netdev), identical for both sides. */
async function freshOvs(): Promise<Instance> {
  const ns = `atsb-${randomBytes(3).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'ovsb-'));
  await netns.ensure(ns);
  const ovs = new OvsDaemons({ runDir: dir, netns: ns, runner, launcher });
  const cleanup = async (): Promise<void> => {
    await ovs.stop();
    rmSync(dir, { recursive: true, force: true });
    await netns.delete(ns);
  };
  try {
    await ovs.start();
    await runner.run('ovs-vsctl', [
      `--db=${ovs.dbEndpoint}`,
      'add-br',
      'br-int',
      '--',
      'set',
      'Bridge',
      'br-int',
      'datapath_type=netdev',
    ]);
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { ovs, cleanup };
}

async function verify(ovs: OvsDaemons, expected: number, sample: PortSpec): Promise<void> {
  const ports = (await runner.run('ovs-vsctl', [`--db=${ovs.dbEndpoint}`, 'list-ports', 'br-int'])).stdout
    .trim()
    .split('\n');
  if (ports.length !== expected) throw new Error(`expected ${expected} ports, found ${ports.length}`);
  const ids = (
    await runner.run('ovs-vsctl', [`--db=${ovs.dbEndpoint}`, 'get', 'Port', sample.name, 'external_ids:pod-name'])
  ).stdout.trim();
  if (ids.replaceAll('"', '') !== sample.externalIds?.['pod-name']) throw new Error(`external_ids not written: ${ids}`);
}

interface Run {
  totalMs: number;
  txnMs: number[];
}

async function runOurs(all: readonly PortSpec[], batch: number): Promise<Run> {
  const inst = await freshOvs();
  try {
    const client = await OvsdbClient.connect({ endpoint: inst.ovs.dbEndpoint });
    try {
      const br = new OvsdbBridge(client, 'br-int');
      const txnMs: number[] = [];
      const t0 = performance.now();
      for (let i = 0; i < all.length; i += batch) {
        const t1 = performance.now();
        await br.createPorts(all.slice(i, i + batch));
        txnMs.push(performance.now() - t1);
      }
      const totalMs = performance.now() - t0;
      await verify(inst.ovs, all.length, all[all.length - 1]!);
      return { totalMs, txnMs };
    } finally {
      await client.close();
    }
  } finally {
    await inst.cleanup();
  }
}

async function runVsctl(all: readonly PortSpec[], batch: number): Promise<Run> {
  const inst = await freshOvs();
  try {
    const txnMs: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < all.length; i += batch) {
      const t1 = performance.now();
      await runner.run('ovs-vsctl', vsctlArgs(inst.ovs.dbEndpoint, all.slice(i, i + batch)), { timeoutMs: 60_000 });
      txnMs.push(performance.now() - t1);
    }
    const totalMs = performance.now() - t0;
    await verify(inst.ovs, all.length, all[all.length - 1]!);
    return { totalMs, txnMs };
  } finally {
    await inst.cleanup();
  }
}

function median(runs: Run[]): Run {
  const sorted = [...runs].sort((a, b) => a.totalMs - b.totalMs);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

async function compare(name: string, count: number, batch: number, rounds: number): Promise<void> {
  const all = specs(count, 'bp');
  const ours: Run[] = [];
  const theirs: Run[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      ours.push(await runOurs(all, batch));
      theirs.push(await runVsctl(all, batch));
    } else {
      theirs.push(await runVsctl(all, batch));
      ours.push(await runOurs(all, batch));
    }
  }
  const o = median(ours);
  const v = median(theirs);
  const pps = (run: Run): number => (count / run.totalMs) * 1000;
  emit({
    bench: 'ovsdb',
    case: name,
    ports: count,
    ports_per_txn: batch,
    transactions: Math.ceil(count / batch),
    rounds,
    ports_per_s: round(pps(o), 1),
    total_ms: round(o.totalMs, 1),
    txn_p50_ms: round(percentile(o.txnMs, 50)),
    txn_max_ms: round(Math.max(...o.txnMs)),
    baseline: {
      tool: 'ovs-vsctl --no-wait, one invocation per transaction',
      ports_per_s: round(pps(v), 1),
      total_ms: round(v.totalMs, 1),
      txn_p50_ms: round(percentile(v.txnMs, 50)),
      txn_max_ms: round(Math.max(...v.txnMs)),
    },
    ratio: round(pps(o) / pps(v)),
  });
}

export async function run(args: string[]): Promise<void> {
  const opts = parseArgs(args);
  if (process.getuid?.() !== 0) throw new Error('the ovsdb benchmark needs root (network namespaces and OVS)');
  await compare(`add-${opts.ports}-ports-in-txns-of-${opts.batch}`, opts.ports, opts.batch, opts.rounds);
  await compare(`add-${opts.single}-ports-one-per-txn`, opts.single, 1, opts.rounds);
}
