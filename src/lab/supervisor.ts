/**
 * The lab supervisor: the long-running process `antrea-lab up` starts in the background. It builds
 * the networks, runs the embedded API server and the cluster components a real control plane and
 * kubelet provide (scheduler, kubelet stand-ins, Node registration), runs each Node's Open vSwitch
 * and CNI, records everything in the state file, and on SIGTERM stops it all and removes the lab's
 * namespaces. What a crash leaves behind, `antrea-lab down` removes (see teardown.ts).
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadKubeConfig, kubeListWatch } from '../common/k8s/client.ts';
import { Informer } from '../common/k8s/informer.ts';
import type { KubeObject, Pod } from '../common/k8s/objects.ts';
import { abortReason, type Clock, formatDuration, systemClock } from '../common/util/clock.ts';
import { errorMessage } from '../common/util/errors.ts';
import type { CommandRunner, ProcessHandle, ProcessLauncher } from '../common/util/exec.ts';
import { type Logger, nullLogger } from '../common/util/log.ts';
import { aborted, type Runnable } from '../common/util/runnable.ts';
import { OvsDaemons } from '../platform/linux/ovs-daemons.ts';
import { type ApiServer, startApiServer } from './apiserver/index.ts';
import { CniRuntime } from './cni-runtime.ts';
import { destroyLabNetwork, LabFabric, routePodCIDRs } from './fabric.ts';
import { KubeClient } from './kube-client.ts';
import { Kubelet } from './kubelet.ts';
import type { NodeCni, NodeCniContext } from './node-cni.ts';
import { Scheduler } from './scheduler.ts';
import { ComponentControlServer, ComponentError, type ComponentRequest, type ComponentResult } from './components.ts';
import { type LabCni, type LabNodeState, LabPaths, type LabState, prepareDataDir, writeState } from './state.ts';
import {
  API_SERVER_PORT,
  buildTopology,
  CLUSTER_CIDR,
  CONTROLLER_PORT,
  labPrefix,
  type LabEncap,
  type LabNodeSpec,
  type LabTopology,
  NODE_CIDR_MASK_SIZE,
  SERVICE_CIDR,
} from './topology.ts';

export interface SupervisorOptions {
  readonly dataDir: string;
  readonly nodes: number;
  readonly encap: LabEncap;
  readonly cni: NodeCni & { readonly kind: LabCni };
  readonly runner: CommandRunner;
  readonly launcher: ProcessLauncher;
  /** argv that starts a Pod program (node + src/cmd/lab-pod.ts). */
  readonly podCommand: readonly string[];
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** How long Nodes may take to become Ready (default 180 s). */
  readonly readyTimeoutMs?: number;
  /**
   * How to run antrea-controller (node + src/cmd/antrea-controller.ts) and where Antrea's RBAC
   * manifest is; absent: the lab runs no controller.
   */
  readonly controller?: { readonly command: readonly string[]; readonly rbacManifest: string };
}

/** The kinds an RBAC manifest may hold, and their resources. */
const RBAC_RESOURCES: Readonly<Record<string, string>> = {
  ServiceAccount: 'serviceaccounts',
  ClusterRole: 'clusterroles',
  ClusterRoleBinding: 'clusterrolebindings',
  Role: 'roles',
  RoleBinding: 'rolebindings',
};

interface RunningNode {
  readonly spec: LabNodeSpec;
  readonly ovs: OvsDaemons;
  readonly kubelet: Kubelet;
  readonly ctx: NodeCniContext;
  readonly state: LabNodeState;
}

export class LabSupervisor implements Runnable {
  private readonly o: SupervisorOptions;
  private readonly paths: LabPaths;
  /** How agents reach antrea-controller (set once it runs). */
  private controllerConn: { url: string; caFile: string; api: ApiServer } | undefined;
  private readonly log: Logger;
  private readonly clock: Clock;
  private state: LabState;
  /** The running Nodes (for component requests). */
  private nodes: RunningNode[] = [];
  /** antrea-controller's process, when the lab runs one. */
  private controller: ProcessHandle | undefined;
  /** What starting the controller again needs (set once it first started). */
  private controllerStart: { api: ApiServer; topo: LabTopology } | undefined;
  /** The signal `run` got: components started on request stop waiting when the lab stops. */
  private runSignal: AbortSignal = new AbortController().signal;

  constructor(o: SupervisorOptions) {
    this.o = o;
    this.paths = new LabPaths(o.dataDir);
    this.log = (o.logger ?? nullLogger).child({ component: 'lab-supervisor' });
    this.clock = o.clock ?? systemClock;
    this.state = {
      version: 1,
      dataDir: o.dataDir,
      prefix: labPrefix(o.dataDir),
      pid: process.pid,
      startedAt: new Date(this.clock.now()).toISOString(),
      phase: 'starting',
      options: { nodes: o.nodes, encap: o.encap, cni: o.cni.kind },
      nodes: [],
    };
  }

  private save(): void {
    writeState(this.paths, this.state);
  }

  private progress(line: string): void {
    this.log.info(line);
    try {
      writeProgress(this.paths, line);
    } catch {
      // the data directory may be gone during teardown
    }
  }

  async run(signal: AbortSignal): Promise<void> {
    const t0 = this.clock.monotonic();
    this.runSignal = signal;
    prepareDataDir(this.paths);
    this.save();
    const bg = new AbortController();
    const background: Promise<unknown>[] = [];
    const fabric = new LabFabric({ runner: this.o.runner, logger: this.log });
    const nodes: RunningNode[] = this.nodes;
    let api: ApiServer | undefined;
    let client: KubeClient | undefined;
    let topo: LabTopology | undefined;
    const control = new ComponentControlServer({
      socketPath: this.paths.controlSocket,
      handler: (req) => this.component(req),
      logger: this.log,
    });
    const check = (): void => {
      if (signal.aborted) throw abortReason(signal);
    };
    try {
      this.progress('creating the lab networks (control subnet, underlay, router, external)');
      await fabric.createFabricNamespace({ fabricNetns: `${this.state.prefix}fabric` });
      const slot = await fabric.claimControlSlot(`${this.state.prefix}ctl`, `${this.state.prefix}fabric`);
      topo = buildTopology({ dataDir: this.o.dataDir, nodes: this.o.nodes, encap: this.o.encap, slot });
      this.state.slot = slot;
      this.state.apiServerURL = topo.apiServerURL;
      this.save();
      await fabric.build(topo);
      check();

      this.progress(`starting the API server on ${topo.apiServerURL}`);
      api = await startApiServer({
        host: topo.control.hostIP,
        port: API_SERVER_PORT,
        advertiseAddress: topo.control.hostIP,
        dataDir: this.paths.apiServerDir,
        clusterCIDR: CLUSTER_CIDR,
        nodeCIDRMaskSize: NODE_CIDR_MASK_SIZE,
        serviceCIDR: SERVICE_CIDR,
        // The kubelet stand-ins complete graceful Pod deletions (after CNI DEL), as kubelets do.
        completePodDeletion: false,
        logger: this.log,
        clock: this.clock,
      });
      api.writeKubeconfig(this.paths.adminKubeconfig);
      client = KubeClient.fromKubeconfig(this.paths.adminKubeconfig);
      const kc = loadKubeConfig(this.paths.adminKubeconfig);
      check();
      if (this.o.controller !== undefined) {
        await this.applyRbac(this.o.controller.rbacManifest, client);
        this.progress(`starting antrea-controller on ${topo.controllerAddress}`);
        this.controllerStart = { api, topo };
        this.controller = await this.startController(this.o.controller, api, topo, signal);
        this.controllerConn = {
          url: `https://${topo.control.hostIP}:${CONTROLLER_PORT}`,
          caFile: await this.writeControllerCA(client, signal),
          api,
        };
      }

      const scheduler = new Scheduler(client, this.log);
      const kubelets = new Map<string, Kubelet>();
      const podInformer = new Informer<Pod>({
        resource: 'pods',
        client: kubeListWatch(kc, '/api/v1/pods'),
        logger: this.log,
      });
      const nodeInformer = new Informer<KubeObject>({
        resource: 'nodes',
        client: kubeListWatch(kc, '/api/v1/nodes'),
        logger: this.log,
      });
      podInformer.onEvent((type, pod) => {
        scheduler.onPod(type, pod);
        const node = pod.spec?.nodeName;
        if (node !== undefined && node !== '') kubelets.get(node)?.onPod(type, pod);
      });
      nodeInformer.onEvent((type, node) => scheduler.onNode(type, node));
      background.push(nodeInformer.run(bg.signal));

      this.progress(
        `starting ${topo.nodes.length} Node(s): namespace, Open vSwitch (userspace datapath), ${this.o.cni.kind} CNI`,
      );
      const started = await Promise.allSettled(
        topo.nodes.map((spec) =>
          this.startNode(spec, topo as LabTopology, fabric, client as KubeClient, api as ApiServer, signal),
        ),
      );
      for (const r of started) if (r.status === 'fulfilled') nodes.push(r.value);
      const failed = started.find((r) => r.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      if (this.o.cni.staticRoutes) {
        await routePodCIDRs(this.o.runner, topo, new Map(nodes.map((n) => [n.spec.name, n.ctx.podCIDR])));
      }
      for (const n of nodes) {
        kubelets.set(n.spec.name, n.kubelet);
        background.push(n.kubelet.run(bg.signal));
      }
      background.push(podInformer.run(bg.signal));
      this.state.nodes = nodes.map((n) => n.state);
      this.save();

      this.progress('waiting for the Nodes to be Ready');
      await this.waitNodesReady(nodeInformer, topo.nodes.length, signal);
      await control.listen();
      this.state.phase = 'ready';
      this.state.readyAt = new Date(this.clock.now()).toISOString();
      this.state.upMs = Math.round(this.clock.monotonic() - t0);
      this.save();
      this.progress(`lab ready in ${formatDuration(this.state.upMs)}`);
      await aborted(signal);
      this.state.phase = 'stopping';
      this.save();
    } catch (err) {
      this.state.phase = 'failed';
      this.state.error = errorMessage(err);
      this.save();
      this.log.error('lab failed', { err: errorMessage(err) });
      throw err;
    } finally {
      this.progress('stopping the lab');
      await control.close();
      bg.abort();
      for (const n of nodes) await n.kubelet.shutdown(false);
      await Promise.allSettled(background);
      await Promise.allSettled(nodes.map((n) => this.o.cni.stop(n.ctx)));
      await Promise.allSettled(nodes.map((n) => n.ovs.stop()));
      await this.controller?.stop(10_000);
      client?.close();
      await api?.stop();
      const { problems } = await destroyLabNetwork(this.o.runner, this.state.prefix, this.log);
      for (const p of problems) this.log.warn('cleanup problem', { problem: p });
      this.progress('lab stopped');
    }
  }

  /**
   * Carries out one component request (see components.ts) and records the new pids in the state
   * file. COMPONENT_UNAVAILABLE when the lab has no such component or Node.
   */
  private async component(req: ComponentRequest): Promise<ComponentResult> {
    const t0 = this.clock.monotonic();
    const stopFirst = req.action === 'stop' || req.action === 'restart';
    const startAfter = req.action === 'start' || req.action === 'restart';
    let pid: number | undefined;
    if (req.component === 'antrea-controller') {
      const c = this.o.controller;
      const how = this.controllerStart;
      if (c === undefined || how === undefined) {
        throw new ComponentError('COMPONENT_UNAVAILABLE', 'this lab runs no antrea-controller');
      }
      const proc = this.controller;
      if (req.action === 'kill' && proc?.running() === true) {
        process.kill(proc.pid, 'SIGKILL');
        await proc.exited;
      }
      if (stopFirst) await proc?.stop(10_000);
      if (startAfter && this.controller?.running() !== true) {
        this.controller = await this.startController(c, how.api, how.topo, this.runSignal);
      }
      pid = this.controller?.running() === true ? this.controller.pid : undefined;
      if (pid === undefined) delete this.state.controllerPid;
      else this.state.controllerPid = pid;
    } else {
      const n = this.nodes.find((x) => x.spec.name === req.node);
      if (n === undefined) {
        throw new ComponentError(
          'COMPONENT_UNAVAILABLE',
          `no Node ${req.node ?? ''} in this lab (${this.nodes.map((x) => x.spec.name).join(', ')})`,
        );
      }
      if (req.component === 'antrea-agent') {
        const cni = this.o.cni;
        if (cni.kill === undefined) {
          throw new ComponentError('COMPONENT_UNAVAILABLE', `the ${cni.kind} CNI runs no antrea-agent`);
        }
        if (req.action === 'kill') await cni.kill(n.ctx);
        if (stopFirst) await cni.stop(n.ctx);
        if (startAfter) await cni.start(n.ctx, this.runSignal);
        pid = cni.pids?.(n.ctx)['antrea-agent'];
        if (pid === undefined) delete n.state.pids['antrea-agent'];
        else n.state.pids['antrea-agent'] = pid;
      } else {
        if (req.action === 'kill') await n.ovs.kill('ovs-vswitchd');
        else if (req.action === 'stop') await n.ovs.kill('ovs-vswitchd', 'SIGTERM');
        else if (req.action === 'restart') await n.ovs.restart('ovs-vswitchd');
        else await n.ovs.start();
        if (n.ovs.running('ovs-vswitchd')) {
          pid = Number.parseInt(readFileSync(n.ovs.pidPath('ovs-vswitchd'), 'utf8'), 10);
          n.state.pids['ovs-vswitchd'] = pid;
        } else delete n.state.pids['ovs-vswitchd'];
      }
    }
    this.save();
    const result = { ...req, ...(pid === undefined ? {} : { pid }), ms: Math.round(this.clock.monotonic() - t0) };
    this.log.info('component request done', { ...result });
    return result;
  }

  /** Waits for ConfigMap antrea-ca (the controller publishes its CA there) and writes it to a file. */
  private async writeControllerCA(client: KubeClient, signal: AbortSignal): Promise<string> {
    const file = join(this.paths.controllerDir, 'ca.crt');
    const deadline = this.clock.monotonic() + 60_000;
    for (;;) {
      const cm = await client
        .get<{ data?: Record<string, string> }>({
          apiVersion: 'v1',
          resource: 'configmaps',
          namespace: 'kube-system',
          name: 'antrea-ca',
        })
        .catch(() => undefined);
      const ca = cm?.data?.['ca.crt'];
      if (ca !== undefined && ca !== '') {
        writeFileSync(file, ca);
        return file;
      }
      if (this.clock.monotonic() > deadline) throw new Error('antrea-controller published no CA (ConfigMap antrea-ca)');
      await this.clock.sleep(200, signal);
    }
  }

  /**
   * An agent's connection to antrea-controller: a token of the antrea-agent ServiceAccount bound to
   * its Node (as a Pod-bound projected token is, through the user extra the controller checks).
   */
  private agentConnection(
    node: string,
    c: { url: string; caFile: string; api: ApiServer },
  ): { url: string; caFile: string; tokenFile: string } {
    const token = randomBytes(24).toString('hex');
    c.api.addStaticToken(token, {
      name: 'system:serviceaccount:kube-system:antrea-agent',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
      extra: { 'authentication.kubernetes.io/node-name': [node] },
    });
    const tokenFile = join(this.paths.controllerDir, `agent-token-${node}`);
    writeFileSync(tokenFile, token, { mode: 0o600 });
    return { url: c.url, caFile: c.caFile, tokenFile };
  }

  /** Creates the ServiceAccounts, ClusterRoles and bindings of Antrea's RBAC manifest (idempotent). */
  private async applyRbac(manifest: string, client: KubeClient): Promise<void> {
    for (const doc of parseAllDocuments(readFileSync(manifest, 'utf8'))) {
      const obj = doc.toJS() as KubeObject & { apiVersion?: string; kind?: string };
      const resource = RBAC_RESOURCES[obj.kind ?? ''];
      if (resource === undefined || obj.apiVersion === undefined) continue;
      await client.createOrReplace(
        {
          apiVersion: obj.apiVersion,
          resource,
          ...(obj.metadata?.namespace === undefined ? {} : { namespace: obj.metadata.namespace }),
          ...(obj.metadata?.name === undefined ? {} : { name: obj.metadata.name }),
        },
        obj,
      );
    }
  }

  /**
   * Runs antrea-controller as its own child process (so it can be stopped and restarted alone), as
   * the antrea-controller ServiceAccount with Antrea's RBAC, listening only on the control address.
   * Resolves once its API accepts connections.
   */
  private async startController(
    c: NonNullable<SupervisorOptions['controller']>,
    api: ApiServer,
    topo: LabTopology,
    signal: AbortSignal,
  ): Promise<ProcessHandle> {
    mkdirSync(this.paths.controllerDir, { recursive: true });
    api.writeKubeconfig(this.paths.controllerKubeconfig, {
      token: api.issueToken('kube-system', 'antrea-controller', { expirationSeconds: 365 * 24 * 3600 }),
      user: 'antrea-controller',
    });
    writeFileSync(
      this.paths.controllerConfig,
      [
        '# Written by antrea-lab: the controller listens only on the lab control address.',
        `apiBindAddress: ${topo.control.hostIP}`,
        `apiPort: ${CONTROLLER_PORT}`,
        'selfSignedCert: true',
        '',
      ].join('\n'),
    );
    const [cmd, ...args] = c.command;
    if (cmd === undefined) throw new Error('controller command is empty');
    const proc = await this.o.launcher.launch(
      cmd,
      [...args, '--config', this.paths.controllerConfig, '--kubeconfig', this.paths.controllerKubeconfig],
      {
        logFile: this.paths.controllerLog,
        env: {
          POD_NAMESPACE: 'kube-system',
          POD_NAME: 'antrea-controller',
          NODE_COMPILE_CACHE: this.paths.compileCache,
        },
      },
    );
    this.state.controllerPid = proc.pid;
    this.save();
    try {
      const deadline = this.clock.monotonic() + 60_000;
      for (;;) {
        if (!proc.running()) {
          const info = await proc.exited;
          throw new Error(
            `antrea-controller exited (code ${info.code}, signal ${info.signal}); see ${this.paths.controllerLog}`,
          );
        }
        if (await tcpAccepts(topo.control.hostIP, CONTROLLER_PORT)) return proc;
        if (this.clock.monotonic() > deadline) {
          throw new Error(`antrea-controller did not listen on ${topo.controllerAddress} within 60 s`);
        }
        await this.clock.sleep(100, signal);
      }
    } catch (err) {
      await proc.stop(5_000);
      throw err;
    }
  }

  private async startNode(
    spec: LabNodeSpec,
    topo: LabTopology,
    fabric: LabFabric,
    client: KubeClient,
    api: ApiServer,
    signal: AbortSignal,
  ): Promise<RunningNode> {
    await fabric.addNode(topo, spec);
    const ovs = new OvsDaemons({
      runDir: this.paths.ovsRunDir(spec.name),
      netns: spec.netns,
      runner: this.o.runner,
      launcher: this.o.launcher,
      logger: this.log,
      clock: this.clock,
    });
    const state: LabNodeState = {
      name: spec.name,
      netns: spec.netns,
      nodeIP: spec.nodeIP,
      controlIP: spec.controlIP,
      pids: {},
    };
    await ovs.start();
    for (const d of ['ovsdb-server', 'ovs-vswitchd'] as const) {
      const pid = Number.parseInt(readFileSync(ovs.pidPath(d), 'utf8'), 10);
      if (Number.isInteger(pid)) state.pids[d] = pid;
    }
    const runtime = new CniRuntime({
      confDir: this.paths.cniConfDir(spec.name),
      binDirs: this.o.cni.binDirs({
        nodeName: spec.name,
        netns: spec.netns,
        podCIDR: '',
        nodeIP: spec.nodeIP,
        paths: this.paths,
      }),
      cacheDir: this.paths.cniCacheDir(spec.name),
      runner: this.o.runner,
      netns: spec.netns,
      logger: this.log,
    });
    const kubelet = new Kubelet({
      nodeName: spec.name,
      nodeNetns: spec.netns,
      nodeIP: spec.nodeIP,
      labPrefix: topo.prefix,
      client,
      runtime,
      runner: this.o.runner,
      launcher: this.o.launcher,
      paths: this.paths,
      podCommand: this.o.podCommand,
      podEnv: { NODE_COMPILE_CACHE: this.paths.compileCache },
      logger: this.log,
      clock: this.clock,
    });
    let podCIDR = await kubelet.register();
    const deadline = this.clock.monotonic() + 30_000;
    while (podCIDR === undefined) {
      if (this.clock.monotonic() > deadline) throw new Error(`${spec.name} got no podCIDR from the API server`);
      await this.clock.sleep(100, signal);
      podCIDR = (
        await client.get<{ spec?: { podCIDR?: string } }>({ apiVersion: 'v1', resource: 'nodes', name: spec.name })
      ).spec?.podCIDR;
    }
    state.podCIDR = podCIDR;
    const kubeconfig = this.writeAgentKubeconfig(spec.name, api);
    const ctx: NodeCniContext = {
      nodeName: spec.name,
      netns: spec.netns,
      podCIDR,
      nodeIP: spec.nodeIP,
      paths: this.paths,
      ...(this.controllerConn === undefined
        ? {}
        : { controller: this.agentConnection(spec.name, this.controllerConn) }),
      ...(kubeconfig === undefined ? {} : { kubeconfig }),
    };
    await this.o.cni.start(ctx, signal);
    Object.assign(state.pids, this.o.cni.pids?.(ctx) ?? {});
    await kubelet.reportNodeStatus();
    this.progress(`  ${spec.name}: ${spec.nodeIP}, Pod CIDR ${podCIDR}, namespace ${spec.netns}`);
    return { spec, ovs, kubelet, ctx, state };
  }

  /**
   * Writes the kubeconfig of a Node's antrea-agent: the antrea-agent ServiceAccount with a token bound
   * to the Node (its name in the user's extra, as the controller's Node binding expects), for the API
   * server on the control address, which the Node's namespace reaches over ctl0. Undefined when the
   * lab applied no RBAC (no controller), so the agent has no account.
   */
  private writeAgentKubeconfig(node: string, api: ApiServer): string | undefined {
    if (this.o.controller === undefined) return undefined;
    const path = this.paths.agentKubeconfig(node);
    api.writeKubeconfig(path, {
      token: api.issueToken('kube-system', 'antrea-agent', { expirationSeconds: 365 * 24 * 3600, boundNode: node }),
      user: `antrea-agent-${node}`,
    });
    return path;
  }

  private async waitNodesReady(informer: Informer<KubeObject>, count: number, signal: AbortSignal): Promise<void> {
    const deadline = this.clock.monotonic() + (this.o.readyTimeoutMs ?? 180_000);
    for (;;) {
      const ready = [...informer.list()].filter((n) =>
        ((n as { status?: { conditions?: { type?: string; status?: string }[] } }).status?.conditions ?? []).some(
          (c) => c.type === 'Ready' && c.status === 'True',
        ),
      ).length;
      if (ready >= count) return;
      if (this.clock.monotonic() > deadline) throw new Error(`only ${ready} of ${count} Nodes became Ready`);
      await this.clock.sleep(100, signal);
    }
  }
}

/** Whether a TCP connection to host:port is accepted (within 1 s). */
function tcpAccepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port, timeout: 1000 });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.once('connect', () => done(true));
    sock.once('timeout', () => done(false));
    sock.once('error', () => done(false));
  });
}

/** Appends one progress line (read by `antrea-lab up`). */
export function writeProgress(paths: LabPaths, line: string): void {
  appendFileSync(paths.progress, `${line}\n`);
}
