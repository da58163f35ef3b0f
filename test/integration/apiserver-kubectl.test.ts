/**
 * The real kubectl against the embedded API server, with every release available here (the
 * machine's kubectl, 1.32 through the gcloud dispatcher, and Debian's 1.20): get/describe/apply
 * (twice, with a change in between)/label/annotate/patch/replace/create/delete/wait/get -w and
 * errors, checked against what a real cluster prints.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCommandRunner, ExecError } from '../../src/common/util/exec.ts';
import { startApiServer, type ApiServer } from '../../src/lab/apiserver/server.ts';
import { kubectlBinaries, type KubectlBinary } from '../helpers/kubectl.ts';

const runner = createCommandRunner();

interface Out {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

class Kubectl {
  readonly bin: KubectlBinary;
  private readonly env: Record<string, string>;

  constructor(bin: KubectlBinary, kubeconfig: string, home: string) {
    this.bin = bin;
    this.env = { KUBECONFIG: kubeconfig, HOME: home };
  }

  async run(args: string[], o: { input?: string; fail?: boolean } = {}): Promise<Out> {
    const r = await runner.run(this.bin.path, args, {
      env: this.env,
      timeoutMs: 60_000,
      ...(o.input === undefined ? {} : { input: o.input }),
      ...(o.fail === true ? { okExitCodes: [1] } : {}),
    });
    return { stdout: r.stdout, stderr: r.stderr, code: r.exitCode };
  }

  /** Runs a watching command for `ms`, doing `during` meanwhile, and returns what it printed. */
  async watch(args: string[], ms: number, during: () => Promise<void>): Promise<string> {
    const p = runner.run(this.bin.path, args, { env: this.env, timeoutMs: ms }).then(
      (r) => r.stdout,
      (err: unknown) => {
        if (err instanceof ExecError && err.code === 'EXEC_TIMEOUT') return err.stdout;
        throw err;
      },
    );
    await new Promise((r) => setTimeout(r, 1500));
    await during();
    return p;
  }
}

/** Table output with whitespace collapsed and ages replaced, one string per line. */
function table(s: string): string[] {
  return s
    .trim()
    .split('\n')
    .map((l) =>
      l
        .trim()
        .split(/\s+/)
        .map((c) => (/^(\d+(s|m|h|d)){1,2}$/.test(c) ? '<age>' : c))
        .join(' '),
    );
}

const manifest = (ns: string, image: string, data: string, labels: string): string => `
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  namespace: ${ns}
data:
  mode: ${data}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: ${ns}
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: http
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: ${ns}
  labels: {${labels}}
spec:
  containers:
  - name: nginx
    image: ${image}
    ports:
    - containerPort: 8080
      name: http
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-web
  namespace: ${ns}
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - ports:
    - port: 8080
      protocol: TCP
---
apiVersion: crd.antrea.io/v1beta1
kind: Tier
metadata:
  name: tier-${ns}
spec:
  priority: 50
  description: lab tier
`;

async function withServer(t: Test): Promise<{ s: ApiServer; dir: string }> {
  const s = await startApiServer();
  const dir = mkdtempSync(join(tmpdir(), 'kubectl-'));
  t.teardown(async () => {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  s.writeKubeconfig(join(dir, 'kubeconfig'));
  return { s, dir };
}

const found = await kubectlBinaries();
if (found.binaries.length === 0) t.plan(0, `no kubectl available: ${found.missing.join('; ')}`);
for (const why of found.missing) t.comment(`skipped kubectl: ${why}`);

const imperative = new Map<number, string[]>();

for (const bin of found.binaries) {
  t.test(`${bin.label}: the everyday commands`, async (t) => {
    const { s, dir } = await withServer(t);
    const k = new Kubectl(bin, join(dir, 'kubeconfig'), mkdtempSync(join(dir, 'home-')));
    const ns = `demo-${bin.minor}`;
    t.equal((await k.run(['create', 'namespace', ns])).stdout, `namespace/${ns} created\n`);
    const file = join(dir, 'app.yaml');
    writeFileSync(file, manifest(ns, 'nginx:1.25', 'one', 'app: web'));
    t.same(table((await k.run(['apply', '-f', file])).stdout), [
      'configmap/cfg created',
      'service/web created',
      'pod/web created',
      'networkpolicy.networking.k8s.io/allow-web created',
      `tier.crd.antrea.io/tier-${ns} created`,
    ]);
    t.same(table((await k.run(['get', 'pods', '-n', ns])).stdout), [
      'NAME READY STATUS RESTARTS AGE',
      'web 0/1 Pending 0 <age>',
    ]);
    t.same(table((await k.run(['get', 'svc', '-n', ns])).stdout), [
      'NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE',
      'web ClusterIP 10.96.0.2 <none> 80/TCP <age>',
    ]);
    t.same(table((await k.run(['get', 'netpol,cm', '-n', ns])).stdout), [
      'NAME POD-SELECTOR AGE',
      'networkpolicy.networking.k8s.io/allow-web app=web <age>',
      '',
      'NAME DATA AGE',
      'configmap/cfg 1 <age>',
      'configmap/kube-root-ca.crt 1 <age>',
    ]);
    t.same(
      table((await k.run(['get', 'tr', `tier-${ns}`])).stdout),
      ['NAME PRIORITY AGE', `tier-${ns} 50 <age>`],
      'CRD printer columns',
    );
    t.same(table((await k.run(['get', 'ns', ns, '--show-labels'])).stdout), [
      'NAME STATUS AGE LABELS',
      `${ns} Active <age> kubernetes.io/metadata.name=${ns}`,
    ]);

    // The same apply again, with changes: a new image, a new label, new data.
    writeFileSync(file, manifest(ns, 'nginx:1.26', 'two', 'app: web, track: stable'));
    t.same(table((await k.run(['apply', '-f', file])).stdout), [
      'configmap/cfg configured',
      'service/web unchanged',
      'pod/web configured',
      'networkpolicy.networking.k8s.io/allow-web unchanged',
      `tier.crd.antrea.io/tier-${ns} unchanged`,
    ]);
    const pod = JSON.parse((await k.run(['get', 'pod', 'web', '-n', ns, '-o', 'json'])).stdout) as {
      metadata: { labels: Record<string, string>; generation: number };
      spec: { containers: { image: string; ports: { protocol: string }[] }[] };
    };
    t.equal(pod.spec.containers[0]?.image, 'nginx:1.26');
    t.same(pod.metadata.labels, { app: 'web', track: 'stable' });
    t.equal(pod.metadata.generation, 2);
    t.equal(pod.spec.containers[0]?.ports[0]?.protocol, 'TCP', 'defaults are kept');
    t.equal((await k.run(['get', 'cm', 'cfg', '-n', ns, '-o', 'jsonpath={.data.mode}'])).stdout, 'two');

    // label, annotate, patch (strategic, merge, json), replace.
    t.equal((await k.run(['label', 'pod', 'web', '-n', ns, 'tier=gold'])).stdout, 'pod/web labeled\n');
    t.equal((await k.run(['annotate', 'pod', 'web', '-n', ns, 'owner=lab'])).stdout, 'pod/web annotated\n');
    t.equal(
      (await k.run(['patch', 'pod', 'web', '-n', ns, '-p', '{"metadata":{"labels":{"x":"1"}}}'])).stdout,
      'pod/web patched\n',
    );
    t.equal(
      (await k.run(['patch', 'pod', 'web', '-n', ns, '--type=merge', '-p', '{"metadata":{"labels":{"x":null}}}']))
        .stdout,
      'pod/web patched\n',
    );
    t.equal(
      (
        await k.run([
          'patch',
          'pod',
          'web',
          '-n',
          ns,
          '--type=json',
          '-p',
          '[{"op":"remove","path":"/metadata/annotations/owner"}]',
        ])
      ).stdout,
      'pod/web patched\n',
    );
    t.equal(
      (await k.run(['patch', 'tier', `tier-${ns}`, '--type=merge', '-p', '{"spec":{"priority":51}}'])).stdout,
      `tier.crd.antrea.io/tier-${ns} patched\n`,
    );
    t.same(table((await k.run(['get', 'pods', '-n', ns, '-l', 'tier=gold', '--show-labels'])).stdout), [
      'NAME READY STATUS RESTARTS AGE LABELS',
      'web 0/1 Pending 0 <age> app=web,tier=gold,track=stable',
    ]);
    t.same(
      table((await k.run(['get', 'pods', '-n', ns, '--field-selector', 'status.phase=Pending', '-o', 'name'])).stdout),
      ['pod/web'],
    );
    t.same(
      (await k.run(['get', 'pods', '-n', ns, '-l', 'tier in (silver)'])).stderr.trim(),
      `No resources found in ${ns} namespace.`,
    );
    const cm = (await k.run(['get', 'cm', 'cfg', '-n', ns, '-o', 'yaml'])).stdout.replace('mode: two', 'mode: three');
    writeFileSync(join(dir, 'cm.yaml'), cm);
    t.equal((await k.run(['replace', '-f', join(dir, 'cm.yaml')])).stdout, 'configmap/cfg replaced\n');
    const stale = await k.run(['replace', '-f', join(dir, 'cm.yaml')], { fail: true });
    t.match(
      stale.stderr,
      /Operation cannot be fulfilled on configmaps "cfg": the object has been modified/,
      'a stale replace is a conflict',
    );

    const described = (await k.run(['describe', 'pod', 'web', '-n', ns])).stdout;
    t.match(described, /^Name:\s+web$/m);
    t.match(described, /^Namespace:\s+demo-\d+$/m);
    t.match(described, /^Labels:\s+app=web$/m);
    t.match(described, /^Status:\s+Pending$/m);
    t.match(described, /^\s+Image:\s+nginx:1\.26$/m);

    // get -w: the list, then one line per change.
    const watched = await k.watch(['get', 'configmaps', '-n', ns, '-w', '--output-watch-events'], 5000, async () => {
      await k.run(['create', 'configmap', 'w1', '-n', ns, '--from-literal=a=b']);
      await k.run(['delete', 'configmap', 'w1', '-n', ns]);
    });
    t.same(
      table(watched).map((l) => l.split(' ').slice(0, 2).join(' ')),
      ['EVENT NAME', 'ADDED cfg', 'ADDED kube-root-ca.crt', 'ADDED w1', 'DELETED w1'],
      'get -w prints each change',
    );

    t.equal(
      (await k.run(['wait', '--for=condition=established', 'crd/tiers.crd.antrea.io', '--timeout=10s'])).stdout,
      'customresourcedefinition.apiextensions.k8s.io/tiers.crd.antrea.io condition met\n',
    );
    // Errors a real cluster would give.
    t.equal(
      (await k.run(['get', 'pod', 'nope', '-n', ns], { fail: true })).stderr.trim(),
      'Error from server (NotFound): pods "nope" not found',
    );
    const badField = await k.run(['get', 'pods', '-n', ns, '--field-selector', 'spec.foo=bar'], { fail: true });
    t.match(badField.stderr, /Error from server \(BadRequest\):.*field label not supported: spec\.foo/);
    writeFileSync(
      join(dir, 'bad.yaml'),
      'apiVersion: crd.antrea.io/v1beta1\nkind: Tier\nmetadata:\n  name: bad\nspec:\n  priority: 300\n',
    );
    t.match(
      (await k.run(['apply', '-f', join(dir, 'bad.yaml')], { fail: true })).stderr,
      /The Tier "bad" is invalid: spec\.priority: Invalid value: 300: spec\.priority in body should be less than or equal to 255/,
    );
    t.match((await k.run(['auth', 'can-i', 'delete', 'nodes'])).stdout, /^yes$/m);
    // Antrea's RBAC, checked the way a user would: impersonating its ServiceAccounts.
    const rbac = (await k.run(['apply', '-f', new URL('../../build/yamls/antrea-rbac.yml', import.meta.url).pathname]))
      .stdout;
    t.match(rbac, /^clusterrole\.rbac\.authorization\.k8s\.io\/antrea-agent created$/m);
    const canI = async (as: string, ...what: string[]): Promise<string> =>
      (
        await k.run(['auth', 'can-i', ...what, `--as=system:serviceaccount:kube-system:${as}`], { fail: true })
      ).stdout.trim();
    t.equal(await canI('antrea-agent', 'watch', 'pods', '--all-namespaces'), 'yes');
    t.equal(await canI('antrea-agent', 'delete', 'pods', '-n', 'default'), 'no');
    t.equal(await canI('antrea-agent', 'update', 'antreaagentinfos.crd.antrea.io'), 'yes');
    t.equal(await canI('antrea-agent', 'create', 'antreaagentinfos.crd.antrea.io'), 'no');
    t.equal(await canI('antrea-controller', 'create', 'tokenreviews.authentication.k8s.io'), 'yes');
    t.equal(await canI('antctl', 'create', 'pods', '-n', 'default'), 'no');
    const asAgent = await k.run(
      ['get', 'secrets', '-n', 'kube-system', '--as=system:serviceaccount:kube-system:antrea-agent'],
      { fail: true },
    );
    t.match(
      asAgent.stderr,
      /Error from server \(Forbidden\): secrets is forbidden: User "system:serviceaccount:kube-system:antrea-agent" cannot list resource "secrets" in API group "" in the namespace "kube-system"/,
    );
    t.match(
      (await k.run(['api-resources'])).stdout,
      /^clusternetworkpolicies\s+acnp\s+crd\.antrea\.io\/v1beta1\s+false\s+ClusterNetworkPolicy$/m,
    );

    // Imperative creates (kubectl >= 1.32 sends these as protobuf).
    const objs: string[] = [];
    await k.run(['create', 'configmap', 'c2', '-n', ns, '--from-literal=a=b', '--from-literal=c=d']);
    await k.run(['create', 'secret', 'generic', 's1', '-n', ns, '--from-literal=user=admin']);
    await k.run(['create', 'serviceaccount', 'sa1', '-n', ns]);
    await k.run(['create', 'service', 'nodeport', 'np', '-n', ns, '--tcp=80:8080']);
    await k.run(['create', 'role', 'r1', '-n', ns, '--verb=get,list', '--resource=pods,services']);
    await k.run(['create', 'rolebinding', 'rb1', '-n', ns, '--role=r1', `--serviceaccount=${ns}:sa1`]);
    for (const o of ['cm/c2', 'secret/s1', 'sa/sa1', 'svc/np', 'role/r1', 'rolebinding/rb1']) {
      const obj = JSON.parse((await k.run(['get', o, '-n', ns, '-o', 'json'])).stdout) as Record<
        string,
        Record<string, unknown>
      >;
      for (const f of ['uid', 'resourceVersion', 'creationTimestamp', 'namespace']) delete obj['metadata']?.[f];
      delete obj['spec']?.['clusterIP'];
      delete obj['spec']?.['clusterIPs'];
      objs.push(
        JSON.stringify(obj)
          .replaceAll(ns, 'NS')
          .replace(/"nodePort":\d+/, '"nodePort":0'),
      );
    }
    imperative.set(bin.minor, objs);
    t.equal(objs.length, 6);

    t.equal((await k.run(['delete', 'pod', 'web', '-n', ns])).stdout, 'pod "web" deleted\n');
    t.equal(
      (await k.run(['delete', 'namespace', ns, '--timeout=30s'])).stdout,
      `namespace "${ns}" deleted\n`,
      'namespace deletion finishes',
    );
    t.equal(s.registry.find('/namespaces', ns), undefined);
  });
}

t.test('imperative creates give the same objects with every kubectl (protobuf and JSON bodies)', (t) => {
  const versions = [...imperative.keys()];
  if (versions.length < 2) {
    t.plan(0, `needs two kubectl releases, found ${versions.length}`);
    return;
  }
  const [a, b] = versions as [number, number];
  t.same(imperative.get(a), imperative.get(b), `1.${a} and 1.${b}`);
  t.end();
});
