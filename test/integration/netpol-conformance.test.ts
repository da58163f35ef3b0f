/**
 * The Kubernetes NetworkPolicy conformance cases (../shared/conformance/netpol/k8s) on one Node,
 * end to end with real packets: the controller's computation (src/controller/networkpolicy, fed the
 * case's Namespaces, Pods and NetworkPolicies) produces this Node's controlplane objects, the
 * antrea-agent process enforces them (through its policy file), and every step's truth table is
 * probed with TCP and UDP between the nine Pods x/a..z/c (all on this Node, probed by Pod IP, which
 * the cases allow). SCTP probes are reported as skipped (no kernel SCTP here). The multi-Node run
 * (any placement, Service ClusterIPs) belongs to `antrea-lab conformance`.
 *
 * CONFORMANCE_CASES=14,20 restricts the run to some case numbers.
 */
import t, { type Test } from 'tap';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NetworkPolicyController as ControllerComputation } from '../../src/controller/networkpolicy/controller.ts';
import {
  addressGroupsFor,
  appliedToGroupsFor,
  networkPoliciesFor,
} from '../../src/controller/networkpolicy/watch-events.ts';
import type * as k8s from '../../src/common/k8s/objects.ts';
import { nullLogger } from '../../src/common/util/log.ts';
import type { ProcessHandle } from '../../src/common/util/exec.ts';
import { AgentNode, type PodRef } from '../helpers/agent-node.ts';
import { integrationSkipReason, launcher, runner, shortTempDir, uniqueName } from '../helpers/env.ts';

const skip = integrationSkipReason();
const CASES_DIR = join(import.meta.dirname, '..', '..', '..', '..', 'shared', 'conformance', 'netpol', 'k8s');
const casesDir = ['/work/shared/conformance/netpol/k8s', CASES_DIR].find((d) => existsSync(d));
if (skip !== undefined) t.plan(0, skip);
else if (casesDir === undefined)
  t.plan(0, 'the conformance cases (../shared/conformance/netpol/k8s) are not on this machine');

const PROBE = join(import.meta.dirname, '..', 'helpers', 'netpol-probe.ts');
const NODE = 'node-1';
const NAMESPACES = ['x', 'y', 'z'] as const;
const PODS = ['a', 'b', 'c'] as const;
const PORTS = [80, 81];

type Pair = [string, string];
interface Probe {
  port: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  ignoreLoopback: boolean;
  expect: { default: boolean; allow?: Pair[]; deny?: Pair[] };
}
interface Step {
  description?: string;
  delete?: string[];
  apply?: k8s.NetworkPolicy[];
  namespaceLabels?: Record<string, Record<string, string>>;
  podLabels?: Record<string, Record<string, string>>;
  probes: Probe[];
}
interface Case {
  id: string;
  model: string;
  steps: Step[];
}

interface LabPod {
  readonly key: string;
  readonly ns: string;
  readonly netns: string;
  readonly ip: string;
}

function podObject(ns: string, name: string, ip: string, labels: Record<string, string>): k8s.Pod {
  const containers: k8s.Container[] = [];
  for (const port of PORTS) {
    for (const proto of ['TCP', 'UDP', 'SCTP']) {
      const p = proto.toLowerCase();
      containers.push({
        name: `cont-${port}-${p}`,
        ports: [{ name: `serve-${port}-${p}`, containerPort: port, protocol: proto }],
      });
    }
  }
  return {
    metadata: { name, namespace: ns, uid: `uid-${ns}-${name}`, labels },
    spec: { nodeName: NODE, containers },
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
  };
}

/** Substitutes the runtime placeholders ({{hostcidr:NS/POD}}, {{cidr:NS/POD/N}}, {{ip:NS/POD}}). */
function substitute(text: string, pods: ReadonlyMap<string, LabPod>): string {
  const ipOf = (k: string): string => {
    const p = pods.get(k);
    if (p === undefined) throw new Error(`placeholder names unknown Pod ${k}`);
    return p.ip;
  };
  return text
    .replace(/\{\{hostcidr:([a-z]\/[a-z])\}\}/g, (_m, k: string) => `${ipOf(k)}/32`)
    .replace(/\{\{ip:([a-z]\/[a-z])\}\}/g, (_m, k: string) => ipOf(k))
    .replace(/\{\{cidr:([a-z]\/[a-z])\/(\d+)\}\}/g, (_m, k: string, len: string) => {
      const n = ipOf(k)
        .split('.')
        .reduce((acc, x) => acc * 256 + Number(x), 0);
      const size = 2 ** (32 - Number(len));
      const base = n - (n % size);
      return `${[base >>> 24, (base >>> 16) & 255, (base >>> 8) & 255, base & 255].join('.')}/${len}`;
    });
}

t.test('Kubernetes NetworkPolicy conformance on one Node', async (t) => {
  const dir = shortTempDir(t, 'conf');
  const file = join(dir, 'policies.json');
  const write = (o: unknown): void => {
    writeFileSync(`${file}.tmp`, JSON.stringify(o));
    renameSync(`${file}.tmp`, file);
  };
  write({ networkpolicies: [], addressgroups: [], appliedtogroups: [] });
  const node = await AgentNode.create(t, { podCIDR: '10.10.20.0/24', extraArgs: ['--policy-file', file] });
  await node.start();
  const loads = (): number => node.log().split('policies loaded').length - 1;

  // The nine Pods, each serving TCP and UDP on 80 and 81.
  const pods = new Map<string, LabPod>();
  for (const ns of NAMESPACES) {
    for (const name of PODS) {
      const ref: PodRef = { containerId: uniqueName('ctr'), netns: await node.podNetns(t), name, namespace: ns };
      const r = await node.cni('ADD', ref);
      if (r.exitCode !== 0) throw new Error(`ADD ${ns}/${name}: ${r.stdout}`);
      const ip = (r.json?.['ips'] as { address: string }[])[0]?.address.split('/')[0] ?? '';
      const netns = ref.netns.replace(/^\/run\/netns\//, '');
      pods.set(`${ns}/${name}`, { key: `${ns}/${name}`, ns, netns, ip });
      const log = join(dir, `serve-${ns}-${name}.log`);
      const p: ProcessHandle = await launcher.launch(
        'ip',
        ['netns', 'exec', netns, process.execPath, PROBE, 'serve', PORTS.join(','), PORTS.join(',')],
        { logFile: log },
      );
      t.teardown(async () => {
        if (p.running()) process.kill(p.pid, 'SIGKILL');
        await p.exited;
      });
    }
  }
  await new Promise((r) => setTimeout(r, 500));

  /** One truth table: from every Pod to every Pod at once (per source Pod, all targets in parallel). */
  const matrix = async (
    proto: 'tcp' | 'udp',
    port: number,
    only?: ReadonlySet<string>,
  ): Promise<Map<string, boolean>> => {
    const out = new Map<string, boolean>();
    await Promise.all(
      [...pods.values()].map(async (from) => {
        const targets = [...pods.values()].filter((to) => only === undefined || only.has(`${from.key}>${to.key}`));
        if (targets.length === 0) return;
        const r = await runner.run(
          'ip',
          [
            'netns',
            'exec',
            from.netns,
            process.execPath,
            PROBE,
            'multi',
            proto,
            String(port),
            '1000',
            ...targets.map((x) => x.ip),
          ],
          { timeoutMs: 30_000 },
        );
        const byIp = new Map(
          r.stdout
            .trim()
            .split('\n')
            .map((l) => l.split(' ') as [string, string]),
        );
        for (const to of targets) out.set(`${from.key}>${to.key}`, byIp.get(to.ip) === 'ok');
      }),
    );
    return out;
  };

  const filter = process.env['CONFORMANCE_CASES']?.split(',').map((x) => x.padStart(2, '0'));
  const files = readdirSync(casesDir ?? '')
    .filter((f) => f.endsWith('.json') && (filter === undefined || filter.some((n) => f.startsWith(`${n}-`))))
    .sort();
  let passedCases = 0;
  for (const f of files) {
    const c = JSON.parse(readFileSync(join(casesDir ?? '', f), 'utf8')) as Case;
    await t.test(c.id, async (t: Test) => {
      // A fresh computation per case: original labels, no policies.
      const comp = new ControllerComputation({ logger: nullLogger });
      const nsLabels = new Map<string, Record<string, string>>(
        NAMESPACES.map((n) => [n, { 'kubernetes.io/metadata.name': n, ns: n }]),
      );
      const podLabels = new Map<string, Record<string, string>>(
        [...pods.keys()].map((k) => [k, { pod: k.split('/')[1] ?? '' }]),
      );
      comp.handleNode('ADDED', { metadata: { name: NODE, uid: 'node-uid' }, spec: { podCIDR: '10.10.20.0/24' } });
      for (const [n, labels] of nsLabels)
        comp.handleNamespace('ADDED', { metadata: { name: n, uid: `ns-${n}`, labels } });
      for (const p of pods.values())
        comp.handlePod('ADDED', podObject(p.ns, p.key.split('/')[1] ?? '', p.ip, podLabels.get(p.key) ?? {}));
      comp.publish();
      const policies = new Map<string, k8s.NetworkPolicy>();
      let stepNo = 0;
      for (const step of c.steps) {
        stepNo++;
        for (const d of step.delete ?? []) {
          const [, ns, name] = d.split('/');
          const key = `${ns}/${name}`;
          const old = policies.get(key);
          if (old !== undefined) comp.handleNetworkPolicy('DELETED', old);
          policies.delete(key);
        }
        for (const raw of step.apply ?? []) {
          const obj = JSON.parse(substitute(JSON.stringify(raw), pods)) as k8s.NetworkPolicy;
          const key = `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
          const withUid: k8s.NetworkPolicy = { ...obj, metadata: { ...obj.metadata, uid: `np-${key}` } };
          comp.handleNetworkPolicy(policies.has(key) ? 'MODIFIED' : 'ADDED', withUid);
          policies.set(key, withUid);
        }
        for (const [n, labels] of Object.entries(step.namespaceLabels ?? {})) {
          const merged = { ...nsLabels.get(n), ...labels };
          nsLabels.set(n, merged);
          comp.handleNamespace('MODIFIED', { metadata: { name: n, uid: `ns-${n}`, labels: merged } });
        }
        for (const [k, labels] of Object.entries(step.podLabels ?? {})) {
          const merged = { ...podLabels.get(k), ...labels };
          podLabels.set(k, merged);
          const p = pods.get(k);
          if (p !== undefined) comp.handlePod('MODIFIED', podObject(p.ns, k.split('/')[1] ?? '', p.ip, merged));
        }
        comp.flush();
        // This Node's objects, as the controller would stream them; wait until the agent realized them.
        const before = loads();
        write({
          networkpolicies: networkPoliciesFor(comp.networkPolicies, NODE),
          addressgroups: addressGroupsFor(comp.addressGroups, NODE),
          appliedtogroups: appliedToGroupsFor(comp.appliedToGroups, NODE),
        });
        const deadline = Date.now() + 20_000;
        while (loads() === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        t.ok(loads() > before, `step ${stepNo}: the agent realized the policies`);

        for (const probe of step.probes) {
          if (probe.protocol === 'SCTP') {
            t.pass(`step ${stepNo}: SCTP ${probe.port} truth table`, {
              skip: 'SCTP probes: no kernel SCTP on this machine',
            });
            continue;
          }
          const want = (from: string, to: string): boolean => {
            if (probe.expect.deny?.some(([a, b]) => a === from && b === to) === true) return false;
            if (probe.expect.allow?.some(([a, b]) => a === from && b === to) === true) return true;
            return probe.expect.default;
          };
          const proto = probe.protocol === 'TCP' ? 'tcp' : 'udp';
          let got = await matrix(proto, probe.port);
          // Re-probe mismatches a few times (a lost first packet is not a policy verdict).
          for (let i = 0; i < 3; i++) {
            const wrong = new Set(
              [...got]
                .filter(([k, v]) => {
                  const [from = '', to = ''] = k.split('>');
                  return !(probe.ignoreLoopback && from === to) && v !== want(from, to);
                })
                .map(([k]) => k),
            );
            if (wrong.size === 0) break;
            const again = await matrix(proto, probe.port, wrong);
            got = new Map([...got, ...again]);
          }
          const mismatches: string[] = [];
          for (const [k, v] of got) {
            const [from = '', to = ''] = k.split('>');
            if (probe.ignoreLoopback && from === to) continue;
            if (v !== want(from, to))
              mismatches.push(
                `${from} → ${to}: ${v ? 'connected' : 'blocked'}, expected ${v ? 'blocked' : 'connected'}`,
              );
          }
          t.same(mismatches, [], `step ${stepNo}: ${probe.protocol} ${probe.port} truth table (81 pairs)`);
        }
      }
      if (!t.passing()) return;
      passedCases++;
    });
  }
  t.comment(`${passedCases} of ${files.length} cases passed`);
});
