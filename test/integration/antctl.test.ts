/**
 * antctl and the agent API against the real thing (test/helpers/controlplane-node.ts): the embedded
 * API server with Antrea's RBAC, antrea-controller, and an antrea-agent process on a Node namespace
 * with its own OVS. The agent API (port 10350 in the Node namespace) is called without a token, with
 * a bad one, with a token the Kubernetes API accepts but RBAC does not authorize (401/401/403), with
 * the antctl ServiceAccount's token and the loopback token (200). The antctl executable runs in the
 * Node namespace in agent mode (as inside the agent Pod): `get ovsflows` agrees with ovs-ofctl,
 * `get networkpolicy` shows per-rule counters that grow with real TCP connections, `get
 * podinterface` lists the Pods; in controller mode (from a kubeconfig, `--server` to the
 * controller) it lists the controller's policies, also as the kubectl plugin through the real
 * kubectl. A second case: the agent starts and serves Pods while its API port is taken.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { AgentNode } from '../helpers/agent-node.ts';
import { ControlplaneNode, until } from '../helpers/controlplane-node.ts';
import { integrationSkipReason, launcher, runner, shortTempDir } from '../helpers/env.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

const ROOT = join(import.meta.dirname, '..', '..');
const ANTCTL = join(ROOT, 'src', 'cmd', 'antctl.ts');
const BIN = join(ROOT, 'bin');

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs antctl (in the Node namespace `ns` when given). */
async function antctl(ns: string | undefined, args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  const cmd = ns === undefined ? process.execPath : 'ip';
  const full = ns === undefined ? [ANTCTL, ...args] : ['netns', 'exec', ns, process.execPath, ANTCTL, ...args];
  const r = await runner.run(cmd, full, { env, okExitCodes: [1, 2], timeoutMs: 60_000 });
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}

/** HTTP status and body of GET https://127.0.0.1:10350<path> from inside `ns`, with `token` (if any). */
async function agentApi(ns: string, path: string, token?: string): Promise<{ status: number; body: string }> {
  const script = `
    const https = require('node:https');
    const headers = process.argv[2] ? { Authorization: 'Bearer ' + process.argv[2] } : {};
    https.get('https://127.0.0.1:10350' + process.argv[1], { rejectUnauthorized: false, headers }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body: b })));
    }).on('error', (e) => { console.log(JSON.stringify({ status: 0, body: String(e) })); });`;
  const r = await runner.run(
    'ip',
    ['netns', 'exec', ns, process.execPath, '-e', script, path, ...(token === undefined ? [] : [token])],
    { timeoutMs: 30_000 },
  );
  return JSON.parse(r.stdout) as { status: number; body: string };
}

/** Flow lines without the fields that change between two dumps. */
function stable(flows: readonly string[]): string[] {
  return flows.map((f) => f.replace(/duration=[\d.]+s, /, '').replace(/idle_age=\d+, /, '')).sort();
}

t.test('the agent API and antctl on a real agent, controller and OVS', async (t: Test) => {
  const cp = await ControlplaneNode.createCluster(t, 1);
  const node = cp.node;
  const apiDir = join(node.dir, 'apiserver');
  const tokenFile = join(apiDir, 'loopback-client-token');
  const agentArgs = ['--token-file', tokenFile];
  const inPod = { POD_NAME: 'antrea-agent-x1y2z' };
  cp.namespace('x');
  await node.start();
  await until('the agent API token file', () => {
    try {
      return readFileSync(tokenFile, 'utf8') !== '';
    } catch {
      return false;
    }
  });
  const loopback = readFileSync(tokenFile, 'utf8');
  await until('the agent API', async () => (await agentApi(node.ns, '/healthz')).status === 200);

  // ---- authentication and authorization
  t.equal((await agentApi(node.ns, '/healthz')).status, 200, '/healthz needs no token');
  t.equal((await agentApi(node.ns, '/agentinfo')).status, 401, 'no token: 401');
  t.equal((await agentApi(node.ns, '/agentinfo', 'not-a-token')).status, 401, 'a token the API server rejects: 401');
  cp.api.registry.create(cp.type('serviceaccounts'), 'x', { metadata: { name: 'nobody', namespace: 'x' } });
  const nobody = cp.api.issueToken('x', 'nobody');
  const denied = await agentApi(node.ns, '/ovsflows', nobody);
  t.equal(denied.status, 403, 'a valid ServiceAccount without RBAC: 403');
  t.equal(
    (JSON.parse(denied.body) as { message: string }).message,
    'system:serviceaccount:x:nobody cannot get path "/ovsflows"',
  );
  const antctlSA = cp.api.issueToken('kube-system', 'antctl');
  t.equal((await agentApi(node.ns, '/agentinfo', antctlSA)).status, 200, 'the antctl ServiceAccount (RBAC): 200');
  t.equal((await agentApi(node.ns, '/agentinfo', loopback)).status, 200, 'the loopback token: 200');
  t.equal((await agentApi(node.ns, '/nothing', loopback)).status, 404);
  const badQuery = await agentApi(node.ns, '/ovsflows?tabel=1', loopback);
  t.equal(badQuery.status, 400, 'an unknown query parameter: 400');
  t.match(badQuery.body, /tabel: unknown query parameter/);

  // ---- Pods and a policy from the Kubernetes API
  const server = await cp.addPod('x', 'server', { app: 'server' });
  const client = await cp.addPod('x', 'client', { app: 'client' });
  await cp.serve(server, [80]);
  cp.api.registry.create(cp.type('networkpolicies', 'networking.k8s.io'), 'x', {
    metadata: { name: 'allow-client', namespace: 'x' },
    spec: {
      podSelector: { matchLabels: { app: 'server' } },
      policyTypes: ['Ingress'],
      ingress: [
        { from: [{ podSelector: { matchLabels: { app: 'client' } } }], ports: [{ protocol: 'TCP', port: 80 }] },
      ],
    },
  });
  t.ok(await cp.eventually(client, server, true), 'client → server allowed by the policy');

  // ---- get podinterface
  const pi = await antctl(node.ns, ['get', 'podinterface', ...agentArgs], inPod);
  t.equal(pi.code, 0, pi.stderr);
  const piLines = pi.stdout.trim().split('\n');
  t.match(piLines[0] ?? '', /^NAMESPACE\s+NAME\s+INTERFACE-NAME\s+IP\s+MAC\s+OF-PORT\s+CONTAINER-ID$/);
  t.match(pi.stdout, new RegExp(`\\nx\\s+client\\s+\\S+\\s+${client.ip.replace(/\./g, '\\.')}\\s`));
  t.match(pi.stdout, new RegExp(`\\nx\\s+server\\s+\\S+\\s+${server.ip.replace(/\./g, '\\.')}\\s`));
  const piJson = JSON.parse(
    (await antctl(node.ns, ['get', 'pi', 'server', '-n', 'x', '-o', 'json', ...agentArgs], inPod)).stdout,
  ) as {
    interfaceName: string;
    ofPort: number;
  }[];
  t.equal(piJson.length, 1, 'filtered by name and namespace');
  const serverPort = piJson[0]?.interfaceName ?? '';
  t.equal(piJson[0]?.ofPort, await node.ofport(serverPort), 'the ofport OVS assigned');

  // ---- get networkpolicy: counters grow with real connections
  const getPolicies = async (): Promise<
    { sourceRef: { name: string }; trafficStats: { packets: number; bytes: number; sessions: number } }[]
  > => {
    const r = await antctl(node.ns, ['get', 'netpol', '-o', 'json', ...agentArgs], inPod);
    t.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as never;
  };
  const before = (await getPolicies()).find((p) => p.sourceRef.name === 'allow-client');
  t.ok(before, 'the agent holds the policy');
  for (let i = 0; i < 3; i++) t.ok(await cp.probe(client, server), `connection ${i + 1}`);
  let after = before;
  await until('the rule counters to grow', async () => {
    after = (await getPolicies()).find((p) => p.sourceRef.name === 'allow-client');
    return (after?.trafficStats.sessions ?? 0) >= (before?.trafficStats.sessions ?? 0) + 3;
  });
  t.ok((after?.trafficStats.packets ?? 0) > (before?.trafficStats.packets ?? 0), 'packets grew');
  t.ok((after?.trafficStats.bytes ?? 0) > (before?.trafficStats.bytes ?? 0), 'bytes grew');
  const npTable = await antctl(node.ns, ['get', 'np', ...agentArgs], inPod);
  t.match(
    npTable.stdout,
    /^NAME\s+APPLIED-TO\s+RULES\s+SOURCE\s+TIER-PRIORITY\s+PRIORITY\s+PACKETS\s+BYTES\s+SESSIONS\n/,
  );
  t.match(npTable.stdout, /K8sNetworkPolicy:x\/allow-client/);
  const ag = await antctl(node.ns, ['get', 'ag', ...agentArgs], inPod);
  t.match(ag.stdout, new RegExp(client.ip.replace(/\./g, '\\.')), 'the AddressGroup holds the client');
  const atg = await antctl(node.ns, ['get', 'atg', ...agentArgs], inPod);
  t.match(atg.stdout, /x\/server/, 'the AppliedToGroup holds the server');

  // ---- get ovsflows: the same flows as ovs-ofctl, by table and by Pod
  const names = JSON.parse(
    (await antctl(node.ns, ['get', 'of', '--table-names-only', '-o', 'json', ...agentArgs], inPod)).stdout,
  ) as { name: string; id: number }[];
  const metric = names.find((n) => n.name === 'IngressMetric');
  t.ok(metric, 'the pipeline has IngressMetric');
  const ofctl = async (): Promise<string[]> =>
    (
      await runner.run('ovs-ofctl', [
        '-O',
        'OpenFlow15',
        '--no-names',
        'dump-flows',
        `unix:${node.ovs.bridgeMgmtSocketPath('br-int')}`,
        `table=${metric?.id ?? 0}`,
      ])
    ).stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.includes('actions='));
  let ours: string[] = [];
  let theirs: string[] = [];
  await until('antctl and ovs-ofctl to agree', async () => {
    const r = await antctl(node.ns, ['get', 'ovsflows', '-T', 'IngressMetric', '-o', 'json', ...agentArgs], inPod);
    ours = stable((JSON.parse(r.stdout) as { flow: string }[]).map((f) => f.flow));
    theirs = stable(await ofctl());
    return ours.length > 0 && ours.join('\n') === theirs.join('\n');
  }).catch(() => undefined);
  t.same(ours, theirs, 'get ovsflows -T IngressMetric prints what ovs-ofctl dump-flows prints');
  t.ok(
    ours.some((f) => /n_packets=[1-9]/.test(f)),
    'with the counters of the traffic',
  );
  const podFlows = await antctl(node.ns, ['get', 'of', '-p', 'server', '-n', 'x', ...agentArgs], inPod);
  t.equal(podFlows.code, 0, podFlows.stderr);
  const ofport = piJson[0]?.ofPort ?? -1;
  t.match(podFlows.stdout, new RegExp(`in_port=${ofport}[ ,]`), "the server Pod's flows");
  t.notMatch(podFlows.stdout, new RegExp(`in_port=${await node.ofport('antrea-gw0')}[ ,]`), 'and not the gateway');
  const badTable = await antctl(node.ns, ['get', 'of', '-T', 'NoSuchTable', ...agentArgs], inPod);
  t.equal(badTable.code, 1);
  t.match(badTable.stderr, /Error from server \(BadRequest\): table: unknown table "NoSuchTable"/);

  // ---- agentinfo and version in agent mode
  const ai = await antctl(node.ns, ['get', 'agentinfo', ...agentArgs], inPod);
  t.match(
    ai.stdout,
    /^POD\s+NODE\s+STATUS\s+NODE-SUBNET\s+NETWORK-POLICIES\s+ADDRESS-GROUPS\s+APPLIED-TO-GROUPS\s+LOCAL-PODS\n/,
  );
  t.match(
    ai.stdout,
    new RegExp(`\\s${node.nodeName}\\s+Healthy\\s+${node.podCIDR.replace(/\./g, '\\.')}\\s+1\\s+1\\s+1\\s+2\\n`),
  );
  const ver = await antctl(node.ns, ['version', ...agentArgs], inPod);
  t.match(ver.stdout, /^antctlVersion: v\S+\nagentVersion: v\S+\n$/);
  const wrongMode = await antctl(node.ns, ['get', 'controllerinfo', ...agentArgs], inPod);
  t.equal(wrongMode.code, 2);
  t.match(wrongMode.stderr, /"get controllerinfo" is only available in controller mode/);

  // ---- controller mode from a kubeconfig, and the kubectl plugin
  const dir = shortTempDir(t, 'actl');
  const kubeconfig = join(dir, 'kubeconfig');
  cp.api.writeKubeconfig(kubeconfig, { token: antctlSA });
  const ctl = cp.controller.admin.url;
  // The antctl ServiceAccount may not read ConfigMap antrea-ca: it is told, and given the CA file.
  const noCA = await antctl(undefined, ['get', 'netpol', '-k', kubeconfig, '-s', ctl]);
  t.equal(noCA.code, 1);
  t.match(
    noCA.stderr,
    /cannot read ConfigMap kube-system\/antrea-ca \(the controller's CA\) to verify it: .*Forbidden.*; pass --ca-file or --insecure-skip-tls-verify/,
  );
  const caArgs = ['--ca-file', cp.controller.caFile];
  const cnp = await antctl(undefined, ['get', 'netpol', '-k', kubeconfig, '-s', ctl, ...caArgs]);
  t.equal(cnp.code, 0, cnp.stderr);
  t.match(
    cnp.stdout,
    /^NAME\s+APPLIED-TO\s+RULES\s+SOURCE\s+TIER-PRIORITY\s+PRIORITY\n\S+\s+\S+\s+1\s+K8sNetworkPolicy:x\/allow-client\s*\n$/,
  );
  const ci = await antctl(undefined, ['get', 'ci', '-k', kubeconfig, '-s', ctl, ...caArgs]);
  t.equal(ci.code, 0, ci.stderr);
  t.match(ci.stdout, /kube-system\/antrea-controller-abc\s+node-1\s+Healthy\s+1\s+1\s+1\s+1\n/);
  const viaApi = await antctl(undefined, ['get', 'netpol', '-k', kubeconfig]);
  t.equal(viaApi.code, 1, 'without --server, through the Kubernetes API');
  t.match(
    viaApi.stderr,
    /does not serve controlplane\.antrea\.io \(no APIService for antrea-controller\); pass -s\/--server/,
  );
  const nobodyKc = join(dir, 'nobody');
  cp.api.writeKubeconfig(nobodyKc, { token: nobody });
  const forbidden = await antctl(undefined, ['get', 'ag', '-k', nobodyKc, '-s', ctl, ...caArgs]);
  t.equal(forbidden.code, 1);
  t.match(
    forbidden.stderr,
    /Error from server \(Forbidden\): system:serviceaccount:x:nobody cannot list resource "addressgroups"/,
  );

  // An administrator's kubeconfig: the CA comes from ConfigMap antrea-ca.
  const adminKc = join(dir, 'admin');
  cp.api.writeKubeconfig(adminKc);
  const kubectl = await runner.run('kubectl', ['antctl', 'get', 'networkpolicy', '-s', ctl, '-o', 'yaml'], {
    env: { PATH: `${BIN}:${process.env['PATH'] ?? ''}`, KUBECONFIG: adminKc },
    okExitCodes: [1],
    timeoutMs: 60_000,
  });
  t.equal(kubectl.exitCode, 0, kubectl.stderr);
  t.match(kubectl.stdout, /name: allow-client\n/, 'kubectl antctl get networkpolicy, through kubectl');
  const plugins = await runner.run('kubectl', ['plugin', 'list'], {
    env: { PATH: `${BIN}:${process.env['PATH'] ?? ''}` },
    okExitCodes: [1],
  });
  t.match(plugins.stdout, /kubectl-antctl/, 'kubectl plugin list finds it');
  const usageErr = await runner.run('kubectl', ['antctl', 'get', 'nothing'], {
    env: { PATH: `${BIN}:${process.env['PATH'] ?? ''}`, KUBECONFIG: kubeconfig },
    okExitCodes: [1, 2],
  });
  t.not(usageErr.exitCode, 0);
  t.match(usageErr.stderr, /unknown resource type "nothing".*\nRun 'kubectl antctl --help' for usage\./s);
});

t.test('the agent starts and serves Pods while its API port is taken', async (t: Test) => {
  const node = await AgentNode.create(t, { podCIDR: '10.10.41.0/24' });
  const squatter = await launcher.launch(
    'ip',
    [
      'netns',
      'exec',
      node.ns,
      process.execPath,
      '-e',
      "require('node:net').createServer().listen(10350, '0.0.0.0', () => console.log('listening'))",
    ],
    { logFile: join(node.dir, 'squatter.log') },
  );
  t.teardown(async () => {
    if (squatter.running()) process.kill(squatter.pid, 'SIGKILL');
    await squatter.exited;
  });
  await until('the squatter', () => readFileSync(join(node.dir, 'squatter.log'), 'utf8').includes('listening'));
  await node.start();
  const pod = await node.cni('ADD', { containerId: 'c1', netns: await node.podNetns(), name: 'p1' });
  t.equal(pod.exitCode, 0, 'CNI ADD works');
  t.match(
    node.log(),
    /the agent API server cannot listen on 0\.0\.0\.0:10350: the port is already in use by another process/,
  );
  // Once the port is free, the API comes up (the agent retries).
  process.kill(squatter.pid, 'SIGKILL');
  await squatter.exited;
  await until(
    'the API after the port was freed',
    async () => (await agentApi(node.ns, '/healthz')).status === 200,
    60_000,
  );
  const r = await antctl(node.ns, [
    'get',
    'pi',
    '--mode',
    'agent',
    '--token-file',
    join(node.dir, 'apiserver', 'loopback-client-token'),
  ]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /default\s+p1\s/);
  await node.stop();
  t.throws(
    () => readFileSync(join(node.dir, 'apiserver', 'loopback-client-token')),
    'the token file is removed at stop',
  );
});
