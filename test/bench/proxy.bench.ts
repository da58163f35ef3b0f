/**
 * `npm run bench -- proxy [--services N] [--endpoints N] [--samples N] [--rounds N]`
 *
 * AntreaProxy's programming cost against a private ovs-vswitchd (userspace datapath), through the
 * real proxier and bridge client (flow and group computation, one atomic bundle, OVS commit):
 *  - program: the first sync of N (default 1,000) ClusterIP Services with E (default 10) Endpoints
 *    each, vs the same for 1 Service; ratio = per-Service cost with 1 Service / per-Service cost
 *    with N (> 1: the cost per Service falls as the count grows);
 *  - endpoint-change: the latency of one Endpoint change (one slice updated, one sync) with N
 *    Services installed vs with 1 (median of --samples, default 50); ratio = 1-Service latency /
 *    N-Service latency (close to 1: a change costs the same whatever the size).
 * Both sizes run `--rounds` times (default 3), alternating, each on a fresh bridge: the best first
 * sync and the median of all change samples are reported (the machine is shared; this damps noise).
 * The installed groups are counted in OVS after the first sync to check the work was done.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BridgeClient } from '../../src/common/agent/openflow/bridge.ts';
import { CookieAllocator } from '../../src/common/agent/openflow/cookie.ts';
import { RealizedPipeline } from '../../src/common/agent/openflow/framework.ts';
import { PodConnectivityFeature } from '../../src/common/agent/openflow/pod-connectivity.ts';
import { ServiceFeature } from '../../src/common/agent/openflow/service.ts';
import { Proxier } from '../../src/common/agent/proxy/proxier.ts';
import type { EndpointSlice, Service } from '../../src/common/k8s/objects.ts';
import { OpenFlowClient } from '../../src/common/ovs/openflow/client.ts';
import { OpenFlowConnection } from '../../src/common/ovs/openflow/connection.ts';
import { dumpGroups } from '../../src/common/ovs/openflow/ops.ts';
import { OvsDaemons } from '../../src/platform/linux/ovs-daemons.ts';
import { integrationSkipReason, launcher, netns, runner, uniqueName } from '../helpers/env.ts';
import { emit, percentile, round } from './lib.ts';

function arg(args: readonly string[], name: string, dflt: number): number {
  const i = args.indexOf(name);
  const v = i < 0 ? undefined : args[i + 1];
  return v === undefined ? dflt : Number(v);
}

function service(i: number): Service {
  return {
    metadata: { namespace: 'bench', name: `svc-${i}`, resourceVersion: '1' },
    spec: {
      type: 'ClusterIP',
      clusterIP: `10.96.${Math.floor(i / 250)}.${(i % 250) + 1}`,
      ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
    },
  };
}

function slice(i: number, endpoints: number, shift = 0): EndpointSlice {
  return {
    metadata: { namespace: 'bench', name: `svc-${i}-1`, labels: { 'kubernetes.io/service-name': `svc-${i}` } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: Array.from({ length: endpoints }, (_, j) => {
      const n = i * endpoints + j + shift;
      return {
        addresses: [`10.${16 + Math.floor(n / 62500)}.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`],
        nodeName: j % 2 === 0 ? 'node-1' : 'node-2',
        conditions: { ready: true },
      };
    }),
  };
}

interface Measured {
  programMs: number;
  groups: number;
  changeMs: number[];
}

export async function run(args: string[]): Promise<void> {
  const skip = integrationSkipReason();
  if (skip !== undefined) {
    console.error(`proxy bench needs a real OVS: ${skip}`);
    process.exitCode = 2;
    return;
  }
  const nServices = arg(args, '--services', 1000);
  const nEndpoints = arg(args, '--endpoints', 10);
  const samples = arg(args, '--samples', 50);
  const rounds = arg(args, '--rounds', 3);
  const ns = uniqueName('atsproxy-');
  await netns.ensure(ns);
  const dir = mkdtempSync(join(tmpdir(), 'pxb-'));
  const ovs = new OvsDaemons({ runDir: dir, netns: ns, runner, launcher });
  let nBridge = 0;
  const measure = async (count: number): Promise<Measured> => {
    const name = `brp${nBridge++}`;
    await runner.run('ovs-vsctl', [
      `--db=${ovs.dbEndpoint}`,
      '--timeout=30',
      'add-br',
      name,
      '--',
      'set',
      'bridge',
      name,
      'datapath_type=netdev',
      'protocols=OpenFlow15',
    ]);
    const endpoint = `unix:${ovs.bridgeMgmtSocketPath(name)}`;
    const cookies = new CookieAllocator(1);
    const gateway = { ofport: 32769, mac: '0a:00:00:00:00:01', ips: ['10.10.1.1'] };
    const pc = new PodConnectivityFeature({ cookies, gateway, tunnel: { ofport: 32768 }, podCIDRs: ['10.10.1.0/24'] });
    const feature = new ServiceFeature({ cookies, gateway, nodePortAddresses: ['192.0.2.10'] });
    const client = new OpenFlowClient({ endpoint });
    const bridge = new BridgeClient({ client, pipeline: new RealizedPipeline([pc, feature]), cookies });
    const ac = new AbortController();
    const running = client.run(ac.signal);
    try {
      await bridge.ready();
      const proxier = new Proxier({ datapath: bridge, feature, nodeName: 'node-1' });
      for (let i = 0; i < count; i++) {
        proxier.setService(service(i));
        proxier.setSlice(slice(i, nEndpoints));
      }
      const t0 = performance.now();
      await proxier.sync();
      const programMs = performance.now() - t0;
      const conn = await OpenFlowConnection.connect({ endpoint });
      const groups = (await dumpGroups(conn)).length;
      conn.close();
      const changeMs: number[] = [];
      let cur = slice(0, nEndpoints);
      for (let s = 0; s < samples; s++) {
        // One Endpoint of Service 0 replaced by a new address, then back.
        const next = slice(0, nEndpoints, s % 2 === 0 ? 1_000_000 : 0);
        const t1 = performance.now();
        proxier.setSlice(next, cur);
        await proxier.sync();
        changeMs.push(performance.now() - t1);
        cur = next;
      }
      return { programMs, groups, changeMs };
    } finally {
      ac.abort();
      await running.catch(() => undefined);
    }
  };
  try {
    await ovs.start();
    await measure(1); // warm-up (JIT, OVS upcall threads)
    // Alternate the two sizes; keep the best first sync and all change samples of each.
    const one: Measured = { programMs: Infinity, groups: 0, changeMs: [] };
    const many: Measured = { programMs: Infinity, groups: 0, changeMs: [] };
    for (let r = 0; r < rounds; r++) {
      for (const [into, count] of [
        [one, 1],
        [many, nServices],
      ] as const) {
        const m = await measure(count);
        into.programMs = Math.min(into.programMs, m.programMs);
        into.groups = m.groups;
        into.changeMs.push(...m.changeMs);
      }
    }
    if (many.groups !== nServices || one.groups !== 1) {
      throw new Error(`expected ${nServices} and 1 groups in OVS, found ${many.groups} and ${one.groups}`);
    }
    const perOne = one.programMs;
    const perMany = many.programMs / nServices;
    emit({
      bench: 'proxy',
      case: `program ${nServices} Services x ${nEndpoints} Endpoints`,
      services: nServices,
      endpoints_per_service: nEndpoints,
      program_ms: round(many.programMs, 0),
      per_service_ms: round(perMany, 3),
      groups_in_ovs: many.groups,
      baseline: { services: 1, program_ms: round(one.programMs, 2), per_service_ms: round(perOne, 3) },
      ratio: round(perOne / perMany),
    });
    const p50Many = percentile(many.changeMs, 50);
    const p50One = percentile(one.changeMs, 50);
    emit({
      bench: 'proxy',
      case: `one Endpoint change with ${nServices} Services`,
      samples: samples * rounds,
      change_p50_ms: round(p50Many),
      change_p99_ms: round(percentile(many.changeMs, 99)),
      baseline: {
        services: 1,
        change_p50_ms: round(p50One),
        change_p99_ms: round(percentile(one.changeMs, 99)),
      },
      ratio: round(p50One / p50Many),
    });
  } finally {
    await ovs.stop();
    await netns.delete(ns);
    rmSync(dir, { recursive: true, force: true });
  }
}
