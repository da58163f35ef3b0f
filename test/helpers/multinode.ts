/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- client-node model classes are plain data shapes; object literals are how its API is used. */
/**
 * A small multi-Node cluster for integration tests and benchmarks, built on {@link AgentNode}: N
 * Nodes (each a namespace with its own OVS and antrea-agent), an underlay "router" namespace with
 * two subnets (Linux bridges: a = 192.0.2.0/24, b = 198.51.100.0/24) and an "external" namespace
 * behind it (203.0.113.0/24, host 203.0.113.100) that plays the outside world, and the embedded
 * API server holding the Node objects the agents watch.
 *
 * The API server runs in the test process; the agents reach it over a veth between the root
 * namespace and the router (a random link-local /30; the router masquerades the Nodes' traffic to
 * it, so the root namespace only has that connected route). Nothing routes out of the machine.
 */
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import type { Test } from 'tap';
import { CoreV1Api, KubeConfig, type V1Node } from '@kubernetes/client-node';
import type { ProcessHandle } from '../../src/common/util/exec.ts';
import { startApiServer, type ApiServer } from '../../src/lab/apiserver/index.ts';
import { disableTxChecksum, inNetns } from '../../src/platform/linux/libc.ts';
import { AgentNode, type Teardown } from './agent-node.ts';
import { launcher, runner, shortTempDir, tempNetns, uniqueName } from './env.ts';

export const SUBNETS = {
  a: { cidr: '192.0.2.0/24', router: '192.0.2.1', base: '192.0.2.' },
  b: { cidr: '198.51.100.0/24', router: '198.51.100.1', base: '198.51.100.' },
} as const;
export const EXTERNAL_HOST = '203.0.113.100';
const PROBE = join(import.meta.dirname, 'netprobe.ts');

export interface ClusterNodeSpec {
  readonly subnet: 'a' | 'b';
  /** Extra antrea-agent.conf lines for this Node only. */
  readonly extraConfig?: string;
}

export interface ClusterOptions {
  readonly trafficEncapMode: 'encap' | 'noEncap' | 'hybrid' | 'networkPolicyOnly';
  readonly tunnelType?: 'geneve' | 'vxlan' | 'gre';
  readonly nodes: readonly ClusterNodeSpec[];
  /** Give the router routes to every Pod CIDR (an underlay that routes Pods, for noEncap across subnets). */
  readonly routerRoutesPods?: boolean;
  /**
   * Extra antrea-agent flags per Node, given the Node's name and the root namespace's address on
   * the control link (where a server in the test process is reachable from the Nodes).
   */
  readonly agentArgs?: (node: { readonly name: string; readonly controlIP: string }) => readonly string[];
}

export interface ClusterPod {
  readonly node: AgentNode;
  readonly name: string;
  readonly netns: string;
  readonly ip: string;
}

function nsName(path: string): string {
  return path.replace(/^\/run\/netns\//, '');
}

/** Turns TX checksum offload off on a device in a namespace (userspace OVS needs full checksums). */
function noTxCsum(ns: string, dev: string): void {
  inNetns(`/run/netns/${ns}`, () => disableTxChecksum(dev));
}

export class Cluster {
  readonly router: string;
  readonly external: string;
  readonly api: ApiServer;
  readonly kubeconfigPath: string;
  readonly nodes: AgentNode[] = [];
  readonly specs: ClusterNodeSpec[] = [];
  private readonly t: Teardown;
  private readonly core: CoreV1Api;

  private constructor(t: Teardown, router: string, external: string, api: ApiServer, kubeconfigPath: string) {
    this.t = t;
    this.router = router;
    this.external = external;
    this.api = api;
    this.kubeconfigPath = kubeconfigPath;
    const kc = new KubeConfig();
    kc.loadFromString(api.kubeconfig());
    this.core = kc.makeApiClient(CoreV1Api);
  }

  /** Builds the underlay, the API server and the Nodes (agents not started; see {@link startAgents}). */
  static async create(t: Teardown, opts: ClusterOptions): Promise<Cluster> {
    const tt = t as Test;
    const dir = shortTempDir(tt, 'mn');
    const router = await tempNetns(tt, 'mnr-');
    const external = await tempNetns(tt, 'mne-');
    const ip = (ns: string, ...args: string[]): Promise<unknown> => runner.run('ip', ['-n', ns, ...args]);
    await runner.run('ip', ['netns', 'exec', router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    for (const [name, s] of Object.entries(SUBNETS)) {
      await ip(router, 'link', 'add', `sw-${name}`, 'type', 'bridge');
      await ip(router, 'addr', 'add', `${s.router}/24`, 'dev', `sw-${name}`);
      await ip(router, 'link', 'set', `sw-${name}`, 'up');
    }
    await ip(router, 'link', 'add', 'ext', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', external);
    await ip(router, 'addr', 'add', '203.0.113.1/24', 'dev', 'ext');
    await ip(router, 'link', 'set', 'ext', 'up');
    await ip(external, 'addr', 'add', `${EXTERNAL_HOST}/24`, 'dev', 'eth0');
    await ip(external, 'link', 'set', 'eth0', 'up');
    await ip(external, 'route', 'add', 'default', 'via', '203.0.113.1');
    noTxCsum(router, 'ext');
    noTxCsum(external, 'eth0');

    // The control link to the API server in the root namespace: a random link-local /30.
    const third = randomInt(1, 254);
    const fourth = randomInt(0, 63) * 4;
    const rootIp = `169.254.${third}.${fourth + 1}`;
    const routerIp = `169.254.${third}.${fourth + 2}`;
    const ctl = uniqueName('mnc');
    await runner.run('ip', ['link', 'add', ctl, 'type', 'veth', 'peer', 'name', 'ctl', 'netns', router]);
    t.teardown(() => runner.run('ip', ['link', 'del', ctl], { okExitCodes: [1] }));
    await runner.run('ip', ['addr', 'add', `${rootIp}/30`, 'dev', ctl]);
    await runner.run('ip', ['link', 'set', ctl, 'up']);
    await ip(router, 'addr', 'add', `${routerIp}/30`, 'dev', 'ctl');
    await ip(router, 'link', 'set', 'ctl', 'up');
    noTxCsum(router, 'ctl');
    await runner.run('ip', [
      'netns',
      'exec',
      router,
      'iptables',
      '-w',
      '-t',
      'nat',
      '-A',
      'POSTROUTING',
      '-o',
      'ctl',
      '-j',
      'MASQUERADE',
    ]);
    const api = await startApiServer({ host: rootIp, port: 0, advertiseAddress: rootIp });
    t.teardown(() => api.stop());
    const kubeconfigPath = join(dir, 'kubeconfig');
    api.writeKubeconfig(kubeconfigPath);

    const cluster = new Cluster(t, router, external, api, kubeconfigPath);
    const mode = opts.trafficEncapMode;
    let index = 0;
    for (const spec of opts.nodes) {
      index++;
      const s = SUBNETS[spec.subnet];
      const nodeIP = `${s.base}${10 + index}`;
      const podCIDR = `10.10.${index}.0/24`;
      const node = await AgentNode.create(t, {
        nodeName: `node-${index}`,
        nodeIP,
        podCIDR,
        extraConfig: [
          `trafficEncapMode: ${mode}`,
          ...(opts.tunnelType === undefined ? [] : [`tunnelType: ${opts.tunnelType}`]),
          'clientConnection:',
          `  kubeconfig: ${kubeconfigPath}`,
          spec.extraConfig ?? '',
        ].join('\n'),
        ...(opts.agentArgs === undefined
          ? {}
          : { extraArgs: opts.agentArgs({ name: `node-${index}`, controlIP: rootIp }) }),
      });
      const peer = `mnp${index}-${uniqueName('').slice(0, 6)}`;
      await ip(node.ns, 'link', 'set', 'uplink-peer', 'netns', router, 'name', peer);
      await ip(router, 'link', 'set', peer, 'master', `sw-${spec.subnet}`, 'up');
      await ip(node.ns, 'route', 'add', 'default', 'via', s.router);
      noTxCsum(node.ns, 'uplink');
      noTxCsum(router, peer);
      if (opts.routerRoutesPods === true) await ip(router, 'route', 'add', podCIDR, 'via', nodeIP);
      cluster.nodes.push(node);
      cluster.specs.push(spec);
      await cluster.createNodeObject(node);
    }
    return cluster;
  }

  /** The Node object of `node` as the API server should hold it. */
  nodeObject(node: AgentNode): V1Node {
    return {
      metadata: { name: node.nodeName },
      spec: { podCIDR: node.podCIDR, podCIDRs: [node.podCIDR] },
      status: { addresses: [{ type: 'InternalIP', address: node.nodeIP }] },
    };
  }

  async createNodeObject(node: AgentNode): Promise<void> {
    await this.core.createNode({ body: this.nodeObject(node) });
  }

  async deleteNodeObject(node: AgentNode): Promise<void> {
    await this.core.deleteNode({ name: node.nodeName });
  }

  /** Starts every agent and waits until each answers CNI STATUS. */
  async startAgents(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.start()));
  }

  /** Creates a Pod on `node` through the real CNI plugin. */
  async addPod(node: AgentNode, name: string): Promise<ClusterPod> {
    const netns = await node.podNetns(this.t);
    const r = await node.cni('ADD', { containerId: uniqueName('c'), netns, name });
    const ips = (r.json?.['ips'] ?? []) as { address: string }[];
    const ip = ips[0]?.address.split('/')[0];
    if (r.exitCode !== 0 || ip === undefined) throw new Error(`ADD ${name} failed: ${r.stdout}`);
    return { node, name, netns, ip };
  }

  /** Starts a probe server (tcp and udp on `port`) inside a namespace; stopped at teardown. */
  async serve(ns: string, port: number): Promise<void> {
    const handles: ProcessHandle[] = [];
    for (const proto of ['tcp', 'udp']) {
      const h = await launcher.launch('ip', [
        'netns',
        'exec',
        ns,
        process.execPath,
        PROBE,
        'serve',
        proto,
        String(port),
      ]);
      handles.push(h);
      this.t.teardown(() => h.stop(2_000));
    }
    // Wait until the TCP listener answers.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = await runner.run('ip', ['netns', 'exec', ns, 'ss', '-ltn', `sport = :${port}`], { timeoutMs: 10_000 });
      if (r.stdout.includes(`:${port}`)) return;
      if (Date.now() > deadline) throw new Error(`probe server in ${ns} did not listen on ${port}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  /**
   * Sends `bytes` from namespace `ns` to host:port and returns the server's answer
   * ({ peer, bytes }), or undefined when it failed (timeout, refused, unreachable).
   */
  async send(
    ns: string,
    proto: 'tcp' | 'udp',
    host: string,
    port: number,
    bytes: number,
  ): Promise<{ peer: string; bytes: number } | undefined> {
    const r = await runner.run(
      'ip',
      ['netns', 'exec', ns, process.execPath, PROBE, 'send', proto, host, String(port), String(bytes)],
      { okExitCodes: [1], timeoutMs: 90_000 },
    );
    const m = /peer=(\S+) bytes=(\d+)/.exec(r.stdout);
    if (r.exitCode !== 0 || m === null) return undefined;
    return { peer: m[1] ?? '', bytes: Number(m[2]) };
  }

  /** {@link send} with a few retries (the first packets may go to a still-cold ARP cache). */
  async reach(
    ns: string,
    proto: 'tcp' | 'udp',
    host: string,
    port: number,
    bytes = 4,
    attempts = 5,
  ): Promise<{ peer: string; bytes: number } | undefined> {
    for (let i = 0; i < attempts; i++) {
      const r = await this.send(ns, proto, host, port, bytes);
      if (r !== undefined) return r;
      await new Promise((res) => setTimeout(res, 500));
    }
    return undefined;
  }

  /** `ip route` lines of a Node namespace. */
  async routes(node: AgentNode): Promise<string[]> {
    const r = await runner.run('ip', ['-n', node.ns, 'route', 'show'], { timeoutMs: 10_000 });
    return r.stdout.split('\n').filter((l) => l !== '');
  }

  /** Runs a command in a namespace. */
  async exec(ns: string, cmd: string, args: readonly string[], okExitCodes: number[] = []): Promise<string> {
    const r = await runner.run('ip', ['netns', 'exec', ns, cmd, ...args], { okExitCodes, timeoutMs: 30_000 });
    return r.stdout;
  }

  /** Waits until `cond` holds (polling), failing with `what` after `timeoutMs`. */
  static async until(what: string, cond: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export { nsName };
