/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- client-node model classes are plain data shapes; object literals are how its API is used. */
/**
 * A one-Node cluster for NetworkPolicy tests and benchmarks that go through the Kubernetes API: the
 * embedded API server (Antrea's RBAC), the real antrea-controller in this process, and an AgentNode
 * whose antrea-agent watches the controller with a Pod-bound token and the CA from ConfigMap
 * antrea-ca. The Node namespace reaches the controller on its own 127.0.0.1:10349 through a Unix
 * socket relay (no address or route in the root namespace). Pods are added through the CNI plugin
 * and registered in the API with their IP. Everything is removed at teardown.
 */
import { connect, createServer } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { ControllerEndpoint } from '../../src/common/agent/controlplane/index.ts';
import type { ProcessHandle } from '../../src/common/util/exec.ts';
import { ControllerApp } from '../../src/controller/app.ts';
import { DEFAULT_CONTROLLER_CONFIG } from '../../src/controller/config.ts';
import { typeOf } from '../../src/lab/apiserver/core.ts';
import { startApiServer, type ApiServer } from '../../src/lab/apiserver/server.ts';
import { AgentNode, type PodRef, type Teardown } from './agent-node.ts';
import { launcher, runner, shortTempDir, uniqueName } from './env.ts';
import type { Test } from 'tap';

const NS = 'kube-system';
export const NODE = 'node-1';
const PROBE = join(import.meta.dirname, 'netpol-probe.ts');
const FORWARD = join(import.meta.dirname, 'uds-forward.ts');

export interface CpPod extends PodRef {
  readonly ip: string;
  /** The Pod's network namespace name. */
  readonly ns: string;
}

export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function applyManifest(s: ApiServer, file: string): void {
  const resources: Record<string, [string, string]> = {
    ServiceAccount: ['', 'serviceaccounts'],
    ClusterRole: ['rbac.authorization.k8s.io', 'clusterroles'],
    ClusterRoleBinding: ['rbac.authorization.k8s.io', 'clusterrolebindings'],
    Role: ['rbac.authorization.k8s.io', 'roles'],
    RoleBinding: ['rbac.authorization.k8s.io', 'rolebindings'],
  };
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const obj = doc.toJS() as { kind?: string; metadata?: { namespace?: string } } | null;
    const r = resources[obj?.kind ?? ''];
    if (obj === null || r === undefined) continue;
    s.registry.create(typeOf(s.types, r[0], r[1]), obj.metadata?.namespace, obj);
  }
}

export class ControlplaneNode {
  readonly api: ApiServer;
  readonly node: AgentNode;
  readonly dir: string;
  private readonly t: Teardown;
  private readonly controllerKc: KubeConfig;
  private controllerPort = 0;
  private stopController: (() => Promise<void>) | undefined;
  private readonly caFile: string;

  private constructor(t: Teardown, api: ApiServer, node: AgentNode, dir: string, kc: KubeConfig, caFile: string) {
    this.t = t;
    this.api = api;
    this.node = node;
    this.dir = dir;
    this.controllerKc = kc;
    this.caFile = caFile;
  }

  /** API server, controller (started), Node and relay; the agent is not started yet. */
  static async create(
    t: Teardown,
    podCIDR = '10.10.30.0/24',
    podNetworkWaitTimeoutMs = 30_000,
  ): Promise<ControlplaneNode> {
    const api = await startApiServer({});
    t.teardown(() => api.stop());
    applyManifest(api, new URL('../../build/yamls/antrea-rbac.yml', import.meta.url).pathname);
    const dir = shortTempDir(t as Test, 'npcp');
    const adminKc = new KubeConfig();
    adminKc.loadFromString(api.kubeconfig());
    const core = adminKc.makeApiClient(CoreV1Api);
    api.registry.create(typeOf(api.types, '', 'pods'), NS, {
      metadata: { name: `antrea-agent-${NODE}`, namespace: NS, labels: { app: 'antrea', component: 'antrea-agent' } },
      spec: { nodeName: NODE, containers: [{ name: 'c', image: 'antrea' }] },
    });
    const tr = await core.createNamespacedServiceAccountToken({
      name: 'antrea-agent',
      namespace: NS,
      body: {
        spec: { audiences: [], boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: `antrea-agent-${NODE}` } },
      },
    });
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, tr.status?.token ?? '');
    const controllerKc = new KubeConfig();
    controllerKc.loadFromString(api.kubeconfig({ token: api.issueToken(NS, 'antrea-controller') }));
    const caFile = join(dir, 'ca.crt');
    const node = await AgentNode.create(t, {
      podCIDR,
      podNetworkWaitTimeoutMs,
      extraArgs: [
        '--controller-url',
        'https://127.0.0.1:10349',
        '--controller-ca',
        caFile,
        '--controller-token-file',
        tokenFile,
      ],
    });
    const c = new ControlplaneNode(t, api, node, dir, controllerKc, caFile);
    await c.startController();
    await until('ConfigMap antrea-ca', async () => {
      const cm = await core.readNamespacedConfigMap({ name: 'antrea-ca', namespace: NS }).catch(() => undefined);
      const ca = cm?.data?.['ca.crt'];
      if (ca === undefined) return false;
      writeFileSync(caFile, ca);
      return true;
    });
    // Relay: Node namespace 127.0.0.1:10349 → Unix socket → the controller's port here.
    const sock = join(dir, 'ctl.sock');
    const relay = createServer((s) => {
      const u = connect(c.controllerPort, '127.0.0.1');
      s.pipe(u).pipe(s);
      s.on('error', () => u.destroy());
      u.on('error', () => s.destroy());
    });
    await new Promise<void>((r) => relay.listen(sock, r));
    t.teardown(() => new Promise<void>((r) => relay.close(() => r())));
    const fwdLog = join(dir, 'forward.log');
    const fwd = await launcher.launch('ip', ['netns', 'exec', node.ns, process.execPath, FORWARD, '10349', sock], {
      logFile: fwdLog,
    });
    c.own(fwd);
    await until('the forwarder', () => readFileSync(fwdLog, 'utf8').includes('forwarding'));
    await runner.run('ip', ['-n', node.ns, 'link', 'set', 'lo', 'up']);
    return c;
  }

  type(res: string, group = ''): ReturnType<typeof typeOf> {
    return typeOf(this.api.types, group, res);
  }

  /** The controller's API as an administrator. */
  get admin(): ControllerEndpoint {
    return {
      url: `https://127.0.0.1:${this.controllerPort}`,
      ca: () => readFileSync(this.caFile, 'utf8'),
      token: () => this.api.adminToken,
    };
  }

  /** Kills a process at teardown. */
  own(p: ProcessHandle): void {
    this.t.teardown(async () => {
      if (p.running()) process.kill(p.pid, 'SIGKILL');
      await p.exited;
    });
  }

  /** Starts antrea-controller (on the same port as before after a stop). */
  async startController(): Promise<void> {
    let listening!: (port: number) => void;
    const port$ = new Promise<number>((r) => (listening = r));
    const app = new ControllerApp({
      config: { ...DEFAULT_CONTROLLER_CONFIG, apiBindAddress: '127.0.0.1', apiPort: 10349 },
      kubeConfig: this.controllerKc,
      namespace: NS,
      podName: 'antrea-controller-abc',
      nodeName: NODE,
      server: { port: this.controllerPort },
      heartbeatIntervalMs: 1000,
      onListening: (a) => listening(a.port),
    });
    const ac = new AbortController();
    const run = app.run(ac.signal);
    run.catch(() => undefined);
    const bound = await Promise.race([port$, run.then(() => 0)]);
    if (bound === 0) throw new Error('the controller stopped before listening');
    this.controllerPort = bound;
    let stopped = false;
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      ac.abort();
      await run;
    };
    this.stopController = stop;
    this.t.teardown(stop);
  }

  async stopControllerNow(): Promise<void> {
    await this.stopController?.();
  }

  namespace(name: string, labels: Record<string, string> = {}): void {
    this.api.registry.create(this.type('namespaces'), undefined, {
      metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } },
    });
  }

  /** Replaces an object's labels (Namespace or Pod). */
  setLabels(
    resource: 'namespaces' | 'pods',
    namespace: string | undefined,
    name: string,
    labels: Record<string, string>,
  ): void {
    const t = this.type(resource);
    const cur = this.api.registry.get(t, namespace, name).obj;
    this.api.registry.update(t, namespace, name, { ...cur, metadata: { ...cur.metadata, labels } });
  }

  /** Debug lines of the agent's policy controller that report a realization. */
  realizations(): number {
    return this.node.log().split('"msg":"realized"').length - 1;
  }

  /**
   * Waits until the agent realized something after `before` (or `maxWaitMs` passed: a change that
   * does not concern this Node realizes nothing) and then stayed quiet for `quietMs`.
   */
  async settle(before: number, maxWaitMs = 3000, quietMs = 400): Promise<void> {
    const start = Date.now();
    while (this.realizations() === before && Date.now() - start < maxWaitMs)
      await new Promise((r) => setTimeout(r, 25));
    let last = this.realizations();
    let since = Date.now();
    while (Date.now() - since < quietMs) {
      await new Promise((r) => setTimeout(r, 25));
      const now = this.realizations();
      if (now !== last) {
        last = now;
        since = Date.now();
      }
    }
  }

  /**
   * A Pod through the CNI plugin, registered in the API (Running, with its IP and, unless given, one
   * container with port "http" 80).
   */
  async addPod(
    namespace: string,
    name: string,
    labels: Record<string, string>,
    containers: readonly Record<string, unknown>[] = [
      { name: 'c', image: 'x', ports: [{ name: 'http', containerPort: 80 }] },
    ],
  ): Promise<CpPod> {
    const ref: PodRef = { containerId: uniqueName('ctr'), netns: await this.node.podNetns(), name, namespace };
    const r = await this.node.cni('ADD', ref);
    if (r.exitCode !== 0) throw new Error(`ADD ${namespace}/${name}: ${r.stdout}`);
    // (registered after the interface exists, as a kubelet reports the Pod IP after CNI ADD)
    const ip = (r.json?.['ips'] as { address: string }[])[0]?.address.split('/')[0] ?? '';
    const reg = this.api.registry;
    reg.create(this.type('pods'), namespace, {
      metadata: { name, namespace, labels },
      spec: { nodeName: NODE, containers },
    });
    const cur = reg.get(this.type('pods'), namespace, name).obj;
    reg.update(
      this.type('pods'),
      namespace,
      name,
      { ...cur, status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } },
      { subresource: 'status' },
    );
    return { ...ref, ip, ns: ref.netns.replace(/^\/run\/netns\//, '') };
  }

  /** Starts the probe program's servers in a Pod. */
  async serve(pod: CpPod, tcp: number[], udp: number[] = []): Promise<void> {
    const log = join(this.dir, `serve-${pod.name}.log`);
    this.own(
      await launcher.launch(
        'ip',
        ['netns', 'exec', pod.ns, process.execPath, PROBE, 'serve', tcp.join(',') || '-', udp.join(',') || '-'],
        { logFile: log },
      ),
    );
    await until('the servers', () => readFileSync(log, 'utf8').includes('serving'), 10_000);
  }

  /** One TCP connection; true if it got through. */
  async probe(from: CpPod, to: CpPod, port = 80): Promise<boolean> {
    const r = await runner.run(
      'ip',
      ['netns', 'exec', from.ns, process.execPath, PROBE, 'tcp', to.ip, String(port), '1000'],
      { okExitCodes: [1], timeoutMs: 20_000 },
    );
    return r.exitCode === 0;
  }

  /** Probes until the result is `want` (or 15 s pass); returns the last result. */
  async eventually(from: CpPod, to: CpPod, want: boolean, port = 80): Promise<boolean> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const got = await this.probe(from, to, port);
      if (got === want || Date.now() > deadline) return got;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
