/**
 * `npm run bench -- openflow [--flows N] [--modify N] [--samples N] [--rounds N]`
 *
 * Against a private ovs-vswitchd (userspace datapath), on a fresh bridge per case:
 *  - install N (default 100,000) flows of a mixed, Antrea-shaped set (Pod classification and
 *    spoof guard, L3/L2 forwarding, conjunctive policy clauses with shared addresses, DNAT with
 *    ct(nat)) in one bundle through our client, vs `ovs-ofctl --bundle add-flows` of the same flows
 *    from a file;
 *  - modify M (default 10,000) of them (modify_strict, one bundle) vs `ovs-ofctl --bundle add-flows`
 *    of a file of `modify_strict` lines;
 *  - the latency of one small change (one flow, through the bridge client) vs one `ovs-ofctl
 *    add-flow` process per change.
 * Install and modify run `--rounds` times (default 3), ours and the baseline alternating on fresh
 * bridges, and report the best run of each. Both sides start from prepared flows: the baseline from
 * a text file it must parse, ours from Flow objects it must encode (`ratio`); the time to build the
 * 100,000 Flow objects with the builders is reported too (`build_ms`, `ratio_with_build`).
 * Ratios > 1 mean we are faster.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BridgeClient } from '../../src/common/agent/openflow/bridge.ts';
import type { FlowTable } from '../../src/common/agent/openflow/builder.ts';
import { CookieAllocator } from '../../src/common/agent/openflow/cookie.ts';
import { RealizedPipeline } from '../../src/common/agent/openflow/framework.ts';
import { Nat } from '../../src/common/agent/openflow/builder.ts';
import {
  CT_ZONE,
  EndpointIPField,
  EndpointPortField,
  EpSelectedRegMark,
  FromLocalRegMark,
  FromPodRegMark,
  OutputToOFPortRegMark,
  PRIORITY,
  ServiceCTMark,
  TargetOFPortField,
} from '../../src/common/agent/openflow/fields.ts';
import { T, type TableDef } from '../../src/common/agent/openflow/pipeline.ts';
import { OpenFlowClient } from '../../src/common/ovs/openflow/client.ts';
import { OpenFlowConnection } from '../../src/common/ovs/openflow/connection.ts';
import type { Flow } from '../../src/common/ovs/openflow/flow.ts';
import { note } from '../../src/common/ovs/openflow/actions.ts';
import { applyBundle, clearAll, op } from '../../src/common/ovs/openflow/ops.ts';
import { formatIpv4 } from '../../src/common/ovs/openflow/bytes.ts';
import { OvsDaemons } from '../../src/platform/linux/ovs-daemons.ts';
import { integrationSkipReason, launcher, netns, runner, uniqueName } from '../helpers/env.ts';
import { emit, percentile, round } from './lib.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

export const TABLES: readonly TableDef[] = [
  T.Classifier,
  T.SpoofGuard,
  T.ConntrackZone,
  T.EndpointDNAT,
  T.AntreaPolicyEgressRule,
  T.EgressRule,
  T.L3Forwarding,
  T.L3DecTTL,
  T.L2ForwardingCalc,
  T.IngressRule,
  T.IngressMetric,
  T.Output,
];

function arg(args: string[], name: string, def: number): number {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : def;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} must be a positive integer`);
  return v;
}

/** A deterministic mixed set of `n` flows (about 40% Pod flows, 45% conjunctive policy, 15% DNAT). */
export function buildFlows(p: RealizedPipeline, cookies: CookieAllocator, n: number): Flow[] {
  const tb = (d: TableDef): FlowTable & ReturnType<RealizedPipeline['table']> => p.table(d);
  const pod = cookies.request('PodConnectivity');
  const np = cookies.request('NetworkPolicy');
  const svc = cookies.request('Service');
  const out: Flow[] = [];
  const ip = (base: number, i: number): string => formatIpv4(base + i);
  const mac = (i: number): string =>
    `02:00:${[(i >>> 24) & 0xff, (i >>> 16) & 0xff, (i >>> 8) & 0xff, i & 0xff].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
  const nPods = Math.floor((n * 0.4) / 4);
  for (let i = 0; i < nPods; i++) {
    const port = 100 + i;
    const podIp = ip(0x0a0a0000, i + 2);
    out.push(
      tb(T.Classifier)
        .flow(PRIORITY.low)
        .cookie(pod)
        .matchInPort(port)
        .loadRegMark(FromPodRegMark, FromLocalRegMark)
        .next(),
    );
    out.push(
      tb(T.SpoofGuard)
        .flow(PRIORITY.normal)
        .cookie(pod)
        .matchProtocol('ip')
        .matchInPort(port)
        .matchSrcMAC(mac(i))
        .matchSrcIP(podIp)
        .next(),
    );
    out.push(
      tb(T.L3Forwarding)
        .flow(PRIORITY.normal)
        .cookie(pod)
        .matchProtocol('ip')
        .matchDstIP(podIp)
        .setDstMAC(mac(i))
        .next(),
    );
    out.push(
      tb(T.L2ForwardingCalc)
        .flow(PRIORITY.normal)
        .cookie(pod)
        .matchDstMAC(mac(i))
        .loadToField(TargetOFPortField, port)
        .loadRegMark(OutputToOFPortRegMark)
        .next(),
    );
  }
  // Conjunctive policies: per rule, unique source addresses, one shared block of addresses, a port clause.
  const nConj = Math.floor(n * 0.45);
  const rules = 100;
  const perRule = Math.max(1, Math.floor((nConj - rules * 2 - 250) / rules));
  for (let r = 0; r < rules; r++) {
    const id = 1000 + r;
    for (let k = 0; k < perRule; k++) {
      out.push(
        tb(T.IngressRule)
          .flow(PRIORITY.normal)
          .cookie(np)
          .matchProtocol('ip')
          .matchSrcIP(ip(0x0b000000, r * perRule + k))
          .conjunction(id, 1, 3)
          .done(),
      );
    }
    out.push(
      tb(T.IngressRule)
        .flow(PRIORITY.normal)
        .cookie(np)
        .matchField(TargetOFPortField, 0x10000 + r)
        .conjunction(id, 2, 3)
        .done(),
    );
    out.push(
      tb(T.IngressRule)
        .flow(PRIORITY.low)
        .cookie(np)
        .matchConjID(id)
        .matchProtocol('ip')
        .ct({ commit: true, table: tb(T.IngressMetric), zone: CT_ZONE.CtZone })
        .done(),
    );
  }
  // 250 addresses shared by every rule: one flow each, carrying 100 conjunction() actions.
  for (let k = 0; k < 250; k++) {
    let b = tb(T.IngressRule).flow(PRIORITY.normal).cookie(np).matchProtocol('ip').matchSrcIP(ip(0x0c000000, k));
    for (let r = 0; r < rules; r++) b = b.conjunction(1000 + r, 1, 3);
    out.push(b.done());
  }
  for (let r = 0; r < rules; r++)
    out.push(
      tb(T.IngressRule)
        .flow(PRIORITY.normal)
        .cookie(np)
        .matchProtocol('tcp')
        .matchDstPort(r + 1)
        .conjunction(1000 + r, 3, 3)
        .done(),
    );
  // Service endpoints: DNAT with ct(nat) until n flows.
  for (let i = 0; out.length < n; i++) {
    out.push(
      tb(T.EndpointDNAT)
        .flow(PRIORITY.normal)
        .cookie(svc)
        .matchProtocol('tcp')
        .matchField(EndpointIPField, 0x0d000000 + i)
        .matchField(EndpointPortField, 8080)
        .matchRegMark(EpSelectedRegMark)
        .ct({
          commit: true,
          table: tb(T.AntreaPolicyEgressRule),
          zone: CT_ZONE.CtZone,
          nat: Nat.dst(ip(0x0d000000, i), 8080),
          exec: [ServiceCTMark],
        })
        .done(),
    );
  }
  return out.slice(0, n);
}

/** The modification: one more (note) action, valid with any match and next to conjunctions. */
function changed(f: Flow): Flow {
  return f.with({ actions: [...f.actions.slice(0, -1), note(new Uint8Array([0xbe, 0xef])), ...f.actions.slice(-1)] });
}

async function ofctl(args: string[]): Promise<void> {
  await runner.run('ovs-ofctl', ['-O', 'OpenFlow15', ...args], { timeoutMs: 600_000 });
}

async function countFlows(endpoint: string): Promise<number> {
  const out = (await runner.run('ovs-ofctl', ['-O', 'OpenFlow15', 'dump-aggregate', endpoint])).stdout;
  return Number(/flow_count=(\d+)/.exec(out)?.[1] ?? -1);
}

export async function run(args: string[]): Promise<void> {
  const skip = integrationSkipReason();
  if (skip !== undefined) {
    console.error(`openflow bench needs a real OVS: ${skip}`);
    process.exitCode = 2;
    return;
  }
  const nFlows = arg(args, '--flows', 100_000);
  const nModify = Math.min(arg(args, '--modify', 10_000), nFlows);
  const samples = arg(args, '--samples', 200);
  const rounds = arg(args, '--rounds', 3);

  const ns = uniqueName('atsbench-');
  await netns.ensure(ns);
  const dir = mkdtempSync(join(tmpdir(), 'ofb-'));
  const ovs = new OvsDaemons({ runDir: dir, netns: ns, runner, launcher });
  const vsctl = (...a: string[]): Promise<unknown> =>
    runner.run('ovs-vsctl', [`--db=${ovs.dbEndpoint}`, '--timeout=30', ...a]);
  let n = 0;
  const freshBridge = async (): Promise<{ name: string; endpoint: string }> => {
    const name = `brb${n++}`;
    await vsctl('add-br', name, '--', 'set', 'bridge', name, 'datapath_type=netdev', 'protocols=OpenFlow10,OpenFlow15');
    return { name, endpoint: `unix:${ovs.bridgeMgmtSocketPath(name)}` };
  };
  try {
    await ovs.start();
    const cookies = new CookieAllocator(1);
    const pipeline = new RealizedPipeline([{ name: 'Bench', category: 'Default', requiredTables: () => TABLES }]);
    // Same flows for both sides: the baseline gets them as text in a file.
    const reference = buildFlows(pipeline, cookies, nFlows);
    const file = join(dir, 'flows.txt');
    writeFileSync(file, reference.map((f) => f.toString()).join('\n') + '\n');
    const modified = reference.slice(0, nModify).map((f) => changed(f));
    const modFile = join(dir, 'mod.txt');
    writeFileSync(modFile, modified.map((f) => `modify_strict ${f.toString()}`).join('\n') + '\n');

    // ---- install, then modify: ours and the baseline alternate on fresh bridges ---------------
    interface Run {
      buildMs: number;
      installMs: number;
      modifyMs: number;
      installed: number;
    }
    const oursRuns: Run[] = [];
    const baseRuns: Run[] = [];
    const runOurs = async (): Promise<void> => {
      const br = await freshBridge();
      const conn = await OpenFlowConnection.connect({ endpoint: br.endpoint, requestTimeoutMs: 600_000 });
      await clearAll(conn);
      let t0 = performance.now();
      const flows = buildFlows(pipeline, cookies, nFlows);
      const buildMs = performance.now() - t0;
      t0 = performance.now();
      await applyBundle(conn, flows.map(op.addFlow));
      const installMs = performance.now() - t0;
      const installed = await countFlows(br.endpoint);
      const mods = flows.slice(0, nModify).map((f) => changed(f));
      t0 = performance.now();
      await applyBundle(conn, mods.map(op.modifyFlow));
      const modifyMs = performance.now() - t0;
      conn.close();
      await vsctl('del-br', br.name);
      oursRuns.push({ buildMs, installMs, modifyMs, installed });
    };
    const runBase = async (): Promise<void> => {
      const br = await freshBridge();
      await ofctl(['del-flows', br.endpoint]);
      let t0 = performance.now();
      await ofctl(['--bundle', 'add-flows', br.endpoint, file]);
      const installMs = performance.now() - t0;
      const installed = await countFlows(br.endpoint);
      t0 = performance.now();
      await ofctl(['--bundle', 'add-flows', br.endpoint, modFile]);
      const modifyMs = performance.now() - t0;
      await vsctl('del-br', br.name);
      baseRuns.push({ buildMs: 0, installMs, modifyMs, installed });
    };
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        await runOurs();
        await runBase();
      } else {
        await runBase();
        await runOurs();
      }
    }
    const best = (runs: Run[], k: keyof Run): number => Math.min(...runs.map((x) => x[k]));
    const fps = (count: number, ms: number): number => round((count / ms) * 1000, 0);
    const oInstall = best(oursRuns, 'installMs');
    const oBuild = best(oursRuns, 'buildMs');
    const bInstall = best(baseRuns, 'installMs');
    emit({
      bench: 'openflow',
      case: `install_${nFlows}_flows_one_bundle`,
      rounds,
      flows: Math.min(...oursRuns.map((x) => x.installed)),
      install_ms: round(oInstall, 0),
      flows_per_s: fps(nFlows, oInstall),
      build_ms: round(oBuild, 0),
      flows_per_s_with_build: fps(nFlows, oInstall + oBuild),
      baseline: {
        tool: 'ovs-ofctl --bundle add-flows FILE',
        flows: Math.min(...baseRuns.map((x) => x.installed)),
        install_ms: round(bInstall, 0),
        flows_per_s: fps(nFlows, bInstall),
      },
      ratio: round(bInstall / oInstall),
      ratio_with_build: round(bInstall / (oInstall + oBuild)),
    });
    const oModify = best(oursRuns, 'modifyMs');
    const bModify = best(baseRuns, 'modifyMs');
    emit({
      bench: 'openflow',
      case: `modify_${nModify}_flows_one_bundle`,
      rounds,
      modify_ms: round(oModify, 0),
      flows_per_s: fps(nModify, oModify),
      baseline: {
        tool: 'ovs-ofctl --bundle add-flows FILE (modify_strict lines)',
        modify_ms: round(bModify, 0),
        flows_per_s: fps(nModify, bModify),
      },
      ratio: round(bModify / oModify),
    });

    // ---- latency of one small change ----------------------------------------------------------
    const lat = await freshBridge();
    const client = new OpenFlowClient({ endpoint: lat.endpoint });
    const bridge = new BridgeClient({ client, pipeline, cookies });
    const ac = new AbortController();
    const running = client.run(ac.signal);
    await bridge.ready();
    const classifier = pipeline.table(T.Classifier);
    const one = (i: number): Flow =>
      classifier
        .flow(PRIORITY.low)
        .cookie(cookies.request('PodConnectivity'))
        .matchInPort(5000 + (i % 50000))
        .loadRegMark(FromPodRegMark, FromLocalRegMark)
        .next();
    for (let i = 0; i < 20; i++) await bridge.addFlows(`warm-${i}`, [one(40_000 + i)]);
    const oursLat: number[] = [];
    for (let i = 0; i < samples; i++) {
      const f = one(i);
      const s = performance.now();
      await bridge.addFlows(`pod-${i}`, [f]);
      oursLat.push(performance.now() - s);
    }
    ac.abort();
    await running;
    const baseLat: number[] = [];
    const baseSamples = Math.min(samples, 100);
    for (let i = 0; i < baseSamples; i++) {
      const text = one(20_000 + i).toString();
      const s = performance.now();
      await ofctl(['add-flow', lat.endpoint, text]);
      baseLat.push(performance.now() - s);
    }
    await vsctl('del-br', lat.name);
    const p50 = percentile(oursLat, 50);
    const bp50 = percentile(baseLat, 50);
    emit({
      bench: 'openflow',
      case: 'one_flow_change_latency',
      samples,
      p50_ms: round(p50, 3),
      p99_ms: round(percentile(oursLat, 99), 3),
      baseline: {
        tool: 'ovs-ofctl add-flow (one process per change)',
        samples: baseSamples,
        p50_ms: round(bp50, 3),
        p99_ms: round(percentile(baseLat, 99), 3),
      },
      ratio: round(bp50 / p50, 1),
    });
  } finally {
    await ovs.stop();
    await netns.delete(ns);
    rmSync(dir, { recursive: true, force: true });
  }
}
