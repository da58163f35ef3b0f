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
import { Cluster } from './multinode.ts';
import type { Test } from 'tap';
import { until as untilDefault } from './wait.ts';

const NS = 'kube-system';
export const NODE = 'node-1';
const PROBE = join(import.meta.dirname, 'netpol-probe.ts');

/**
 * One probe from the Pod namespace `ns` (netpol-probe.ts, 1 s timeout; from `srcPort` if given):
 * whether it got through, and the probe's line ("ok" or "fail: <why>").
 */
export async function probeOnce(
  ns: string,
  proto: 'tcp' | 'udp',
  ip: string,
  port: number,
  srcPort?: number,
): Promise<{ ok: boolean; line: string }> {
  const r = await runner.run(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      PROBE,
      proto,
      ip,
      String(port),
      '1000',
      ...(srcPort === undefined ? [] : [String(srcPort)]),
    ],
    { okExitCodes: [1], timeoutMs: 20_000 },
  );
  return { ok: r.exitCode === 0, line: r.stdout.trim() };
}
const FORWARD = join(import.meta.dirname, 'uds-forward.ts');

export interface CpPod extends PodRef {
  readonly ip: string;
  /** The Pod's network namespace name. */
  readonly ns: string;
}

/** Creates the RBAC objects (ServiceAccounts, roles, bindings) of a manifest in the API server's registry. */
export function applyManifest(s: ApiServer, file: string): void {
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

/**
 * antrea-controller in this process against an embedded API server: Antrea's RBAC, the controller's
 * own ServiceAccount token, the CA bundle from ConfigMap antrea-ca written to a file, and Pod-bound
 * agent tokens per Node. Stoppable and restartable on the same port.
 */
export class ControllerHarness {
  readonly api: ApiServer;
  readonly caFile: string;
  port = 0;
  private readonly t: Teardown;
  private readonly dir: string;
  private readonly kc: KubeConfig;
  private readonly core: CoreV1Api;
  private readonly bindAddress: string;
  private stop: (() => Promise<void>) | undefined;

  private constructor(t: Teardown, api: ApiServer, dir: string, bindAddress: string) {
    this.t = t;
    this.api = api;
    this.dir = dir;
    this.bindAddress = bindAddress;
    this.caFile = join(dir, 'ca.crt');
    this.kc = new KubeConfig();
    this.kc.loadFromString(api.kubeconfig({ token: api.issueToken(NS, 'antrea-controller') }));
    const adminKc = new KubeConfig();
    adminKc.loadFromString(api.kubeconfig());
    this.core = adminKc.makeApiClient(CoreV1Api);
  }

  /** Applies the RBAC, starts the controller listening on `bindAddress` and writes the CA file. */
  static async create(
    t: Teardown,
    api: ApiServer,
    dir: string,
    bindAddress = '127.0.0.1',
    port = 0,
  ): Promise<ControllerHarness> {
    applyManifest(api, new URL('../../build/yamls/antrea-rbac.yml', import.meta.url).pathname);
    const h = new ControllerHarness(t, api, dir, bindAddress);
    h.port = port;
    await h.start();
    await until('ConfigMap antrea-ca', async () => {
      const cm = await h.core.readNamespacedConfigMap({ name: 'antrea-ca', namespace: NS }).catch(() => undefined);
      const ca = cm?.data?.['ca.crt'];
      if (ca === undefined) return false;
      writeFileSync(h.caFile, ca);
      return true;
    });
    return h;
  }

  /** The agent Pod of `node` and a token bound to it, written to a file; returns the file. */
  async agentTokenFile(node: string): Promise<string> {
    this.api.registry.create(typeOf(this.api.types, '', 'pods'), NS, {
      metadata: { name: `antrea-agent-${node}`, namespace: NS, labels: { app: 'antrea', component: 'antrea-agent' } },
      spec: { nodeName: node, containers: [{ name: 'c', image: 'antrea' }] },
    });
    const tr = await this.core.createNamespacedServiceAccountToken({
      name: 'antrea-agent',
      namespace: NS,
      body: {
        spec: { audiences: [], boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: `antrea-agent-${node}` } },
      },
    });
    const file = join(this.dir, `token-${node}`);
    writeFileSync(file, tr.status?.token ?? '');
    return file;
  }

  /** antrea-agent flags to reach this controller at `url`. */
  agentArgs(url: string, tokenFile: string): string[] {
    return ['--controller-url', url, '--controller-ca', this.caFile, '--controller-token-file', tokenFile];
  }

  /** The controller's API as an administrator. */
  get admin(): ControllerEndpoint {
    return {
      url: `https://${this.bindAddress}:${this.port}`,
      ca: () => readFileSync(this.caFile, 'utf8'),
      token: () => this.api.adminToken,
    };
  }

  /** Starts antrea-controller (on the same port as before after a stop). */
  async start(): Promise<void> {
    let listening!: (port: number) => void;
    const port$ = new Promise<number>((r) => (listening = r));
    const app = new ControllerApp({
      config: { ...DEFAULT_CONTROLLER_CONFIG, apiBindAddress: this.bindAddress, apiPort: 10349 },
      kubeConfig: this.kc,
      namespace: NS,
      podName: 'antrea-controller-abc',
      nodeName: NODE,
      server: { port: this.port },
      heartbeatIntervalMs: 1000,
      onListening: (a) => listening(a.port),
    });
    const ac = new AbortController();
    const run = app.run(ac.signal);
    run.catch(() => undefined);
    const bound = await Promise.race([port$, run.then(() => 0)]);
    if (bound === 0) throw new Error('the controller stopped before listening');
    this.port = bound;
    let stopped = false;
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      ac.abort();
      await run;
    };
    this.stop = stop;
    this.t.teardown(stop);
  }

  async stopNow(): Promise<void> {
    await this.stop?.();
  }
}

export class ControlplaneNode {
  readonly api: ApiServer;
  /** The first Node. */
  readonly node: AgentNode;
  readonly nodes: readonly AgentNode[];
  readonly dir: string;
  readonly controller: ControllerHarness;
  private readonly t: Teardown;

  private constructor(
    t: Teardown,
    api: ApiServer,
    nodes: readonly AgentNode[],
    dir: string,
    controller: ControllerHarness,
  ) {
    const first = nodes[0];
    if (first === undefined) throw new Error('no Node');
    this.t = t;
    this.api = api;
    this.node = first;
    this.nodes = nodes;
    this.dir = dir;
    this.controller = controller;
  }

  /**
   * `count` Nodes in encap mode (test/helpers/multinode.ts: Geneve tunnels, Node routes) whose
   * agents watch the controller on the root namespace's control address; agents not started.
   */
  static async createCluster(t: Teardown, count: number): Promise<ControlplaneNode> {
    const dir = shortTempDir(t as Test, 'npmc');
    let controlIP = '';
    const cluster = await Cluster.create(t, {
      trafficEncapMode: 'encap',
      tunnelType: 'geneve',
      nodes: Array.from({ length: count }, () => ({ subnet: 'a' as const })),
      agentArgs: (n) => {
        controlIP = n.controlIP;
        return [
          '--controller-url',
          `https://${n.controlIP}:10349`,
          '--controller-ca',
          join(dir, 'ca.crt'),
          '--controller-token-file',
          join(dir, `token-${n.name}`),
        ];
      },
    });
    const controller = await ControllerHarness.create(t, cluster.api, dir, controlIP, 10349);
    for (const n of cluster.nodes) await controller.agentTokenFile(n.nodeName);
    return new ControlplaneNode(t, cluster.api, cluster.nodes, dir, controller);
  }

  /** API server, controller (started), Node and relay; the agent is not started yet. */
  static async create(
    t: Teardown,
    podCIDR = '10.10.30.0/24',
    podNetworkWaitTimeoutMs = 30_000,
  ): Promise<ControlplaneNode> {
    const api = await startApiServer({});
    t.teardown(() => api.stop());
    const dir = shortTempDir(t as Test, 'npcp');
    const controller = await ControllerHarness.create(t, api, dir);
    const tokenFile = await controller.agentTokenFile(NODE);
    const node = await AgentNode.create(t, {
      podCIDR,
      podNetworkWaitTimeoutMs,
      extraArgs: controller.agentArgs('https://127.0.0.1:10349', tokenFile),
    });
    const c = new ControlplaneNode(t, api, [node], dir, controller);
    // Relay: Node namespace 127.0.0.1:10349 → Unix socket → the controller's port here.
    const sock = join(dir, 'ctl.sock');
    const relay = createServer((s) => {
      const u = connect(controller.port, '127.0.0.1');
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
    return this.controller.admin;
  }

  /** Kills a process at teardown. */
  own(p: ProcessHandle): void {
    this.t.teardown(async () => {
      if (p.running()) process.kill(p.pid, 'SIGKILL');
      await p.exited;
    });
  }

  async startController(): Promise<void> {
    await this.controller.start();
  }

  async stopControllerNow(): Promise<void> {
    await this.controller.stopNow();
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
    return this.nodes.reduce((n, node) => n + node.log().split('"msg":"realized"').length - 1, 0);
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
    node: AgentNode = this.node,
  ): Promise<CpPod> {
    const ref: PodRef = { containerId: uniqueName('ctr'), netns: await node.podNetns(), name, namespace };
    const r = await node.cni('ADD', ref);
    if (r.exitCode !== 0) throw new Error(`ADD ${namespace}/${name}: ${r.stdout}`);
    // (registered after the interface exists, as a kubelet reports the Pod IP after CNI ADD)
    const ip = (r.json?.['ips'] as { address: string }[])[0]?.address.split('/')[0] ?? '';
    const reg = this.api.registry;
    reg.create(this.type('pods'), namespace, {
      metadata: { name, namespace, labels },
      spec: { nodeName: node.nodeName, containers },
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

  /** One TCP connection (from `srcPort` if given, else an ephemeral port); true if it got through. */
  async probe(from: CpPod, to: CpPod, port = 80, srcPort?: number): Promise<boolean> {
    return (await probeOnce(from.ns, 'tcp', to.ip, port, srcPort)).ok;
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

/** Waits (up to 30 s by default) until `cond` holds; throws naming `what`. */
export const until = (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> =>
  untilDefault(what, cond, timeoutMs);
