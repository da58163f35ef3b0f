/**
 * `antrea-lab conformance`: runs NetworkPolicy cases (cases.ts) against a running lab. For each
 * case it makes the model (Namespaces x/y/z, Pods a/b/c) exist with its original labels, performs
 * each step (delete, apply with placeholders substituted, relabel) and probes every judged pair in
 * parallel with short timeouts, following the README's timing rule: a wrong pair is probed again
 * every second for up to `retrySeconds`; if any pair is still wrong, the whole matrix is probed once
 * more and that pass decides. Loopback pairs are skipped where a probe says so; SCTP probes are
 * reported as skipped (no kernel SCTP here). After each case everything it created is deleted and
 * the labels restored.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Clock, formatDuration, systemClock } from '../../common/util/clock.ts';
import { errorMessage } from '../../common/util/errors.ts';
import type { CommandRunner } from '../../common/util/exec.ts';
import type { KubeObject } from '../../common/k8s/objects.ts';
import { probePods } from '../control.ts';
import type { KubeClient, ResourceRef } from '../kube-client.ts';
import {
  ensureModel,
  MODEL_KEYS,
  MODEL_NAMESPACES,
  modelNamespaceLabels,
  modelPodLabels,
  resetLabels,
  type ModelKind,
} from '../model.ts';
import type { ProbeResult } from '../pod-server.ts';
import { probeMatrix, type ProbePod } from '../probe.ts';
import { diagnoseWrongPairs } from '../diagnose.ts';
import { readState, type LabPaths } from '../state.ts';
import {
  type CaseObject,
  type CaseProbe,
  type CaseStep,
  type Expected,
  expectedMatrix,
  type NetpolCase,
  substitutePlaceholders,
} from './cases.ts';

export type CaseStatus = 'pass' | 'fail' | 'skip';

export interface CaseOutcome {
  readonly id: string;
  readonly status: CaseStatus;
  /** One line: what was checked, or what went wrong, or why it was skipped. */
  readonly detail: string;
  readonly ms: number;
  /** Per wrong probe: expected and actual tables (rows from, columns to). */
  readonly diffs: readonly string[];
}

export interface ConformanceOptions {
  readonly client: KubeClient;
  readonly paths: LabPaths;
  readonly clock?: Clock;
  /** Retry window per wrong pair, in seconds (README: 10). */
  readonly retrySeconds?: number;
  /** Timeout of one probe (README: agnhost connect --timeout=1s). */
  readonly probeTimeoutMs?: number;
  /** Called with each case's outcome as soon as it is known. */
  readonly onCase?: (o: CaseOutcome) => void;
  /** Progress for humans. */
  readonly say?: (line: string) => void;
  /**
   * Waits until the policies of a step are programmed (called after its changes, before probing).
   * Absent: the retry rule alone absorbs programming delays, as upstream does.
   */
  readonly waitProgrammed?: () => Promise<void>;
  /**
   * When a probe stays wrong, record why before the case's clean-up (../diagnose.ts): dumps under
   * `dir/<case>-step<N>-<proto>-<port>/`, a summary through `say`.
   */
  readonly diagnose?: { readonly dir: string; readonly runner: CommandRunner };
  /** Pod key → Node for the model Pods (see ensureModel); absent: wherever the scheduler puts them. */
  readonly placement?: ReadonlyMap<string, string>;
}

const KIND_RESOURCES: Readonly<Record<string, { resource: string; namespaced: boolean }>> = {
  'networking.k8s.io/v1/NetworkPolicy': { resource: 'networkpolicies', namespaced: true },
  'crd.antrea.io/v1beta1/NetworkPolicy': { resource: 'networkpolicies', namespaced: true },
  'crd.antrea.io/v1beta1/ClusterNetworkPolicy': { resource: 'clusternetworkpolicies', namespaced: false },
  'crd.antrea.io/v1beta1/Tier': { resource: 'tiers', namespaced: false },
};
/** The API a `Kind/...` delete refers to when the case did not apply that object itself. */
const DEFAULT_API: Readonly<Record<string, string>> = {
  NetworkPolicy: 'networking.k8s.io/v1',
  ClusterNetworkPolicy: 'crd.antrea.io/v1beta1',
  Tier: 'crd.antrea.io/v1beta1',
};

function refOf(apiVersion: string, kind: string, namespace: string | undefined, name: string): ResourceRef {
  const k = KIND_RESOURCES[`${apiVersion}/${kind}`];
  if (k === undefined) throw new Error(`${apiVersion} ${kind} is not a policy kind the runner knows`);
  return { apiVersion, resource: k.resource, name, ...(k.namespaced ? { namespace: namespace ?? 'default' } : {}) };
}

/** Whether the kernel has SCTP (it would still need an SCTP server in the Pods). */
export function kernelHasSctp(): boolean {
  return existsSync('/proc/net/sctp');
}

function actualOf(r: ProbeResult | undefined, model: ModelKind): Expected | 'error' {
  if (r === undefined) return 'error';
  if (model === 'k8s') return r.outcome === 'connected';
  switch (r.outcome) {
    case 'connected':
      return 'allow';
    case 'timeout':
      return 'drop';
    case 'refused':
    case 'unreachable':
      return 'reject';
    case 'error':
    case 'unsupported':
      return 'error';
  }
}

function mark(v: Expected | 'error' | undefined): string {
  if (v === undefined) return '-';
  if (v === true || v === 'allow') return '.';
  if (v === false) return 'X';
  if (v === 'drop') return 'D';
  if (v === 'reject') return 'R';
  return 'E';
}

function table(title: string, cellOf: (from: string, to: string) => string): string[] {
  const short = MODEL_KEYS.map((k) => k.replace('/', ''));
  return [
    title,
    `from\\to ${short.join(' ')}`,
    ...MODEL_KEYS.map(
      (from, i) => `${(short[i] ?? from).padEnd(7)} ${MODEL_KEYS.map((to) => cellOf(from, to).padStart(2)).join(' ')}`,
    ),
  ];
}

interface ProbeVerdict {
  readonly judged: number;
  readonly wrong: { from: string; to: string; expected: Expected; actual: Expected | 'error'; error?: string }[];
  readonly actual: Map<string, Expected | 'error'>;
}

export class ConformanceRunner {
  private readonly o: ConformanceOptions;
  private readonly clock: Clock;

  constructor(o: ConformanceOptions) {
    this.o = o;
    this.clock = o.clock ?? systemClock;
  }

  /** Runs the cases in order; resolves with every outcome. */
  async run(cases: readonly NetpolCase[]): Promise<CaseOutcome[]> {
    const out: CaseOutcome[] = [];
    for (const c of cases) {
      const outcome = await this.runCase(c);
      out.push(outcome);
      this.o.onCase?.(outcome);
    }
    return out;
  }

  async runCase(c: NetpolCase): Promise<CaseOutcome> {
    const t0 = this.clock.monotonic();
    const applied = new Map<string, ResourceRef>();
    const diffs: string[] = [];
    let judged = 0;
    let skippedProbes = 0;
    const wrongSteps: string[] = [];
    const finish = (status: CaseStatus, detail: string): CaseOutcome => ({
      id: c.id,
      status,
      detail,
      ms: Math.round(this.clock.monotonic() - t0),
      diffs,
    });
    try {
      const model = await ensureModel(
        this.o.client,
        c.model,
        this.o.placement === undefined ? {} : { placement: this.o.placement },
      );
      const ips = new Map(model.map((p) => [p.key, p.ip]));
      const pods = (await probePods(this.o.paths, this.o.client, [...MODEL_NAMESPACES])).filter((p) => ips.has(p.key));
      if (pods.length !== MODEL_KEYS.length) throw new Error(`only ${pods.length} of 9 model Pods can be probed`);
      for (const [i, step] of c.steps.entries()) {
        const where = `step ${i + 1}`;
        await this.applyStep(c, step, ips, applied, where);
        if (this.o.waitProgrammed !== undefined && step.probes.length > 0) await this.o.waitProgrammed();
        for (const p of step.probes) {
          if (p.protocol === 'SCTP') {
            skippedProbes++;
            continue;
          }
          const v = await this.judge(c.model, pods, p);
          judged += v.judged;
          if (v.wrong.length > 0) {
            await this.diagnose(`${c.id}-step${i + 1}-${p.protocol}-${p.port}`, pods, p, v);
            const exp = expectedMatrix(p);
            const sample = v.wrong
              .slice(0, 4)
              .map(
                (w) =>
                  `${w.from}→${w.to} expected ${mark(w.expected)} got ${mark(w.actual)}${w.error === undefined ? '' : ` (${w.error})`}`,
              )
              .join(', ');
            wrongSteps.push(
              `${where} ${p.protocol}/${p.port}: ${v.wrong.length} of ${v.judged} pairs wrong: ${sample}${v.wrong.length > 4 ? ', …' : ''}`,
            );
            const skip = (from: string, to: string): boolean => p.ignoreLoopback && from === to;
            diffs.push(
              [
                `${c.id} ${where} ${p.protocol}/${p.port}`,
                ...table('expected:', (f, t) => (skip(f, t) ? '-' : mark(exp.get(`${f}>${t}`)))),
                ...table('actual:', (f, t) => (skip(f, t) ? '-' : mark(v.actual.get(`${f}>${t}`)))),
              ].join('\n'),
            );
          }
        }
      }
    } catch (err) {
      return finish('fail', `error: ${errorMessage(err)}`);
    } finally {
      await this.cleanup(c.model, applied).catch((err: unknown) => {
        wrongSteps.push(`cleanup failed: ${errorMessage(err)}`);
      });
    }
    if (wrongSteps.length > 0) return finish('fail', wrongSteps.join('; '));
    const sctp = `${skippedProbes} SCTP probe(s) skipped: ${kernelHasSctp() ? 'the lab Pods cannot serve SCTP' : 'the kernel has no SCTP'}`;
    if (skippedProbes > 0) {
      return finish('skip', judged > 0 ? `${sctp}; the ${judged} other judged pairs were right` : sctp);
    }
    return finish('pass', `${judged} pairs right`);
  }

  private async applyStep(
    c: NetpolCase,
    step: CaseStep,
    ips: ReadonlyMap<string, string>,
    applied: Map<string, ResourceRef>,
    where: string,
  ): Promise<void> {
    const client = this.o.client;
    for (const d of step.delete ?? []) {
      const parts = d.split('/');
      const kind = parts[0] ?? '';
      const [ns, name] = parts.length === 3 ? [parts[1], parts[2] ?? ''] : [undefined, parts[1] ?? ''];
      const key = `${kind}/${ns ?? ''}/${name}`;
      const ref = applied.get(key) ?? refOf(DEFAULT_API[kind] ?? 'unknown', kind, ns, name);
      await client.delete(ref);
      applied.delete(key);
    }
    for (const obj of step.apply ?? []) {
      const o = substitutePlaceholders<CaseObject>(obj, ips, `${c.id} ${where}`);
      const ref = refOf(o.apiVersion, o.kind, o.metadata.namespace, o.metadata.name);
      await client.createOrReplace(ref, o);
      applied.set(`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, ref);
    }
    for (const [ns, labels] of Object.entries(step.namespaceLabels ?? {})) {
      await client.patch({ apiVersion: 'v1', resource: 'namespaces', name: ns }, { metadata: { labels } });
    }
    for (const [pod, labels] of Object.entries(step.podLabels ?? {})) {
      const [ns, name] = pod.split('/') as [string, string];
      await client.patch({ apiVersion: 'v1', resource: 'pods', namespace: ns, name }, { metadata: { labels } });
    }
  }

  /** Probes the judged pairs of one probe with the README's retry rule. */
  private async judge(model: ModelKind, pods: readonly ProbePod[], p: CaseProbe): Promise<ProbeVerdict> {
    const expected = expectedMatrix(p);
    const judgedPair = (from: string, to: string): boolean => !(p.ignoreLoopback && from === to);
    const actual = new Map<string, Expected | 'error'>();
    const errors = new Map<string, string>();
    const probe = async (want: (from: string, to: string) => boolean): Promise<void> => {
      const m = await probeMatrix(pods, p.port, p.protocol, {
        timeoutMs: this.o.probeTimeoutMs ?? 1000,
        pairs: (f, t) => judgedPair(f, t) && want(f, t),
      });
      for (const [from, row] of m.cells) {
        for (const [to, r] of row) {
          actual.set(`${from}>${to}`, actualOf(r, model));
          if (r.error !== undefined) errors.set(`${from}>${to}`, r.error);
          else errors.delete(`${from}>${to}`);
        }
      }
    };
    const wrongKeys = (): string[] => [...actual.keys()].filter((k) => actual.get(k) !== expected.get(k));
    const pass = async (): Promise<string[]> => {
      actual.clear();
      await probe(() => true);
      const start = this.clock.monotonic();
      let wrong = wrongKeys();
      while (wrong.length > 0 && this.clock.monotonic() - start < (this.o.retrySeconds ?? 10) * 1000) {
        await this.clock.sleep(1000);
        const set = new Set(wrong);
        await probe((f, t) => set.has(`${f}>${t}`));
        wrong = wrongKeys();
      }
      return wrong;
    };
    let wrong = await pass();
    if (wrong.length > 0) wrong = await pass();
    return {
      judged: actual.size,
      actual,
      wrong: wrong.map((k) => {
        const [from, to] = k.split('>') as [string, string];
        const e = errors.get(k);
        return {
          from,
          to,
          expected: expected.get(k) ?? false,
          actual: actual.get(k) ?? 'error',
          ...(e === undefined ? {} : { error: e }),
        };
      }),
    };
  }

  /** Records why the wrong pairs of a probe are wrong (the first three), if asked to. */
  private async diagnose(name: string, pods: readonly ProbePod[], p: CaseProbe, v: ProbeVerdict): Promise<void> {
    const d = this.o.diagnose;
    if (d === undefined) return;
    const byKey = new Map(pods.map((x) => [x.key, x]));
    const nodes = (readState(this.o.paths)?.nodes ?? []).map((n) => ({
      name: n.name,
      bridgeMgmtSocket: join(this.o.paths.ovsRunDir(n.name), 'br-int.mgmt'),
      vswitchdSocket: join(this.o.paths.ovsRunDir(n.name), 'ovs-vswitchd.ctl'),
    }));
    const pairs = v.wrong.slice(0, 3).map((w) => ({
      from: w.from,
      to: w.to,
      fromIp: byKey.get(w.from)?.ip ?? '',
      toIp: byKey.get(w.to)?.ip ?? '',
    }));
    try {
      const lines = await diagnoseWrongPairs({
        runner: d.runner,
        nodes,
        pairs,
        dir: join(d.dir, name),
        reprobe: async (pair) => {
          const m = await probeMatrix(pods, p.port, p.protocol, {
            timeoutMs: this.o.probeTimeoutMs ?? 1000,
            pairs: (f, t) => f === pair.from && t === pair.to,
          });
          const r = m.cells.get(pair.from)?.get(pair.to);
          return r === undefined
            ? 'no result'
            : `${r.outcome}${r.error === undefined ? '' : ` (${r.error})`} ${r.ms} ms`;
        },
      });
      for (const l of lines) this.o.say?.(`    ${l}`);
    } catch (err) {
      this.o.say?.(`    diagnosis failed: ${errorMessage(err)}`);
    }
  }

  private async cleanup(model: ModelKind, applied: Map<string, ResourceRef>): Promise<void> {
    const client = this.o.client;
    for (const ref of [...applied.values()].reverse()) await client.delete(ref);
    applied.clear();
    for (const ns of MODEL_NAMESPACES) {
      const ref = { apiVersion: 'v1', resource: 'namespaces', name: ns } as const;
      const cur = await client.find<KubeObject>(ref);
      if (cur !== undefined) await resetLabels(client, ref, cur.metadata?.labels ?? {}, modelNamespaceLabels(ns));
    }
    for (const key of MODEL_KEYS) {
      const [ns, name] = key.split('/') as [string, string];
      const ref = { apiVersion: 'v1', resource: 'pods', namespace: ns, name } as const;
      const cur = await client.find<KubeObject>(ref);
      if (cur !== undefined) await resetLabels(client, ref, cur.metadata?.labels ?? {}, modelPodLabels(name, model));
    }
  }
}

export function formatOutcome(o: CaseOutcome): string {
  const tag = o.status === 'pass' ? 'PASS' : o.status === 'fail' ? 'FAIL' : 'SKIP';
  return `${tag}  ${o.id} (${formatDuration(o.ms)}): ${o.detail}`;
}

export function summarize(
  outcomes: readonly CaseOutcome[],
  invalid: number,
): { passed: number; failed: number; skipped: number; line: string } {
  const passed = outcomes.filter((o) => o.status === 'pass').length;
  const failed = outcomes.filter((o) => o.status === 'fail').length + invalid;
  const skipped = outcomes.filter((o) => o.status === 'skip').length;
  return { passed, failed, skipped, line: `${passed} passed, ${failed} failed, ${skipped} skipped` };
}
