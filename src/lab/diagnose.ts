/**
 * Why a probe stays wrong, recorded while the state is still there (before a conformance case's
 * clean-up changes it): per Node the OpenFlow tables with their counters before and after the
 * wrong pairs are probed again (the flows whose counters moved are the ones those packets hit),
 * the datapath's flows and the conntrack entries; per pair the result of each new probe. The full
 * dumps go into files under `dir` (one set per Node); the summary names the flows hit, the
 * conntrack entries of the pairs' addresses, and each datapath flow of a pair beside what
 * `ofproto/trace` makes of it now. Last, it purges the datapath flows and probes once more.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { purgeDatapathFlows } from '../common/agent/userspace-datapath.ts';
import { unixctl } from '../common/ovs/unixctl.ts';
import { errorMessage } from '../common/util/errors.ts';
import type { CommandRunner } from '../common/util/exec.ts';

export interface DiagnosedNode {
  readonly name: string;
  /** The bridge's OpenFlow management socket (`<run dir>/br-int.mgmt`). */
  readonly bridgeMgmtSocket: string;
  /** ovs-vswitchd's unixctl socket. */
  readonly vswitchdSocket: string;
}

export interface WrongPair {
  /** Pod keys (`namespace/name`). */
  readonly from: string;
  readonly to: string;
  readonly fromIp: string;
  readonly toIp: string;
}

export interface DiagnoseOptions {
  readonly runner: CommandRunner;
  readonly nodes: readonly DiagnosedNode[];
  readonly pairs: readonly WrongPair[];
  /** Where the dumps go (created if absent; existing files of the same names are replaced). */
  readonly dir: string;
  /** Probes one pair once more; resolves with a one-line result (never rejects). */
  readonly reprobe: (pair: WrongPair, attempt: number) => Promise<string>;
  /** Probes per pair (default 3). */
  readonly attempts?: number;
}

async function attempt(what: () => Promise<string>): Promise<string> {
  try {
    return await what();
  } catch (err) {
    return `(failed: ${errorMessage(err)})`;
  }
}

function dumpFlows(o: DiagnoseOptions, n: DiagnosedNode): Promise<string> {
  return attempt(
    async () =>
      (
        await o.runner.run('ovs-ofctl', ['-O', 'OpenFlow15', 'dump-flows', `unix:${n.bridgeMgmtSocket}`], {
          timeoutMs: 30_000,
        })
      ).stdout,
  );
}

/** A flow's text without its counters and ages → its packet count. */
export function flowCounters(dump: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of dump.split('\n')) {
    const m = /n_packets=(\d+)/.exec(line);
    if (m === null) continue;
    const key = line.replace(/\s*(duration|n_packets|n_bytes|idle_age|hard_age)=[^,\s]+,?/g, '').trim();
    out.set(key, Number(m[1]));
  }
  return out;
}

/** The flows whose packet count grew from `before` to `after`, as `+N flow`. */
export function flowsHit(before: string, after: string): string[] {
  const b = flowCounters(before);
  return [...flowCounters(after)]
    .filter(([k, v]) => v > (b.get(k) ?? 0))
    .map(([k, v]) => `+${v - (b.get(k) ?? 0)} ${k}`);
}

/**
 * A datapath flow line (`dpctl/dump-flows`) as `ofproto/trace` takes it: without its counters and
 * actions, and with a tunnel TTL (the dump leaves it out, the trace refuses a tunnel key without).
 */
export function traceableFlow(line: string): string {
  const flow = line.replace(/, packets:.*$/, '').trim();
  return /^tunnel\((?![^)]*\bttl=)/.test(flow) ? flow.replace(/^tunnel\(/, 'tunnel(ttl=64,') : flow;
}

/** Records the state behind the wrong pairs; resolves with the summary's lines. */
export async function diagnoseWrongPairs(o: DiagnoseOptions): Promise<string[]> {
  mkdirSync(o.dir, { recursive: true });
  const ips = [...new Set(o.pairs.flatMap((p) => [p.fromIp, p.toIp]))];
  const before = await Promise.all(o.nodes.map((n) => dumpFlows(o, n)));
  const conntrack = await Promise.all(
    o.nodes.map((n) => attempt(() => unixctl(n.vswitchdSocket, 'dpctl/dump-conntrack'))),
  );
  const lines: string[] = [];
  for (const p of o.pairs) {
    const results: string[] = [];
    for (let i = 0; i < (o.attempts ?? 3); i++) results.push(await o.reprobe(p, i));
    lines.push(`${p.from} → ${p.to} again: ${results.join('; ')}`);
  }
  const after = await Promise.all(o.nodes.map((n) => dumpFlows(o, n)));
  const datapath = await Promise.all(o.nodes.map((n) => attempt(() => unixctl(n.vswitchdSocket, 'dpctl/dump-flows'))));
  // Each datapath flow of a pair next to what the OpenFlow tables make of it now: a difference is
  // a datapath flow that revalidation left stale.
  const traces = await Promise.all(
    o.nodes.map(async (n, i) => {
      const flows = (datapath[i] ?? '')
        .split('\n')
        .filter((l) => o.pairs.some((p) => l.includes(`src=${p.fromIp},dst=${p.toIp},`)))
        .slice(0, 4);
      const out: { flow: string; installed: string; now: string; text: string }[] = [];
      for (const l of flows) {
        const flow = traceableFlow(l);
        const text = await attempt(() => unixctl(n.vswitchdSocket, 'ofproto/trace', [flow]));
        out.push({
          flow,
          installed: /actions:(.*)$/.exec(l)?.[1] ?? '?',
          now: /Datapath actions: (.*)$/m.exec(text)?.[1] ?? '?',
          text,
        });
      }
      return out;
    }),
  );
  o.nodes.forEach((n, i) => {
    const hit = flowsHit(before[i] ?? '', after[i] ?? '');
    const ct = (conntrack[i] ?? '').split('\n').filter((l) => ips.some((ip) => l.includes(`=${ip},`)));
    writeFileSync(join(o.dir, `${n.name}-flows-before.txt`), before[i] ?? '');
    writeFileSync(join(o.dir, `${n.name}-flows-after.txt`), after[i] ?? '');
    writeFileSync(join(o.dir, `${n.name}-conntrack.txt`), conntrack[i] ?? '');
    writeFileSync(join(o.dir, `${n.name}-datapath.txt`), datapath[i] ?? '');
    lines.push(`${n.name}: ${hit.length} flow(s) hit while probing again, ${ct.length} conntrack entries of the pairs`);
    for (const h of hit) lines.push(`  hit ${h}`);
    for (const l of ct) lines.push(`  ct ${l.trim()}`);
    (traces[i] ?? []).forEach((tr, k) => {
      writeFileSync(join(o.dir, `${n.name}-trace-${k + 1}.txt`), `${tr.flow}\n\n${tr.text}`);
      lines.push(`  datapath flow ${k + 1}: installed actions ${tr.installed}; the tables now give ${tr.now}`);
    });
  });
  // Last, as it changes the state: do the pairs work once the datapath flows are re-made?
  await Promise.all(o.nodes.map((n) => attempt(() => purgeDatapathFlows(n.vswitchdSocket).then(() => ''))));
  for (const p of o.pairs) lines.push(`${p.from} → ${p.to} after revalidator/purge: ${await o.reprobe(p, 0)}`);
  lines.push(`dumps in ${o.dir}`);
  writeFileSync(join(o.dir, 'summary.txt'), `${lines.join('\n')}\n`);
  return lines;
}
