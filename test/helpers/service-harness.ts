/**
 * Service tests on the one-Node harness: an embedded API server in the test process reachable from
 * the Node's namespace (a relay: 127.0.0.1:<port> inside the Node → a Unix socket → the server),
 * a kubeconfig for the agent, Pods running a tiny TCP server that answers its name, and a client
 * that opens N connections and counts who answered.
 */
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import type { Test } from 'tap';
import { startApiServer, type ApiServer } from '../../src/lab/apiserver/index.ts';
import { nullLogger } from '../../src/common/util/log.ts';
import type { ProcessHandle } from '../../src/common/util/exec.ts';
import { type AgentNode, type PodRef } from './agent-node.ts';
import { launcher, runner, shortTempDir, uniqueName } from './env.ts';

/** Node's inline scripts (CommonJS through -e; arguments start at process.argv[1]). */
const RELAY = `const net=require('net');const [,sock,port]=process.argv;net.createServer(c=>{const u=net.connect(sock);c.pipe(u);u.pipe(c);c.on('error',()=>u.destroy());u.on('error',()=>c.destroy());}).listen(Number(port),'127.0.0.1',()=>console.log('listening'));`;
const SERVER = `const net=require('net');const [,name,port]=process.argv;net.createServer(s=>{s.on('error',()=>{});s.end(name+'\\n');}).listen(Number(port),'0.0.0.0',()=>console.log('listening'));`;
const CLIENT = `const net=require('net');const [,h,p,n,ms]=process.argv;(async()=>{const c={};for(let i=0;i<Number(n);i++){const r=await new Promise(res=>{const s=net.connect({host:h,port:Number(p)});let d='';const t=setTimeout(()=>{s.destroy();res('timeout')},Number(ms));s.on('data',x=>d+=x);s.on('end',()=>{clearTimeout(t);res(d.trim())});s.on('error',e=>{clearTimeout(t);res(e.code)});});c[r]=(c[r]||0)+1;}console.log(JSON.stringify(c));})();`;

export interface ServicePod extends PodRef {
  readonly ip: string;
}

export class ServiceHarness {
  readonly api: ApiServer;
  readonly kubeconfig: string;
  private readonly t: Test;

  private constructor(t: Test, api: ApiServer, kubeconfig: string) {
    this.t = t;
    this.api = api;
    this.kubeconfig = kubeconfig;
  }

  /** Starts the API server and the relay into `ns`; returns the harness (the agent config needs `kubeconfig`). */
  static async create(t: Test, ns: string): Promise<ServiceHarness> {
    const dir = shortTempDir(t, 'svc');
    const api = await startApiServer({ insecureHttp: true, logger: nullLogger, crdManifests: [] });
    t.teardown(() => api.stop());
    const sock = join(dir, 'api.sock');
    const outer: Server = createServer((c) => {
      const u = createConnection({ host: '127.0.0.1', port: api.port });
      c.pipe(u);
      u.pipe(c);
      c.on('error', () => u.destroy());
      u.on('error', () => c.destroy());
    });
    await new Promise<void>((resolve) => outer.listen(sock, resolve));
    t.teardown(() => new Promise<void>((resolve) => outer.close(() => resolve())));
    const port = 16443;
    await runLong(
      t,
      ['ip', 'netns', 'exec', ns, process.execPath, '-e', RELAY, sock, String(port)],
      join(dir, 'relay.log'),
    );
    const kubeconfig = join(dir, 'kubeconfig');
    api.writeKubeconfig(kubeconfig, { server: `http://127.0.0.1:${port}` });
    return new ServiceHarness(t, api, kubeconfig);
  }

  /** POSTs (or PUTs with `replace`) an object through the API. */
  async apply(path: string, obj: Record<string, unknown>, replace?: string): Promise<Record<string, unknown>> {
    const url = `${this.api.url}${path}${replace === undefined ? '' : `/${replace}`}`;
    const res = await fetch(url, {
      method: replace === undefined ? 'POST' : 'PUT',
      headers: { authorization: `Bearer ${this.api.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(obj),
    });
    const body = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${JSON.stringify(body)}`);
    return body;
  }

  async remove(path: string): Promise<void> {
    const res = await fetch(`${this.api.url}${path}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${this.api.adminToken}` },
    });
    if (!res.ok) throw new Error(`DELETE ${path}: HTTP ${res.status}`);
  }

  async get(path: string): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.api.url}${path}`, { headers: { authorization: `Bearer ${this.api.adminToken}` } });
    return (await res.json()) as Record<string, unknown>;
  }

  /** Creates a Pod through the CNI plugin and starts its name server on `port`. */
  async serverPod(node: AgentNode, name: string, port = 8080): Promise<ServicePod> {
    const pod: PodRef = { containerId: uniqueName('ctr'), netns: await node.podNetns(this.t), name };
    const r = await node.cni('ADD', pod);
    if (r.exitCode !== 0) throw new Error(`ADD ${name} failed: ${r.stdout}`);
    const ips = (r.json?.['ips'] ?? []) as { address: string }[];
    const ip = ips[0]?.address.split('/')[0] ?? '';
    const nsName = pod.netns.replace(/^\/run\/netns\//, '');
    await runLong(
      this.t,
      ['ip', 'netns', 'exec', nsName, process.execPath, '-e', SERVER, name, String(port)],
      join(node.dir, `${name}.log`),
    );
    this.t.teardown(() => node.cni('DEL', pod));
    return { ...pod, ip };
  }

  /** Opens `n` connections one after the other from `netns` (a Pod path or a namespace name). */
  connect(netns: string, host: string, port: number, n: number, timeoutMs = 3000): Promise<Record<string, number>> {
    return connectMany(netns, host, port, n, timeoutMs);
  }
}

/**
 * Opens `n` TCP connections one after the other from `netns` (a namespace path or name) to
 * host:port and counts the answers (a server's first line; `timeout` or an error code otherwise).
 */
export async function connectMany(
  netns: string,
  host: string,
  port: number,
  n: number,
  timeoutMs = 3000,
): Promise<Record<string, number>> {
  const name = netns.replace(/^\/run\/netns\//, '');
  const out = await runner.run(
    'ip',
    ['netns', 'exec', name, process.execPath, '-e', CLIENT, host, String(port), String(n), String(timeoutMs)],
    { timeoutMs: 120_000 },
  );
  return JSON.parse(out.stdout.trim()) as Record<string, number>;
}

/** Starts a long-running process, waits for its "listening" line, kills it at teardown. */
async function runLong(t: Test, argv: readonly string[], logFile: string): Promise<ProcessHandle> {
  const [cmd = '', ...args] = argv;
  const p = await launcher.launch(cmd, args, { logFile });
  t.teardown(async () => {
    if (p.running()) {
      process.kill(p.pid, 'SIGKILL');
      await p.exited;
    }
  });
  const { readFileSync, existsSync } = await import('node:fs');
  const deadline = Date.now() + 15_000;
  while (!(existsSync(logFile) && readFileSync(logFile, 'utf8').includes('listening'))) {
    if (!p.running())
      throw new Error(`${argv.join(' ')} exited: ${existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''}`);
    if (Date.now() > deadline) throw new Error(`${argv.join(' ')} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return p;
}

/** A Service object. */
export function serviceObject(
  name: string,
  clusterIP: string,
  spec: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: {
      type: 'ClusterIP',
      clusterIP,
      ports: [{ name: 'tcp', port: 80, targetPort: 8080, protocol: 'TCP' }],
      ...spec,
    },
  };
}

/** An EndpointSlice of `svc` with these Pods as ready Endpoints on `nodeName`. */
export function sliceObject(
  svc: string,
  pods: readonly { ip: string; name: string; ready?: boolean }[],
  nodeName = 'node-1',
  name = `${svc}-1`,
): Record<string, unknown> {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    ports: [{ name: 'tcp', port: 8080, protocol: 'TCP' }],
    endpoints: pods.map((p) => ({
      addresses: [p.ip],
      nodeName,
      conditions: { ready: p.ready ?? true },
      targetRef: { kind: 'Pod', namespace: 'default', name: p.name },
    })),
  };
}
