/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- client-node model classes are plain data shapes; object literals are how its API is used. */
/**
 * The controlplane end to end against the local control plane: antrea-lab's embedded Kubernetes API
 * server (HTTPS, real TokenReview / SubjectAccessReview / RBAC from build/yamls/antrea-rbac.yml,
 * Pod-bound ServiceAccount tokens), the real antrea-controller (ControllerApp: informers,
 * computation, self-signed certificate in a Secret, CA in ConfigMap antrea-ca, heartbeat) running on
 * the antrea-controller ServiceAccount's token, and several simulated agents using the agent-side
 * PolicyWatcher with Pod-bound antrea-agent tokens, the CA read from the ConfigMap and on-disk
 * snapshots.
 *
 * Checked: every agent holds exactly its Node's objects (compared with a brute-force recomputation
 * from the API server's objects) through Pod moves, label changes and policy edits; Node binding;
 * bad tokens; a controller restart resumes every agent to the correct full state; an agent started
 * while the controller is down enforces its snapshot; status reports reach the controller; bad
 * query parameters; the heartbeat object; certificate rotation.
 */
import { isDeepStrictEqual } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import t, { type Test } from 'tap';
import type { ControlplaneResource } from '../../src/common/apis/controlplane/codec.ts';
import type { GroupMember } from '../../src/common/apis/controlplane/types.ts';
import {
  type ControllerEndpoint,
  controllerRequest,
  PolicyWatcher,
  type ReplaceSource,
  type ResourceEvent,
  ResourceState,
  SnapshotStore,
  StatusReporter,
} from '../../src/common/agent/controlplane/index.ts';
import type { Namespace, NetworkPolicy, Pod } from '../../src/common/k8s/objects.ts';
import { trimNamespace, trimNetworkPolicy, trimPod } from '../../src/common/k8s/objects.ts';
import { Backoff } from '../../src/common/util/backoff.ts';
import { ControllerApp } from '../../src/controller/app.ts';
import { SelfSignedCertificateProvider } from '../../src/controller/certificate.ts';
import { DEFAULT_CONTROLLER_CONFIG } from '../../src/controller/config.ts';
import { createControllerKubeClient } from '../../src/controller/kube.ts';
import { startApiServer, type ApiServer } from '../../src/lab/apiserver/server.ts';
import { typeOf } from '../../src/lab/apiserver/core.ts';
import { shortTempDir } from '../helpers/env.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { memberKey, referenceCompute } from '../unit/fixtures/np-reference.ts';
import { expectedView } from '../unit/fixtures/agent-sim.ts';
import { until } from '../helpers/wait.ts';
import { applyManifest } from '../helpers/controlplane-node.ts';

const NS = 'kube-system';
const NODES = ['n1', 'n2', 'n3'];
const CP = '/apis/controlplane.antrea.io/v1beta2';

/** The cluster, driven through the API server's registry. */
class Cluster {
  readonly s: ApiServer;
  constructor(s: ApiServer) {
    this.s = s;
  }
  private type(res: string, group = ''): ReturnType<typeof typeOf> {
    return typeOf(this.s.types, group, res);
  }
  namespace(name: string, labels: Record<string, string> = {}): void {
    const cur = this.s.registry.find('/namespaces', name);
    const body = { metadata: { name, labels } };
    if (cur === undefined) this.s.registry.create(this.type('namespaces'), undefined, body);
    else
      this.s.registry.update(this.type('namespaces'), undefined, name, {
        ...cur.obj,
        metadata: { ...cur.obj.metadata, labels },
      });
  }
  pod(ns: string, name: string, labels: Record<string, string>, node: string, ip?: string): void {
    const t = this.type('pods');
    this.s.registry.create(t, ns, {
      metadata: { name, namespace: ns, labels },
      spec: { nodeName: node, containers: [{ name: 'c', image: 'busybox' }] },
    });
    if (ip !== undefined) {
      const cur = this.s.registry.get(t, ns, name).obj;
      this.s.registry.update(
        t,
        ns,
        name,
        { ...cur, status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } },
        {
          subresource: 'status',
        },
      );
    }
  }
  relabel(ns: string, name: string, labels: Record<string, string>): void {
    const cur = this.s.registry.get(this.type('pods'), ns, name).obj;
    this.s.registry.update(this.type('pods'), ns, name, { ...cur, metadata: { ...cur.metadata, labels } });
  }
  deletePod(ns: string, name: string): void {
    this.s.registry.delete(this.type('pods'), ns, name, { gracePeriodSeconds: 0 });
  }
  /** A Pod move: nodeName is immutable, so the Pod is deleted and created again elsewhere. */
  movePod(ns: string, name: string, node: string, ip: string): void {
    const cur = this.s.registry.get(this.type('pods'), ns, name).obj;
    this.deletePod(ns, name);
    this.pod(ns, name, cur.metadata.labels ?? {}, node, ip);
  }
  policy(ns: string, name: string, spec: Record<string, unknown>): void {
    const t = this.type('networkpolicies', 'networking.k8s.io');
    const cur = this.s.registry.find('networking.k8s.io/networkpolicies', `${ns}/${name}`);
    if (cur === undefined) this.s.registry.create(t, ns, { metadata: { name, namespace: ns }, spec });
    else this.s.registry.update(t, ns, name, { ...cur.obj, spec });
  }
  deletePolicy(ns: string, name: string): void {
    this.s.registry.delete(this.type('networkpolicies', 'networking.k8s.io'), ns, name);
  }
  /** The reference computation over the API server's current objects. */
  async expected(): Promise<ReturnType<typeof referenceCompute>> {
    const all = async <T>(res: string, group = ''): Promise<T[]> =>
      (await this.s.registry.list(this.type(res, group), undefined, {})).items.map((e) => e.obj as unknown as T);
    const [namespaces, pods, policies] = await Promise.all([
      all<Namespace>('namespaces'),
      all<Pod>('pods'),
      all<NetworkPolicy>('networkpolicies', 'networking.k8s.io'),
    ]);
    const key = (o: { metadata?: { namespace?: string; name?: string } }): string =>
      `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
    return referenceCompute({
      namespaces: new Map(namespaces.map((n) => [n.metadata?.name ?? '', trimNamespace(n)])),
      pods: new Map(pods.map((p) => [key(p), trimPod(p)])),
      policies: new Map(policies.map((p) => [key(p), trimNetworkPolicy(p)])),
    });
  }
}

/** A simulated agent: the real PolicyWatcher, a handler keeping what it was told, a snapshot file. */
class Agent {
  readonly node: string;
  readonly watcher: PolicyWatcher;
  readonly held: { [R in ControlplaneResource]: ResourceState<R> } = {
    networkpolicies: new ResourceState('networkpolicies'),
    addressgroups: new ResourceState('addressgroups'),
    appliedtogroups: new ResourceState('appliedtogroups'),
  };
  readonly replaces: { resource: ControlplaneResource; source: ReplaceSource; count: number }[] = [];
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;

  constructor(node: string, endpoint: ControllerEndpoint, snapshotPath: string, encoding: 'protobuf' | 'json') {
    this.node = node;
    this.watcher = new PolicyWatcher({
      endpoint,
      nodeName: node,
      encoding,
      snapshot: new SnapshotStore({ path: snapshotPath, nodeName: node }),
      fallbackAfterMs: 1000,
      persistDelayMs: 50,
      backoff: () => new Backoff({ initialMs: 50, maxMs: 300, jitter: 0 }),
      handler: {
        replace: (resource, objects, source) => {
          (this.held[resource] as ResourceState<ControlplaneResource>).replace(objects);
          this.replaces.push({ resource, source, count: objects.length });
        },
        event: (ev: ResourceEvent) => {
          (this.held[ev.resource] as ResourceState<ControlplaneResource>).apply(ev);
        },
      },
    });
  }

  start(): void {
    this.running = this.watcher.run(this.abort.signal);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  view(): unknown {
    const keys = (ms: readonly GroupMember[]): string[] => ms.map(memberKey).sort();
    return {
      nps: Object.fromEntries(this.held.networkpolicies.list().map((p) => [p.metadata.name, p])),
      ags: Object.fromEntries(this.held.addressgroups.list().map((g) => [g.metadata.name, keys(g.groupMembers)])),
      atgs: Object.fromEntries(this.held.appliedtogroups.list().map((g) => [g.metadata.name, keys(g.groupMembers)])),
    };
  }
}

interface Env {
  readonly api: ApiServer;
  readonly cluster: Cluster;
  readonly dir: string;
  readonly tokens: Record<string, string>;
  readonly adminKc: KubeConfig;
  controllerUrl: string;
  startController(port?: number): Promise<{ app: ControllerApp; stop: () => Promise<void> }>;
  endpoint(token: string): ControllerEndpoint;
}

async function setup(t: Test): Promise<Env> {
  const api = await startApiServer({});
  t.teardown(() => api.stop());
  applyManifest(api, new URL('../../build/yamls/antrea-rbac.yml', import.meta.url).pathname);
  const cluster = new Cluster(api);
  const dir = shortTempDir(t, 'cp');
  const adminKc = new KubeConfig();
  adminKc.loadFromString(api.kubeconfig());
  const core = adminKc.makeApiClient(CoreV1Api);
  // Agent Pods and their Pod-bound tokens (TokenRequest with boundObjectRef: the node name lands in
  // the token's extra, as Kubernetes 1.30+ does).
  const tokens: Record<string, string> = {};
  for (const n of NODES) {
    cluster.pod(NS, `antrea-agent-${n}`, { app: 'antrea', component: 'antrea-agent' }, n);
    const tr = await core.createNamespacedServiceAccountToken({
      name: 'antrea-agent',
      namespace: NS,
      body: { spec: { audiences: [], boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: `antrea-agent-${n}` } } },
    });
    tokens[n] = tr.status?.token ?? '';
  }
  tokens['unbound'] = api.issueToken(NS, 'antrea-agent');
  // The controller runs as the antrea-controller ServiceAccount (its RBAC is Antrea's).
  const controllerKc = new KubeConfig();
  controllerKc.loadFromString(api.kubeconfig({ token: api.issueToken(NS, 'antrea-controller') }));
  const env: Env = {
    api,
    cluster,
    dir,
    tokens,
    adminKc,
    controllerUrl: '',
    async startController(port = 0) {
      let listening!: (port: number) => void;
      const port$ = new Promise<number>((r) => (listening = r));
      const app = new ControllerApp({
        config: { ...DEFAULT_CONTROLLER_CONFIG, apiBindAddress: '127.0.0.1', apiPort: port === 0 ? 10349 : port },
        kubeConfig: controllerKc,
        namespace: NS,
        podName: 'antrea-controller-abc',
        nodeName: 'n1',
        server: { port },
        heartbeatIntervalMs: 500,
        onListening: (a) => listening(a.port),
      });
      const ac = new AbortController();
      const run = app.run(ac.signal);
      run.catch(() => undefined);
      const bound = await Promise.race([port$, run.then(() => 0)]);
      if (bound === 0) throw new Error('the controller stopped before listening');
      env.controllerUrl = `https://127.0.0.1:${bound}`;
      let stopped = false;
      const stop = async (): Promise<void> => {
        if (stopped) return;
        stopped = true;
        ac.abort();
        await run;
      };
      t.teardown(stop);
      return { app, stop };
    },
    endpoint(token: string): ControllerEndpoint {
      return {
        url: env.controllerUrl,
        // The CA bundle as agents get it: from ConfigMap antrea-ca, read at each connection.
        ca: async () => {
          const cm = await core.readNamespacedConfigMap({ name: 'antrea-ca', namespace: NS });
          return cm.data?.['ca.crt'] ?? '';
        },
        token: () => token,
      };
    },
  };
  return env;
}

const spec1 = {
  podSelector: { matchLabels: { app: 'db' } },
  policyTypes: ['Ingress'],
  ingress: [
    {
      from: [{ podSelector: { matchLabels: { app: 'web' } } }, { namespaceSelector: { matchLabels: { env: 'prod' } } }],
      ports: [{ protocol: 'TCP', port: 5432 }],
    },
  ],
};

async function converged(t: Test, env: Env, agents: readonly Agent[], what: string): Promise<void> {
  let expected = await env.cluster.expected();
  try {
    await until(what, async () => {
      expected = await env.cluster.expected();
      return agents.every(
        (a) => a.watcher.status().connected && isDeepStrictEqual(a.view(), expectedView(expected, a.node)),
      );
    });
  } catch {
    // Show the difference.
  }
  for (const a of agents) t.same(a.view(), expectedView(expected, a.node), `${what}: agent of ${a.node}`);
}

t.test('the controlplane against the embedded API server', async (t) => {
  const env = await setup(t);
  const c = env.cluster;
  c.namespace('ns1', { env: 'prod' });
  c.namespace('ns2', { env: 'dev' });
  c.pod('ns1', 'db1', { app: 'db' }, 'n1', '10.0.1.10');
  c.pod('ns1', 'web1', { app: 'web' }, 'n2', '10.0.2.10');
  c.pod('ns2', 'web2', { app: 'web' }, 'n3', '10.0.3.10');
  c.pod('ns2', 'db2', { app: 'db' }, 'n2', '10.0.2.11');
  c.policy('ns1', 'p1', spec1);
  let ctl = await env.startController();
  const snap = (n: string): string => join(env.dir, `snapshot-${n}`);
  const agents = NODES.map(
    (n, i) => new Agent(n, env.endpoint(env.tokens[n] ?? ''), snap(n), i === 2 ? 'json' : 'protobuf'),
  );
  t.teardown(() => Promise.all(agents.map((a) => a.stop())));
  for (const a of agents) a.start();

  await t.test('every agent receives exactly its Node objects through moves, labels and edits', async (t) => {
    await converged(t, env, agents, 'initial set');
    t.ok(
      agents.every((a) => a.replaces.filter((r) => r.source === 'controller').length === 3),
      'one controller replace per resource',
    );
    t.ok(Object.keys((agents[0]?.view() as { nps: object }).nps).length === 1, 'n1 (db1) holds p1');
    t.same((agents[2]?.view() as { nps: object }).nps, {}, 'n3 holds nothing yet');
    c.movePod('ns1', 'db1', 'n3', '10.0.3.20');
    await converged(t, env, agents, 'db1 moved to n3');
    c.relabel('ns1', 'web1', { app: 'other' });
    await converged(t, env, agents, 'web1 relabelled');
    c.policy('ns1', 'p1', { ...spec1, policyTypes: ['Ingress', 'Egress'], egress: [{ to: [{ podSelector: {} }] }] });
    await converged(t, env, agents, 'p1 edited');
    c.policy('ns2', 'p2', { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'], ingress: [{}] });
    await converged(t, env, agents, 'p2 created');
    c.namespace('ns2', { env: 'prod' });
    await converged(t, env, agents, 'ns2 relabelled');
    c.pod('ns1', 'db3', { app: 'db' }, 'n2', '10.0.2.30');
    c.deletePod('ns2', 'web2');
    await converged(t, env, agents, 'db3 created, web2 deleted');
    t.ok(
      agents.every((a) => a.watcher.status().connected && a.watcher.status().resources.addressgroups.events > 0),
      'incremental events, no reconnection',
    );
  });

  const admin = env.endpoint(env.api.adminToken);
  await t.test('Node binding, bad tokens and bad query parameters', async (t) => {
    const watch = (node: string): string =>
      `${CP}/networkpolicies?watch=true&timeoutSeconds=1&fieldSelector=nodeName%3D${node}`;
    const refused = async (token: string, path: string): Promise<{ status: number; message: string }> => {
      try {
        await controllerRequest(env.endpoint(token), { path });
        return { status: 200, message: '' };
      } catch (err) {
        return { status: (err as { status: number }).status, message: (err as Error).message };
      }
    };
    const other = await refused(env.tokens['n1'] ?? '', watch('n2'));
    t.equal(other.status, 403, "n1's token cannot read n2's stream");
    t.match(other.message, /bound to Node n1 and may not watch Node n2/);
    const own = await controllerRequest(env.endpoint(env.tokens['n1'] ?? ''), { path: watch('n1') });
    t.equal(own.status, 200, "n1's token reads n1's stream");
    const unbound = await refused(env.tokens['unbound'] ?? '', watch('n1'));
    t.equal(unbound.status, 403);
    t.match(unbound.message, /not bound to a Node/);
    const bad = await refused('not-a-token', watch('n1'));
    t.equal(bad.status, 401, 'a bad token is refused');
    const forged = await refused(`${env.tokens['n1'] ?? ''}x`, watch('n1'));
    t.equal(forged.status, 401, 'a token with a broken signature is refused');
    for (const [q, re] of [
      ['fieldSelector=nodeName%3DN_1', /fieldSelector nodeName: "N_1" is not a valid name/],
      ['fieldSelector=spec.x%3Dy', /fieldSelector: field label not supported: spec.x/],
      ['watch=sometimes', /watch: "sometimes" is not a boolean/],
      ['bogus=1', /bogus: unknown query parameter/],
    ] as const) {
      const r = await refused(env.api.adminToken, `${CP}/networkpolicies?${q}`);
      t.equal(r.status, 400, q);
      t.match(r.message, re, q);
    }
    const antctlList = await controllerRequest(admin, {
      path: `${CP}/networkpolicies`,
      headers: { Accept: 'application/json' },
    });
    t.equal(
      (JSON.parse(antctlList.body.toString()) as { items: unknown[] }).items.length,
      2,
      'an administrator lists all',
    );
  });

  await t.test('status reports, the heartbeat, the CA ConfigMap and the debug queries', async (t) => {
    const policies = agents[1]?.held.networkpolicies.list() ?? [];
    const reporter = new StatusReporter({ endpoint: env.endpoint(env.tokens['n2'] ?? ''), nodeName: 'n2' });
    const ac = new AbortController();
    const running = reporter.run(ac.signal);
    for (const p of policies) reporter.report({ policy: p.metadata.name, generation: p.metadata.generation ?? 0 });
    await until('reports delivered', () => reporter.delivered === policies.length);
    ac.abort();
    await running;
    t.ok(policies.length > 0);
    for (const p of policies) {
      const st = JSON.parse(
        (await controllerRequest(admin, { path: `${CP}/networkpolicies/${p.metadata.name}/status` })).body.toString(),
      ) as { nodes: { nodeName: string; generation: number }[] };
      t.match(st.nodes, [{ nodeName: 'n2', generation: p.metadata.generation }], `status of ${p.metadata.name}`);
    }
    const core = env.adminKc.makeApiClient(CoreV1Api);
    const cm = await core.readNamespacedConfigMap({ name: 'antrea-ca', namespace: NS });
    t.match(cm.data?.['ca.crt'], /BEGIN CERTIFICATE/, 'ConfigMap antrea-ca holds ca.crt');
    const secret = await core.readNamespacedSecret({ name: 'antrea-controller-tls', namespace: NS });
    t.equal(secret.type, 'kubernetes.io/tls', 'the CA and certificate are kept in a Secret');
    await until('a heartbeat with 3 agents', async () => {
      const r = await controllerRequest(
        {
          url: env.api.url,
          ca: () => env.api.caCertPem ?? '',
          token: () => env.api.adminToken,
          serverName: '127.0.0.1',
        },
        { path: '/apis/crd.antrea.io/v1beta1/antreacontrollerinfos/antrea-controller' },
      ).catch(() => undefined);
      if (r === undefined) return false;
      const o = JSON.parse(r.body.toString()) as { connectedAgentNum?: number };
      return o.connectedAgentNum === 3;
    });
    t.pass('AntreaControllerInfo antrea-controller reports 3 connected agents');
    const ep = JSON.parse(
      (await controllerRequest(admin, { path: '/endpoint?namespace=ns1&pod=db3' })).body.toString(),
    ) as {
      endpoints: { policies: { name: string }[] }[];
    };
    t.equal(ep.endpoints[0]?.policies.length, 1, 'the policy selecting db3');
    const m = (await controllerRequest(admin, { path: '/metrics' })).body.toString();
    t.match(m, /antrea_controller_network_policy_processed \d+/);
  });

  await t.test('a controller restart resumes every agent to the correct full state', async (t) => {
    const port = Number(new URL(env.controllerUrl).port);
    await ctl.stop();
    await until('agents see the controller gone', () => agents.every((a) => !a.watcher.status().connected));
    // Changes while the controller is down.
    c.movePod('ns1', 'db3', 'n1', '10.0.1.30');
    c.deletePolicy('ns2', 'p2');
    c.pod('ns2', 'web4', { app: 'web' }, 'n3', '10.0.3.40');
    ctl = await env.startController(port);
    await until('every agent replaced its three sets again', () =>
      agents.every((a) => a.replaces.filter((r) => r.source === 'controller').length >= 6),
    );
    await converged(t, env, agents, 'after the restart');
  });

  await t.test('an agent started while the controller is down enforces its snapshot', async (t) => {
    const expected = await c.expected();
    await Promise.all(agents.map((a) => a.stop()));
    await ctl.stop();
    const n2 = new Agent('n2', env.endpoint(env.tokens['n2'] ?? ''), snap('n2'), 'protobuf');
    const before = readFileSync(snap('n3'));
    writeFileSync(snap('n3'), Buffer.concat([before.subarray(0, before.length - 7), Buffer.from('garbage')]));
    const n3 = new Agent('n3', env.endpoint(env.tokens['n3'] ?? ''), snap('n3'), 'protobuf');
    t.teardown(() => Promise.all([n2.stop(), n3.stop()]));
    n2.start();
    n3.start();
    await n2.watcher.waitSynced(AbortSignal.timeout(10_000));
    t.same(n2.view(), expectedView(expected, 'n2'), 'the snapshot holds the last known set');
    t.ok(n2.replaces.every((r) => r.source === 'snapshot'));
    t.equal(n2.watcher.status().snapshot, 'loaded');
    t.notOk(n2.watcher.status().connected);
    await until('n3 notices the corrupt snapshot', () => n3.watcher.status().snapshot === 'corrupt');
    t.match(n3.watcher.status().snapshotError, /checksum mismatch|does not decode|payload/);
    t.equal(n3.replaces.length, 0, 'a corrupt snapshot is never treated as "no policy"');
    t.notOk(n3.watcher.synced);
    ctl = await env.startController(Number(new URL(env.controllerUrl).port));
    await converged(t, env, [n2, n3], 'with the controller back');
    t.ok(n3.replaces.every((r) => r.source === 'controller'));
  });
});

t.test('the self-signed CA is kept in a Secret, published, and rotated before expiry', async (t) => {
  const api = await startApiServer({});
  t.teardown(() => api.stop());
  const kc = new KubeConfig();
  kc.loadFromString(api.kubeconfig());
  const kube = createControllerKubeClient(kc);
  const clock = new FakeClock(Date.parse('2026-01-01T00:00:00Z'));
  const first = new SelfSignedCertificateProvider({ kube, namespace: NS, clock });
  await first.sync();
  const c1 = first.current();
  const again = new SelfSignedCertificateProvider({ kube, namespace: NS, clock });
  await again.sync();
  t.equal(again.current()?.certPem, c1?.certPem, 'a restart reuses the stored certificate');
  await clock.advance(300 * 24 * 3600 * 1000);
  const later = new SelfSignedCertificateProvider({ kube, namespace: NS, clock });
  await later.sync();
  const c2 = later.current();
  t.not(c2?.certPem, c1?.certPem, 'less than 90 days left: a new certificate');
  t.ok(c2?.caBundlePem.includes(c1?.caBundlePem.trim() ?? 'x'), 'the bundle keeps the old CA while it is valid');
  t.ok((c2?.notAfter ?? 0) > clock.now() + 300 * 24 * 3600 * 1000, 'valid for a year again');
  const stored = await kube.secrets.get(NS, 'antrea-controller-tls');
  t.equal(
    Buffer.from(stored?.data?.['tls.key'] ?? '', 'base64').toString(),
    c2?.keyPem,
    'the Secret holds the new key',
  );
});
