/**
 * The kubelet stand-in of one lab Node. It registers the Node (addresses, Ready condition once a CNI
 * network configuration is present, a heartbeat Lease), and for each Pod bound to it:
 * - creates the Pod's network namespace and calls the CNI plugins of the Node's configuration list
 *   exactly as a container runtime does (CniRuntime), retrying ADD while the plugin answers "try
 *   again later" and calling DEL after a failed ADD;
 * - starts the Pod's program (lab-pod, inside the namespace) serving TCP and UDP on the container
 *   ports the spec declares, and waits until it answers on its control socket;
 * - reports phase, Pod IPs, host IP, conditions and container statuses;
 * - when the Pod is deleted: stops the program, calls DEL, deletes the namespace and removes the
 *   Pod object (grace period 0), as a kubelet completes a graceful deletion.
 * Work on one Pod is serialized; different Pods proceed in parallel.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { Backoff } from '../common/util/backoff.ts';
import { type Clock, systemClock } from '../common/util/clock.ts';
import { errorMessage } from '../common/util/errors.ts';
import type { CommandRunner, ProcessHandle, ProcessLauncher } from '../common/util/exec.ts';
import { type Logger, nullLogger } from '../common/util/log.ts';
import type { Pod } from '../common/k8s/objects.ts';
import { NetnsManager, netnsPath } from '../platform/linux/netns.ts';
import { CniRuntime, CniRuntimeError, resultIPs } from './cni-runtime.ts';
import { isNotFound, type KubeClient } from './kube-client.ts';
import { PodControlClient } from './probe.ts';
import type { LabPaths } from './state.ts';
import { podNetnsName } from './topology.ts';

/** What the lab knows about a running Pod (written to the data directory for the CLI). */
export interface PodRecord {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly node: string;
  readonly netns: string;
  readonly socket: string;
  readonly containerId: string;
  readonly ips: readonly string[];
  readonly pid: number;
}

export interface KubeletOptions {
  readonly nodeName: string;
  /** The Node's network namespace (plugins run there). */
  readonly nodeNetns: string;
  readonly nodeIP: string;
  readonly labPrefix: string;
  readonly client: KubeClient;
  readonly runtime: CniRuntime;
  readonly runner: CommandRunner;
  readonly launcher: ProcessLauncher;
  readonly paths: LabPaths;
  /** argv that starts the Pod program (node + lab-pod.ts); the kubelet appends its flags. */
  readonly podCommand: readonly string[];
  /** Extra environment of the Pod program (e.g. NODE_COMPILE_CACHE). */
  readonly podEnv?: Readonly<Record<string, string>>;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Node labels beyond the standard ones. */
  readonly labels?: Readonly<Record<string, string>>;
  /** How long to keep retrying a Pod's ADD before reporting it failed and backing off (default 120 s). */
  readonly addDeadlineMs?: number;
}

interface PodRuntime {
  uid: string;
  namespace: string;
  name: string;
  netns: string;
  containerId: string;
  proc?: ProcessHandle;
  ips: string[];
  socket: string;
  attached: boolean;
  /** Times the program was restarted after it exited on its own. */
  restarts: number;
  /** Set while the kubelet itself stops the program. */
  stopping: boolean;
}

/** TCP and UDP container ports a Pod declares, and the ones it cannot serve. */
export function podPorts(pod: Pod | Record<string, unknown>): { tcp: number[]; udp: number[]; unsupported: string[] } {
  const tcp = new Set<number>();
  const udp = new Set<number>();
  const unsupported = new Set<string>();
  for (const c of (pod as Pod).spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      const proto = (p.protocol ?? 'TCP').toUpperCase();
      if (proto === 'TCP') tcp.add(p.containerPort);
      else if (proto === 'UDP') udp.add(p.containerPort);
      else unsupported.add(`${p.containerPort}/${proto}`);
    }
  }
  const sorted = (s: Set<number>): number[] => [...s].sort((a, b) => a - b);
  return { tcp: sorted(tcp), udp: sorted(udp), unsupported: [...unsupported].sort() };
}

/** Reads `aborted` afresh (the compiler narrows the property after a loop test). */
function isAborted(s: AbortSignal): boolean {
  return s.aborted;
}

function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

export class Kubelet {
  private readonly o: KubeletOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly netns: NetnsManager;
  private readonly pods = new Map<string, PodRuntime>();
  /** Per-uid serialized work. */
  private readonly chains = new Map<string, Promise<void>>();
  /** Latest object seen per uid (undefined: deleted). */
  private readonly latest = new Map<string, Pod | undefined>();
  private stopped = false;
  private nodeReady = false;
  /** Pods (by uid) whose next attempt waits for a backoff. */
  private readonly retryTimers = new Map<string, { cancel(): void }>();
  private readonly backoffs = new Map<string, Backoff>();

  constructor(o: KubeletOptions) {
    this.o = o;
    this.log = (o.logger ?? nullLogger).child({ component: 'kubelet', node: o.nodeName });
    this.clock = o.clock ?? systemClock;
    this.netns = new NetnsManager(o.runner);
  }

  get nodeName(): string {
    return this.o.nodeName;
  }

  /** Creates (or refreshes) the Node object; returns its podCIDR once allocated. */
  async register(): Promise<string | undefined> {
    const c = this.o.client;
    const ref = { apiVersion: 'v1', resource: 'nodes', name: this.o.nodeName } as const;
    let node = await c.find<{ spec?: { podCIDR?: string } }>(ref);
    if (node === undefined) {
      node = await c.create<{ spec?: { podCIDR?: string } }>(ref, {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: this.o.nodeName,
          labels: {
            'kubernetes.io/hostname': this.o.nodeName,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
            ...this.o.labels,
          },
        },
        spec: {},
      });
    }
    await this.reportNodeStatus();
    return node.spec?.podCIDR;
  }

  /** Writes the Node's status: addresses, capacity, and Ready when the CNI network is configured. */
  async reportNodeStatus(): Promise<void> {
    const ready = this.o.runtime.networkReady();
    const now = rfc3339(this.clock.now());
    const condition = (type: string, status: string, reason: string, message: string): Record<string, string> => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: now,
      lastTransitionTime: now,
    });
    await this.o.client.patch(
      { apiVersion: 'v1', resource: 'nodes', name: this.o.nodeName, subresource: 'status' },
      {
        status: {
          addresses: [
            { type: 'InternalIP', address: this.o.nodeIP },
            { type: 'Hostname', address: this.o.nodeName },
          ],
          capacity: { cpu: '2', memory: '4Gi', pods: '110' },
          allocatable: { cpu: '2', memory: '4Gi', pods: '110' },
          conditions: [
            condition(
              'MemoryPressure',
              'False',
              'KubeletHasSufficientMemory',
              'kubelet has sufficient memory available',
            ),
            condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
            condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
            ready
              ? condition('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status')
              : condition(
                  'Ready',
                  'False',
                  'KubeletNotReady',
                  'container runtime network not ready: no CNI configuration',
                ),
          ],
          nodeInfo: {
            kubeletVersion: 'v1.32.4-antrea-lab',
            kubeProxyVersion: '',
            containerRuntimeVersion: 'antrea-lab://1',
            operatingSystem: 'linux',
            architecture: process.arch === 'x64' ? 'amd64' : process.arch,
            osImage: 'antrea-lab',
            kernelVersion: '',
            machineID: '',
            systemUUID: '',
            bootID: '',
          },
        },
      },
    );
    if (ready !== this.nodeReady) this.log.info('node readiness', { ready });
    this.nodeReady = ready;
  }

  /** Renews the Node's heartbeat Lease in kube-node-lease. */
  async renewLease(): Promise<void> {
    const ref = {
      apiVersion: 'coordination.k8s.io/v1',
      resource: 'leases',
      namespace: 'kube-node-lease',
      name: this.o.nodeName,
    } as const;
    const renewTime = new Date(this.clock.now()).toISOString().replace('Z', '000Z');
    const spec = { holderIdentity: this.o.nodeName, leaseDurationSeconds: 40, renewTime };
    const lease = await this.o.client.find(ref);
    if (lease === undefined) {
      await this.o.client.create(ref, {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.o.nodeName, namespace: 'kube-node-lease' },
        spec,
      });
    } else await this.o.client.patch(ref, { spec });
  }

  /** Keeps the Lease and Node status fresh until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    let tick = 0;
    while (!signal.aborted) {
      try {
        await this.renewLease();
        if (tick % 4 === 0 || this.o.runtime.networkReady() !== this.nodeReady) await this.reportNodeStatus();
      } catch (err) {
        if (!isAborted(signal)) this.log.warn('heartbeat failed', { err: errorMessage(err) });
      }
      tick++;
      try {
        await this.clock.sleep(this.nodeReady ? 10_000 : 500, signal);
      } catch {
        break;
      }
    }
  }

  /** Feeds a Pod event (from the shared Pod informer) for a Pod bound to this Node. */
  onPod(type: 'ADDED' | 'MODIFIED' | 'DELETED', pod: Pod): void {
    const uid = pod.metadata?.uid;
    if (uid === undefined || this.stopped) return;
    this.latest.set(uid, type === 'DELETED' ? undefined : pod);
    this.enqueue(uid);
  }

  private enqueue(uid: string): void {
    const prev = this.chains.get(uid) ?? Promise.resolve();
    const next = prev
      .then(() => this.sync(uid))
      .catch((err: unknown) => this.log.error('pod sync failed', { uid, err: errorMessage(err) }));
    this.chains.set(uid, next);
    void next.then(() => {
      if (this.chains.get(uid) === next) this.chains.delete(uid);
    });
  }

  /** Resolves when no Pod work is pending. */
  async idle(): Promise<void> {
    while (this.chains.size > 0) await Promise.all([...this.chains.values()]);
  }

  private async sync(uid: string): Promise<void> {
    if (this.stopped) return;
    const pod = this.latest.get(uid);
    const rt = this.pods.get(uid);
    if (pod === undefined || pod.metadata?.deletionTimestamp !== undefined) {
      if (rt !== undefined) await this.teardown(rt);
      this.cancelRetry(uid);
      if (pod !== undefined) await this.finishDeletion(pod);
      else this.latest.delete(uid);
      return;
    }
    if (rt?.proc?.running() === true) return;
    await this.setup(pod);
  }

  private cancelRetry(uid: string): void {
    this.retryTimers.get(uid)?.cancel();
    this.retryTimers.delete(uid);
    this.backoffs.delete(uid);
  }

  private scheduleRetry(uid: string): void {
    if (this.stopped || this.retryTimers.has(uid)) return;
    let b = this.backoffs.get(uid);
    if (b === undefined) {
      b = new Backoff({ initialMs: 1000, maxMs: 30_000 });
      this.backoffs.set(uid, b);
    }
    const t = this.clock.setTimer(b.next(), () => {
      this.retryTimers.delete(uid);
      this.enqueue(uid);
    });
    this.retryTimers.set(uid, t);
  }

  private async setup(pod: Pod): Promise<void> {
    const meta = pod.metadata ?? {};
    const uid = meta.uid ?? '';
    const namespace = meta.namespace ?? 'default';
    const name = meta.name ?? '';
    const t0 = this.clock.monotonic();
    let rt = this.pods.get(uid);
    if (rt === undefined) {
      rt = {
        uid,
        namespace,
        name,
        netns: podNetnsName(this.o.labPrefix, uid),
        containerId: randomBytes(32).toString('hex'),
        ips: [],
        socket: this.o.paths.podSocket(uid.replace(/-/g, '').slice(0, 12)),
        attached: false,
        restarts: 0,
        stopping: false,
      };
      this.pods.set(uid, rt);
    }
    try {
      await this.netns.ensure(rt.netns);
      if (!rt.attached) await this.attach(rt);
      await this.startProgram(rt, pod);
      await this.reportRunning(pod, rt);
      this.cancelRetry(uid);
      this.log.info('pod running', {
        pod: `${namespace}/${name}`,
        ip: rt.ips[0],
        ms: Math.round(this.clock.monotonic() - t0),
      });
    } catch (err) {
      this.log.warn('pod setup failed; will retry', { pod: `${namespace}/${name}`, err: errorMessage(err) });
      await this.reportPending(pod, err).catch(() => undefined);
      this.scheduleRetry(uid);
    }
  }

  private attachment(rt: PodRuntime): Parameters<CniRuntime['add']>[0] {
    return {
      containerId: rt.containerId,
      netnsPath: netnsPath(rt.netns),
      ifName: 'eth0',
      podNamespace: rt.namespace,
      podName: rt.name,
      podUid: rt.uid,
    };
  }

  /** CNI ADD, retried while the plugin says "try again later"; DEL after a failure, as runtimes do. */
  private async attach(rt: PodRuntime): Promise<void> {
    const a = this.attachment(rt);
    const deadline = this.clock.monotonic() + (this.o.addDeadlineMs ?? 120_000);
    const backoff = new Backoff({ initialMs: 200, maxMs: 3000 });
    for (;;) {
      try {
        const result = await this.o.runtime.add(a);
        rt.ips = resultIPs(result, a.ifName);
        if (rt.ips.length === 0) throw new Error('the CNI result gave the Pod no IP address');
        rt.attached = true;
        return;
      } catch (err) {
        await this.o.runtime
          .del(a)
          .catch((e: unknown) => this.log.warn('DEL after failed ADD failed', { err: errorMessage(e) }));
        const retryable = err instanceof CniRuntimeError && err.tryAgainLater;
        if (!retryable || this.clock.monotonic() > deadline || this.stopped) throw err;
        this.log.debug('CNI ADD: try again later', { pod: `${rt.namespace}/${rt.name}` });
        await this.clock.sleep(backoff.next());
      }
    }
  }

  private async startProgram(rt: PodRuntime, pod: Pod): Promise<void> {
    const { tcp, udp, unsupported } = podPorts(pod);
    const [cmd, ...base] = this.o.podCommand;
    if (cmd === undefined) throw new Error('no Pod command configured');
    mkdirSync(this.o.paths.podsDir, { recursive: true });
    rt.proc = await this.o.launcher.launch(
      'ip',
      [
        'netns',
        'exec',
        rt.netns,
        cmd,
        ...base,
        '--hostname',
        rt.name,
        '--socket',
        rt.socket,
        '--tcp',
        tcp.join(','),
        '--udp',
        udp.join(','),
        '--unsupported',
        unsupported.join(','),
      ],
      {
        logFile: `${rt.socket.replace(/\.sock$/, '')}.log`,
        ...(this.o.podEnv === undefined ? {} : { env: this.o.podEnv }),
      },
    );
    const proc = rt.proc;
    void proc.exited.then((info) => {
      if (rt.stopping || this.stopped || this.pods.get(rt.uid) !== rt || rt.proc !== proc) return;
      rt.restarts++;
      this.log.warn('pod program exited; restarting it', {
        pod: `${rt.namespace}/${rt.name}`,
        code: info.code,
        signal: info.signal,
      });
      this.enqueue(rt.uid);
    });
    const deadline = this.clock.monotonic() + 15_000;
    for (;;) {
      if (!rt.proc.running()) {
        const info = await rt.proc.exited;
        throw new Error(`the Pod program exited at start (code ${info.code}, signal ${info.signal})`);
      }
      try {
        const c = await PodControlClient.connect(rt.socket, 1000);
        try {
          await c.status();
        } finally {
          c.close();
        }
        break;
      } catch (err) {
        if (this.clock.monotonic() > deadline) {
          await rt.proc.stop(1000);
          throw new Error(`the Pod program did not answer on ${rt.socket}: ${errorMessage(err)}`, { cause: err });
        }
        await this.clock.sleep(25);
      }
    }
    const record: PodRecord = {
      namespace: rt.namespace,
      name: rt.name,
      uid: rt.uid,
      node: this.o.nodeName,
      netns: rt.netns,
      socket: rt.socket,
      containerId: rt.containerId,
      ips: rt.ips,
      pid: rt.proc.pid,
    };
    writeFileSync(this.o.paths.podRecord(rt.namespace, rt.name), JSON.stringify(record, null, 2) + '\n');
  }

  private statusRef(pod: Pod): {
    apiVersion: 'v1';
    resource: 'pods';
    namespace: string;
    name: string;
    subresource: 'status';
  } {
    return {
      apiVersion: 'v1',
      resource: 'pods',
      namespace: pod.metadata?.namespace ?? 'default',
      name: pod.metadata?.name ?? '',
      subresource: 'status',
    };
  }

  private async reportRunning(pod: Pod, rt: PodRuntime): Promise<void> {
    const now = rfc3339(this.clock.now());
    const cond = (type: string): Record<string, string> => ({ type, status: 'True', lastTransitionTime: now });
    const containers = (pod.spec?.containers ?? []).map((c) => ({
      name: c.name ?? '',
      ready: true,
      started: true,
      restartCount: rt.restarts,
      image: (c as { image?: string }).image ?? '',
      imageID: '',
      containerID: `antrea-lab://${rt.containerId.slice(0, 16)}`,
      state: { running: { startedAt: now } },
    }));
    await this.o.client.patch(this.statusRef(pod), {
      metadata: { uid: rt.uid },
      status: {
        phase: 'Running',
        hostIP: this.o.nodeIP,
        hostIPs: [{ ip: this.o.nodeIP }],
        podIP: rt.ips[0],
        podIPs: rt.ips.map((ip) => ({ ip })),
        startTime: now,
        conditions: ['PodReadyToStartContainers', 'Initialized', 'ContainersReady', 'Ready', 'PodScheduled'].map(cond),
        containerStatuses: containers,
      },
    });
  }

  private async reportPending(pod: Pod, err: unknown): Promise<void> {
    const now = rfc3339(this.clock.now());
    await this.o.client.patch(this.statusRef(pod), {
      metadata: { uid: pod.metadata?.uid },
      status: {
        phase: 'Pending',
        hostIP: this.o.nodeIP,
        conditions: [
          { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
          {
            type: 'Ready',
            status: 'False',
            reason: 'ContainersNotReady',
            message: errorMessage(err).slice(0, 500),
            lastTransitionTime: now,
          },
        ],
      },
    });
  }

  /** Stops the program, calls DEL, deletes the namespace and the record. Errors are logged; it carries on. */
  private async teardown(rt: PodRuntime): Promise<void> {
    rt.stopping = true;
    await rt.proc?.stop(2000);
    if (rt.attached || this.netns.exists(rt.netns)) {
      try {
        await this.o.runtime.del(this.attachment(rt));
      } catch (err) {
        this.log.warn('CNI DEL failed', { pod: `${rt.namespace}/${rt.name}`, err: errorMessage(err) });
      }
    }
    try {
      await this.netns.delete(rt.netns);
    } catch (err) {
      this.log.warn('deleting the Pod namespace failed', { netns: rt.netns, err: errorMessage(err) });
    }
    rmSync(this.o.paths.podRecord(rt.namespace, rt.name), { force: true });
    rmSync(rt.socket, { force: true });
    this.pods.delete(rt.uid);
    this.log.info('pod removed', { pod: `${rt.namespace}/${rt.name}` });
  }

  /** Completes a graceful deletion: removes the object now that the Pod is gone from the Node. */
  private async finishDeletion(pod: Pod): Promise<void> {
    const uid = pod.metadata?.uid;
    try {
      await this.o.client.delete(
        {
          apiVersion: 'v1',
          resource: 'pods',
          namespace: pod.metadata?.namespace ?? 'default',
          name: pod.metadata?.name ?? '',
        },
        { gracePeriodSeconds: 0, ...(uid === undefined ? {} : { uid }) },
      );
    } catch (err) {
      if (!isNotFound(err)) this.log.warn('completing the Pod deletion failed', { err: errorMessage(err) });
    }
  }

  /**
   * Stops every Pod program (the lab is shutting down); with `detach`, also calls DEL and removes
   * the namespaces. Further events are ignored.
   */
  async shutdown(detach: boolean): Promise<void> {
    this.stopped = true;
    for (const t of this.retryTimers.values()) t.cancel();
    this.retryTimers.clear();
    await Promise.allSettled([...this.chains.values()]);
    await Promise.all(
      [...this.pods.values()].map(async (rt) => {
        rt.stopping = true;
        if (detach) await this.teardown(rt);
        else await rt.proc?.stop(2000);
      }),
    );
  }
}
