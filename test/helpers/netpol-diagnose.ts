/**
 * When a NetworkPolicy probe stays wrong, records why while the state is still there: per Node
 * the OpenFlow tables with their counters before and after probing the wrong pairs again (the
 * flows a probe's packets hit are the ones whose counters moved), the datapath flows, and the
 * conntrack entries of the pairs' addresses; per pair the probe's own failure reason, from an
 * ephemeral and from a fixed source port. Everything goes into files under `dir`; the result is a
 * short summary for the test's comment.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentNode } from './agent-node.ts';
import { runner } from './env.ts';

const PROBE = join(import.meta.dirname, 'netpol-probe.ts');

export interface DiagnosedPair {
  /** e.g. "y/a". */
  readonly from: string;
  readonly to: string;
  /** The source Pod's netns name. */
  readonly fromNs: string;
  readonly fromIp: string;
  readonly toIp: string;
  readonly port: number;
  readonly proto: 'tcp' | 'udp';
}

async function tryRun(cmd: string, args: readonly string[]): Promise<string> {
  try {
    const r = await runner.run(cmd, [...args], { timeoutMs: 30_000, okExitCodes: [1] });
    return r.stdout;
  } catch (err) {
    return `(${cmd} failed: ${err instanceof Error ? err.message : String(err)})`;
  }
}

async function flowsWithStats(node: AgentNode): Promise<string> {
  return tryRun('ovs-ofctl', ['-O', 'OpenFlow15', 'dump-flows', `unix:${node.ovs.bridgeMgmtSocketPath('br-int')}`]);
}

/** flow text without its counters → n_packets. */
function counters(dump: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of dump.split('\n')) {
    const m = /n_packets=(\d+)/.exec(line);
    if (m === null) continue;
    const key = line.replace(/\s*(duration|n_packets|n_bytes|idle_age|hard_age)=[^,\s]+,?/g, '').trim();
    out.set(key, Number(m[1]));
  }
  return out;
}

async function appctl(node: AgentNode, ...args: string[]): Promise<string> {
  return tryRun('ovs-appctl', ['-t', node.ovs.ctlSocketPath('ovs-vswitchd'), ...args]);
}

export async function diagnosePairs(
  nodes: readonly AgentNode[],
  pairs: readonly DiagnosedPair[],
  dir: string,
): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const ips = new Set(pairs.flatMap((p) => [p.fromIp, p.toIp]));
  const before = await Promise.all(nodes.map((n) => flowsWithStats(n)));
  const conntrack = await Promise.all(nodes.map((n) => appctl(n, 'dpctl/dump-conntrack')));
  const summary: string[] = [];
  for (const p of pairs) {
    const results: string[] = [];
    for (const src of [undefined, undefined, '45678']) {
      const out = await tryRun('ip', [
        'netns',
        'exec',
        p.fromNs,
        process.execPath,
        PROBE,
        p.proto,
        p.toIp,
        String(p.port),
        '1000',
        ...(src === undefined ? [] : [src]),
      ]);
      results.push(`${src === undefined ? 'ephemeral' : `sport ${src}`}: ${out.trim()}`);
    }
    summary.push(`${p.from} → ${p.to} ${p.proto}/${p.port}: ${results.join('; ')}`);
  }
  const after = await Promise.all(nodes.map((n) => flowsWithStats(n)));
  const datapath = await Promise.all(nodes.map((n) => appctl(n, 'dpctl/dump-flows')));
  nodes.forEach((n, i) => {
    const b = counters(before[i] ?? '');
    const hit = [...counters(after[i] ?? '')]
      .filter(([k, v]) => v !== (b.get(k) ?? 0))
      .map(([k, v]) => `+${v - (b.get(k) ?? 0)} ${k}`);
    const ct = (conntrack[i] ?? '').split('\n').filter((l) => [...ips].some((ip) => l.includes(`=${ip},`)));
    writeFileSync(join(dir, `${n.nodeName}-flows-before.txt`), before[i] ?? '');
    writeFileSync(join(dir, `${n.nodeName}-flows-hit.txt`), `${hit.join('\n')}\n`);
    writeFileSync(join(dir, `${n.nodeName}-conntrack.txt`), conntrack[i] ?? '');
    writeFileSync(join(dir, `${n.nodeName}-datapath.txt`), datapath[i] ?? '');
    summary.push(`${n.nodeName}: ${hit.length} flows hit, ${ct.length} conntrack entries of the pairs`);
    for (const l of ct) summary.push(`  ct ${l.trim()}`);
  });
  summary.push(`details in ${dir}`);
  writeFileSync(join(dir, 'summary.txt'), `${summary.join('\n')}\n`);
  return summary.join('\n');
}
