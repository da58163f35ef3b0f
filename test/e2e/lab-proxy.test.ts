/**
 * AntreaProxy in the lab: a 2-Node lab on antrea-agent (each agent watching the lab's API server with
 * its Node-bound kubeconfig, `antreaProxy.proxyAll: true`), Services and EndpointSlices made by the
 * lab's API server from real Pods, and real TCP connections from a Pod and from the lab's external
 * namespace. What holds: a ClusterIP Service with 3 Endpoints on 2 Nodes spreads 300 connections over
 * all of them; an Endpoint taken out of the Service (its Pod relabelled, so it still answers if
 * reached) gets no new connections; a NodePort answers on both Nodes' IPs from outside the cluster
 * with Endpoints on either Node; ClientIP session affinity keeps a client on one Endpoint; a
 * NetworkPolicy on the Endpoints applies after DNAT (a client it denies is blocked through the
 * ClusterIP too, on the same Node and across Nodes, and gets through again once the policy is
 * gone). One lab for all of it. Skipped where the tree has no antrea-agent.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeObject, Pod } from '../../src/common/k8s/objects.ts';
import { podRecords } from '../../src/lab/control.ts';
import { readState } from '../../src/lab/state.ts';
import { integrationSkipReason } from '../helpers/env.ts';
import { eventually, ROOT, startLab } from '../helpers/lab.ts';
import { connectMany } from '../helpers/service-harness.ts';

const agentMissing = !existsSync(join(ROOT, 'src', 'cmd', 'antrea-agent.ts'))
  ? 'no src/cmd/antrea-agent.ts in this tree yet ([pod-networking])'
  : undefined;
const skip = integrationSkipReason() ?? agentMissing;
if (skip !== undefined) t.plan(0, skip);

const NS = 'svc';
const PODS = [
  { name: 'web-1', node: 'node-1', web: true },
  { name: 'web-2', node: 'node-2', web: true },
  { name: 'web-3', node: 'node-1', web: true },
  { name: 'client', node: 'node-2', web: false },
  { name: 'other', node: 'node-1', web: false },
] as const;

interface Service extends KubeObject {
  spec?: { clusterIP?: string; ports?: { nodePort?: number }[] };
}
interface Slice extends KubeObject {
  endpoints?: { addresses?: string[]; conditions?: { ready?: boolean } }[];
}

function pod(name: string, node: string, web: boolean): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: web ? { app: 'web' } : { role: name } },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 1,
      containers: [
        { name: 'c', image: 'agnhost', ...(web ? { ports: [{ containerPort: 8080, protocol: 'TCP' }] } : {}) },
      ],
    },
  };
}

function service(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NS },
    spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }], ...spec },
  };
}

const total = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0);

t.test('Services on a 2-Node antrea lab', async (t) => {
  const lab = await startLab(t, 'proxy', ['--nodes', '2', '--cni', 'antrea']);
  const state = readState(lab.paths);
  if (state === undefined) throw new Error('no state file');
  const c = lab.client;

  await c.create({ apiVersion: 'v1', resource: 'namespaces' }, { metadata: { name: NS } });
  for (const p of PODS)
    await c.create({ apiVersion: 'v1', resource: 'pods', namespace: NS }, pod(p.name, p.node, p.web));
  const svcRef = { apiVersion: 'v1', resource: 'services', namespace: NS } as const;
  await c.create(svcRef, service('web', {}));
  await c.create(svcRef, service('web-np', { type: 'NodePort' }));
  await c.create(svcRef, service('web-sticky', { sessionAffinity: 'ClientIP' }));

  await eventually(
    'the Pods run',
    async () => {
      const pods = (await c.list<Pod>({ apiVersion: 'v1', resource: 'pods', namespace: NS })).items;
      const records = podRecords(lab.paths).filter((r) => r.namespace === NS);
      return pods.filter((p) => p.status?.phase === 'Running').length === PODS.length && records.length === PODS.length;
    },
    120_000,
  );
  const records = podRecords(lab.paths).filter((r) => r.namespace === NS);
  const clientNetns = records.find((r) => r.name === 'client')?.netns ?? '';
  t.equal(
    new Set(records.filter((r) => r.name.startsWith('web-')).map((r) => r.node)).size,
    2,
    'the Endpoints are on both Nodes',
  );
  const readyEndpoints = async (svc: string): Promise<string[]> => {
    const slices = await c.list<Slice>(
      { apiVersion: 'discovery.k8s.io/v1', resource: 'endpointslices', namespace: NS },
      { labelSelector: `kubernetes.io/service-name=${svc}` },
    );
    return slices.items.flatMap((s) =>
      (s.endpoints ?? []).filter((e) => e.conditions?.ready !== false).flatMap((e) => e.addresses ?? []),
    );
  };
  for (const s of ['web', 'web-np', 'web-sticky']) {
    await eventually(`${s} has 3 ready Endpoints`, async () => (await readyEndpoints(s)).length === 3, 60_000);
  }
  const get = (name: string): Promise<Service> => c.get<Service>({ ...svcRef, name });
  const clusterIP = (await get('web')).spec?.clusterIP ?? '';
  const stickyIP = (await get('web-sticky')).spec?.clusterIP ?? '';
  const nodePort = (await get('web-np')).spec?.ports?.[0]?.nodePort ?? 0;
  t.ok(nodePort > 0, `web-np has NodePort ${nodePort}`);

  // The agents program the Service once they saw its EndpointSlice: wait until it answers.
  await eventually(
    'the ClusterIP answers',
    async () => {
      const r = await connectMany(clientNetns, clusterIP, 80, 5, 1000);
      return (r['timeout'] ?? 0) === 0 && total(r) === 5 && Object.keys(r).every((k) => k.startsWith('web-'));
    },
    30_000,
  );

  await t.test('a ClusterIP spreads 300 connections over its 3 Endpoints on both Nodes', async (t) => {
    const counts = await connectMany(clientNetns, clusterIP, 80, 300);
    t.comment(`ClusterIP ${clusterIP}: ${JSON.stringify(counts)}`);
    t.same(Object.keys(counts).sort(), ['web-1', 'web-2', 'web-3'], 'only Endpoints answered, every one of them');
    t.equal(total(counts), 300, 'every connection answered');
    // Uniform choice: 100 each expected; below 50 is more than 6 standard deviations away.
    for (const [ep, n] of Object.entries(counts)) t.ok(n >= 50, `${ep}: ${n} connections`);
  });

  await t.test('a NodePort answers from outside on both Nodes, with Endpoints on either Node', async (t) => {
    for (const n of state.nodes) {
      const counts = await connectMany(`${lab.prefix}external`, n.nodeIP, nodePort, 60);
      t.comment(`${n.nodeIP}:${nodePort} from ${lab.prefix}external: ${JSON.stringify(counts)}`);
      t.same(Object.keys(counts).sort(), ['web-1', 'web-2', 'web-3'], `${n.name}: every Endpoint answered`);
      t.equal(total(counts), 60, `${n.name}: every connection answered`);
    }
  });

  await t.test('ClientIP session affinity keeps the client on one Endpoint', async (t) => {
    const counts = await connectMany(clientNetns, stickyIP, 80, 60);
    t.comment(`sticky ${stickyIP}: ${JSON.stringify(counts)}`);
    t.equal(Object.keys(counts).length, 1, 'one Endpoint answered every connection');
    t.ok(Object.keys(counts)[0]?.startsWith('web-'), 'an Endpoint');
    t.equal(total(counts), 60, 'every connection answered');
  });

  await t.test('an Endpoint taken out of the Service gets no new connections', async (t) => {
    // Relabelled, not deleted: web-3 still answers if anything still sends it connections.
    await c.patch(
      { apiVersion: 'v1', resource: 'pods', namespace: NS, name: 'web-3' },
      {
        metadata: { labels: { app: 'retired' } },
      },
    );
    const web3 = records.find((r) => r.name === 'web-3')?.ips[0] ?? '';
    await eventually('web-3 left the EndpointSlice', async () => !(await readyEndpoints('web')).includes(web3), 30_000);
    const direct = await connectMany(clientNetns, web3, 8080, 1);
    t.same(direct, { 'web-3': 1 }, 'web-3 itself still answers');
    // The agents apply the EndpointSlice change asynchronously: allow them 20 s.
    await eventually(
      'the agents dropped web-3',
      async () => (await connectMany(clientNetns, clusterIP, 80, 20, 1000))['web-3'] === undefined,
      20_000,
    );
    const counts = await connectMany(clientNetns, clusterIP, 80, 150);
    t.comment(`after removing web-3: ${JSON.stringify(counts)}`);
    t.same(Object.keys(counts).sort(), ['web-1', 'web-2'], 'the two remaining Endpoints, and only them');
    t.equal(total(counts), 150, 'every connection answered');
  });

  await t.test('a NetworkPolicy on the Endpoints applies after DNAT', async (t) => {
    const otherNetns = records.find((r) => r.name === 'other')?.netns ?? '';
    const npRef = { apiVersion: 'networking.k8s.io/v1', resource: 'networkpolicies', namespace: NS } as const;
    // The Endpoints (web-1 on node-1, web-2 on node-2) admit only the Pod labelled role=client.
    await c.create(npRef, {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'web-from-client', namespace: NS },
      spec: {
        podSelector: { matchLabels: { app: 'web' } },
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ podSelector: { matchLabels: { role: 'client' } } }], ports: [{ port: 8080 }] }],
      },
    });
    await eventually(
      'the policy is enforced',
      async () => (await connectMany(otherNetns, clusterIP, 80, 4, 1000))['timeout'] === 4,
      30_000,
    );
    const denied = await connectMany(otherNetns, clusterIP, 80, 20, 1000);
    t.comment(`denied client through ${clusterIP}: ${JSON.stringify(denied)}`);
    t.same(denied, { timeout: 20 }, 'the denied client gets no answer through the ClusterIP, from either Endpoint');
    const allowed = await connectMany(clientNetns, clusterIP, 80, 60);
    t.comment(`allowed client through ${clusterIP}: ${JSON.stringify(allowed)}`);
    t.same(Object.keys(allowed).sort(), ['web-1', 'web-2'], 'the allowed client still reaches both Endpoints');
    t.equal(total(allowed), 60, 'every allowed connection answered');

    await c.delete({ ...npRef, name: 'web-from-client' });
    await eventually(
      'the denied client gets through once the policy is gone',
      async () => (await connectMany(otherNetns, clusterIP, 80, 4, 1000))['timeout'] === undefined,
      30_000,
    );
    const after = await connectMany(otherNetns, clusterIP, 80, 40);
    t.same(Object.keys(after).sort(), ['web-1', 'web-2'], 'without the policy it reaches both Endpoints');
    t.equal(total(after), 40, 'every connection answered');
  });
});
