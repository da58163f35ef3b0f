/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- client-node model classes are plain data shapes; object literals are how its API is used. */
/**
 * NetworkPolicy from the Kubernetes API to packets on a Node: the embedded Kubernetes API server,
 * the real antrea-controller (ControllerApp, with Antrea's RBAC and Pod-bound agent tokens), and the
 * antrea-agent process in its Node namespace watching the controller (--controller-url; the CA from
 * ConfigMap antrea-ca, its ServiceAccount token) and keeping its snapshot. A K8s NetworkPolicy is
 * enforced on real TCP connections and its realization is reported back to the controller. With the
 * controller down the agent is killed and restarted: it enforces the snapshot (a continuous prober
 * on the denied pair never succeeds; the allowed pair is back within 10 s); with the controller back
 * a policy change is enforced again.
 */
import { createServer, connect, type Server } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import t, { type Test } from 'tap';
import { parseAllDocuments } from 'yaml';
import { type ControllerEndpoint, controllerRequest } from '../../src/common/agent/controlplane/index.ts';
import { ControllerApp } from '../../src/controller/app.ts';
import { DEFAULT_CONTROLLER_CONFIG } from '../../src/controller/config.ts';
import { startApiServer, type ApiServer } from '../../src/lab/apiserver/server.ts';
import { typeOf } from '../../src/lab/apiserver/core.ts';
import { AgentNode, type PodRef } from '../helpers/agent-node.ts';
import { integrationSkipReason, launcher, runner, shortTempDir, uniqueName } from '../helpers/env.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

const NS = 'kube-system';
const NODE = 'node-1';
const CP = '/apis/controlplane.antrea.io/v1beta2';
const PROBE = join(import.meta.dirname, '..', 'helpers', 'netpol-probe.ts');
const FORWARD = join(import.meta.dirname, '..', 'helpers', 'uds-forward.ts');

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
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

interface Pod extends PodRef {
  readonly ip: string;
  readonly ns: string;
}

t.test(
  'a Kubernetes NetworkPolicy through antrea-controller to packets; the snapshot while it is down',
  async (t: Test) => {
    const api = await startApiServer({});
    t.teardown(() => api.stop());
    applyManifest(api, new URL('../../build/yamls/antrea-rbac.yml', import.meta.url).pathname);
    const reg = api.registry;
    const type = (res: string, group = ''): ReturnType<typeof typeOf> => typeOf(api.types, group, res);
    const adminKc = new KubeConfig();
    adminKc.loadFromString(api.kubeconfig());
    const core = adminKc.makeApiClient(CoreV1Api);
    const dir = shortTempDir(t, 'npcp');

    // The agent's identity: its Pod on the Node and a Pod-bound token; the controller's kubeconfig.
    reg.create(type('pods'), NS, {
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

    let controllerPort = 0;
    const startController = async (): Promise<() => Promise<void>> => {
      let listening!: (port: number) => void;
      const port$ = new Promise<number>((r) => (listening = r));
      const app = new ControllerApp({
        config: { ...DEFAULT_CONTROLLER_CONFIG, apiBindAddress: '127.0.0.1', apiPort: 10349 },
        kubeConfig: controllerKc,
        namespace: NS,
        podName: 'antrea-controller-abc',
        nodeName: NODE,
        server: { port: controllerPort },
        heartbeatIntervalMs: 1000,
        onListening: (a) => listening(a.port),
      });
      const ac = new AbortController();
      const run = app.run(ac.signal);
      run.catch(() => undefined);
      const bound = await Promise.race([port$, run.then(() => 0)]);
      if (bound === 0) throw new Error('the controller stopped before listening');
      controllerPort = bound;
      let stopped = false;
      const stop = async (): Promise<void> => {
        if (stopped) return;
        stopped = true;
        ac.abort();
        await run;
      };
      t.teardown(stop);
      return stop;
    };
    let stopController = await startController();
    const caFile = join(dir, 'ca.crt');
    await until('ConfigMap antrea-ca', async () => {
      const cm = await core.readNamespacedConfigMap({ name: 'antrea-ca', namespace: NS }).catch(() => undefined);
      const ca = cm?.data?.['ca.crt'];
      if (ca === undefined) return false;
      writeFileSync(caFile, ca);
      return true;
    });
    const admin: ControllerEndpoint = {
      url: `https://127.0.0.1:${controllerPort}`,
      ca: () => readFileSync(caFile, 'utf8'),
      token: () => api.adminToken,
    };

    // The Node namespace reaches the controller through a Unix socket (no root-namespace address).
    const sock = join(dir, 'ctl.sock');
    const relay: Server = createServer((c) => {
      const u = connect(controllerPort, '127.0.0.1');
      c.pipe(u).pipe(c);
      c.on('error', () => u.destroy());
      u.on('error', () => c.destroy());
    });
    await new Promise<void>((r) => relay.listen(sock, r));
    t.teardown(() => new Promise<void>((r) => relay.close(() => r())));

    const node = await AgentNode.create(t, {
      podCIDR: '10.10.30.0/24',
      extraArgs: [
        '--controller-url',
        'https://127.0.0.1:10349',
        '--controller-ca',
        caFile,
        '--controller-token-file',
        tokenFile,
      ],
    });
    const fwdLog = join(dir, 'forward.log');
    const fwd = await launcher.launch('ip', ['netns', 'exec', node.ns, process.execPath, FORWARD, '10349', sock], {
      logFile: fwdLog,
    });
    t.teardown(async () => {
      if (fwd.running()) process.kill(fwd.pid, 'SIGKILL');
      await fwd.exited;
    });
    await until('the forwarder', () => readFileSync(fwdLog, 'utf8').includes('forwarding'));
    await runner.run('ip', ['-n', node.ns, 'link', 'set', 'lo', 'up']);

    reg.create(type('namespaces'), undefined, {
      metadata: { name: 'x', labels: { 'kubernetes.io/metadata.name': 'x' } },
    });
    await node.start();
    const pods = new Map<string, Pod>();
    for (const name of ['server', 'a', 'b']) {
      const ref: PodRef = { containerId: uniqueName('ctr'), netns: await node.podNetns(t), name, namespace: 'x' };
      const r = await node.cni('ADD', ref);
      if (r.exitCode !== 0) throw new Error(`ADD ${name}: ${r.stdout}`);
      const ip = (r.json?.['ips'] as { address: string }[])[0]?.address.split('/')[0] ?? '';
      pods.set(name, { ...ref, ip, ns: ref.netns.replace(/^\/run\/netns\//, '') });
      reg.create(type('pods'), 'x', {
        metadata: { name, namespace: 'x', labels: { app: name } },
        spec: { nodeName: NODE, containers: [{ name: 'c', image: 'x', ports: [{ name: 'http', containerPort: 80 }] }] },
      });
      const cur = reg.get(type('pods'), 'x', name).obj;
      reg.update(
        type('pods'),
        'x',
        name,
        { ...cur, status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } },
        { subresource: 'status' },
      );
    }
    const server = pods.get('server')!;
    const a = pods.get('a')!;
    const b = pods.get('b')!;
    const serve = await launcher.launch(
      'ip',
      ['netns', 'exec', server.ns, process.execPath, PROBE, 'serve', '80', '-'],
      {
        logFile: join(dir, 'serve.log'),
      },
    );
    t.teardown(async () => {
      if (serve.running()) process.kill(serve.pid, 'SIGKILL');
      await serve.exited;
    });
    const probe = async (from: Pod, to: Pod, port = 80): Promise<boolean> =>
      (
        await runner.run(
          'ip',
          ['netns', 'exec', from.ns, process.execPath, PROBE, 'tcp', to.ip, String(port), '1000'],
          {
            okExitCodes: [1],
            timeoutMs: 20_000,
          },
        )
      ).exitCode === 0;
    const eventually = async (from: Pod, to: Pod, want: boolean): Promise<boolean> => {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const got = await probe(from, to);
        if (got === want || Date.now() > deadline) return got;
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    t.ok(await eventually(b, server, true), 'no policy: b → server');

    const npType = type('networkpolicies', 'networking.k8s.io');
    const spec = (from: string): Record<string, unknown> => ({
      podSelector: { matchLabels: { app: 'server' } },
      policyTypes: ['Ingress'],
      ingress: [
        { from: [{ podSelector: { matchLabels: { app: from } } }], ports: [{ protocol: 'TCP', port: 'http' }] },
      ],
    });
    reg.create(npType, 'x', { metadata: { name: 'allow', namespace: 'x' }, spec: spec('a') });
    t.notOk(await eventually(b, server, false), 'b → server denied by the policy from the API');
    t.ok(await probe(a, server), 'a → server allowed (named port "http" resolved on the server)');

    // The agent reported the realization to the controller.
    const list = JSON.parse((await controllerRequest(admin, { path: `${CP}/networkpolicies` })).body.toString()) as {
      items: { metadata: { name: string; generation?: number }; sourceRef?: { name: string } }[];
    };
    const internal = list.items.find((p) => p.sourceRef?.name === 'allow');
    t.ok(internal !== undefined, 'the controller computed the policy');
    await until('the realization status', async () => {
      const st = JSON.parse(
        (
          await controllerRequest(admin, { path: `${CP}/networkpolicies/${internal?.metadata.name ?? ''}/status` })
        ).body.toString(),
      ) as { nodes?: { nodeName: string; generation: number; realizationFailure?: boolean }[] };
      return st.nodes?.some((n) => n.nodeName === NODE && n.realizationFailure !== true) === true;
    });
    t.pass('the Node reported the policy realized');

    // A continuous prober on the denied pair; the controller goes down; the agent is killed and restarted.
    const probeLog = join(dir, 'deny.log');
    const prober = await launcher.launch(
      'ip',
      ['netns', 'exec', b.ns, process.execPath, PROBE, 'loop', 'tcp', server.ip, '80', '200'],
      {
        logFile: probeLog,
      },
    );
    t.teardown(async () => {
      if (prober.running()) process.kill(prober.pid, 'SIGKILL');
      await prober.exited;
    });
    await stopController();
    await node.kill('SIGKILL');
    const restartAt = Date.now();
    await node.start({ waitReady: false });
    await node.waitReady(20_000);
    t.ok(Date.now() - restartAt < 20_000, 'the agent became ready while the controller is down');
    t.match(node.log(), /falling back on the policy snapshot on disk/, 'from its snapshot');
    t.ok(await eventually(a, server, true), 'a → server allowed from the snapshot');
    t.ok(Date.now() - restartAt <= 12_000, `allowed within ~10 s of the restart (${Date.now() - restartAt} ms)`);

    // The controller is back: a changed policy (now b instead of a) is enforced.
    stopController = await startController();
    t.notOk(await probe(b, server), 'b → server still denied with the controller back');
    const updateAt = Date.now();
    const cur = reg.get(npType, 'x', 'allow').obj;
    reg.update(npType, 'x', 'allow', { ...cur, spec: spec('b') });
    t.ok(await eventually(b, server, true), 'with the controller back, the update allows b');
    t.notOk(await eventually(a, server, false), 'and denies a');
    process.kill(prober.pid, 'SIGKILL');
    await prober.exited;
    const results = readFileSync(probeLog, 'utf8')
      .split('\n')
      .map((l) => /^(\d+) (ok|fail)/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ at: Number(m[1]), ok: m[2] === 'ok' }));
    const before = results.filter((r) => r.at < updateAt);
    t.ok(before.length > 10, `the denied pair was probed throughout (${before.length} probes before the update)`);
    t.same(
      before.filter((r) => r.ok),
      [],
      'no success on the denied pair: controller down, agent killed and restarted, controller back',
    );
    await stopController();
  },
);
