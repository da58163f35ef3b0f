/**
 * antrea-lab end to end: a 2-Node lab brought up with the CLI, the 9 Pods of the x/y/z model
 * scheduled over both Nodes, their network from the CNI plugin as a runtime calls it, probes with
 * real packets, exec, Pod deletion (CNI DEL) and the Pod program's restart, isolation from the
 * machine's network, and `down` leaving nothing behind.
 *
 * It runs on the bridge CNI (the reference plugins, with the lab's Pod CIDR routes), which
 * connects every Pod to every Pod, so the lab's own machinery is checked in full, the conformance
 * runner included. The same lab on antrea-agent is test/e2e/lab-antrea.test.ts; once [multi-node]
 * connects Nodes there, this suite can move to the default CNI (the cross-Node and conformance
 * assertions already follow `fullMesh`).
 */
import t from 'tap';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cidrHas, parseCIDR, parseIP } from '../../src/common/util/ipaddr.ts';
import { podRecords, probePods } from '../../src/lab/control.ts';
import { auditIsolation } from '../../src/lab/fabric.ts';
import type { PodRecord } from '../../src/lab/kubelet.ts';
import { ensureModel, MODEL_KEYS, type ModelPod } from '../../src/lab/model.ts';
import { probeMatrix, renderMatrix } from '../../src/lab/probe.ts';
import { processCommandLine } from '../../src/lab/processes.ts';
import { readState } from '../../src/lab/state.ts';
import { integrationSkipReason, netns, runner } from '../helpers/env.ts';
import { eventually, labCli, labInventory, labRoutes, ROOT, startLab } from '../helpers/lab.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

interface NodeObj {
  metadata?: { name?: string };
  spec?: { podCIDR?: string };
  status?: { addresses?: { type: string; address: string }[]; conditions?: { type: string; status: string }[] };
}
interface PodObj {
  metadata?: { name?: string; namespace?: string; uid?: string };
  spec?: { nodeName?: string };
  status?: {
    phase?: string;
    podIP?: string;
    podIPs?: { ip: string }[];
    hostIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { ready: boolean; restartCount: number }[];
  };
}

t.test('a 2-Node lab with 9 Pods', async (t) => {
  const routesBefore = await labRoutes();
  const lab = await startLab(t, 'e2e', ['--nodes', '2', '--cni', 'bridge']);
  const state = readState(lab.paths);
  if (state === undefined) throw new Error('no state file');
  const cni = state.options.cni;
  const fullMesh = cni === 'bridge';
  t.match(
    lab.upOutput,
    /starting 2 Node\(s\)[\s\S]*node-1: 192\.0\.2\.11, Pod CIDR 10\.10\.\d+\.0\/24[\s\S]*lab ready/,
  );

  let nodes: NodeObj[] = [];
  let model: ModelPod[] = [];
  let records: PodRecord[] = [];

  await t.test('the Nodes are registered and Ready, seen by the real kubectl', async (t) => {
    nodes = (await lab.client.list<NodeObj>({ apiVersion: 'v1', resource: 'nodes' })).items;
    t.same(nodes.map((n) => n.metadata?.name).sort(), ['node-1', 'node-2']);
    for (const n of nodes) {
      t.ok(
        n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        `${n.metadata?.name} Ready`,
      );
      t.match(n.spec?.podCIDR, /^10\.10\.\d+\.0\/24$/);
    }
    const kc = await labCli(['kubeconfig', '--data-dir', lab.dataDir]);
    t.equal(kc.stdout.trim(), lab.paths.adminKubeconfig);
    const r = await runner.run('kubectl', ['--kubeconfig', lab.paths.adminKubeconfig, 'get', 'nodes', '-o', 'wide'], {
      timeoutMs: 60_000,
    });
    t.match(r.stdout, /node-1\s+Ready[\s\S]*192\.0\.2\.11/);
    t.match(r.stdout, /node-2\s+Ready[\s\S]*192\.0\.2\.12/);
    const lease = await lab.client.find({
      apiVersion: 'coordination.k8s.io/v1',
      resource: 'leases',
      namespace: 'kube-node-lease',
      name: 'node-1',
    });
    t.ok(lease !== undefined, 'each Node holds a heartbeat Lease');
  });

  await t.test('nothing in the lab can route out of the machine', async (t) => {
    if (state.slot === undefined) throw new Error('no control slot in the state');
    const cidr = `198.51.100.${state.slot * 32}/27`;
    t.same(await auditIsolation(runner, lab.prefix, cidr), []);
    const added = (await labRoutes(lab.prefix)).filter((r) => !routesBefore.includes(r));
    t.same(
      added.filter((r) => !/^(local|broadcast) /.test(r)),
      [`${cidr} dev ${lab.prefix}ctl proto kernel scope link src 198.51.100.${state.slot * 32 + 1}`],
      'the root namespace gained only the connected control route',
    );
    const listening = await runner.run('ss', ['-Htlnp']);
    const apiLines = listening.stdout.split('\n').filter((l) => l.includes(`pid=${state.pid},`));
    t.ok(apiLines.length > 0, 'the supervisor listens');
    t.ok(
      apiLines.every((l) => l.includes(`198.51.100.${state.slot === undefined ? 0 : state.slot * 32 + 1}:`)),
      `the API server listens only on the control address:\n${apiLines.join('\n')}`,
    );
    const ctlLines = listening.stdout.split('\n').filter((l) => l.includes(`pid=${state.controllerPid ?? -1},`));
    t.same(
      ctlLines.map((l) => l.split(/\s+/)[3]),
      [`198.51.100.${state.slot * 32 + 1}:10349`],
      'antrea-controller listens only on the control address',
    );
  });

  await t.test('antrea-controller runs as its own process, as its ServiceAccount', async (t) => {
    const pid = state.controllerPid;
    t.ok(pid !== undefined && processCommandLine(pid)?.includes('antrea-controller.ts --config'), `pid ${pid}`);
    t.not(pid, state.pid, 'not the supervisor');
    const ca = await lab.client.find<{ data?: Record<string, string> }>({
      apiVersion: 'v1',
      resource: 'configmaps',
      namespace: 'kube-system',
      name: 'antrea-ca',
    });
    t.match(ca?.data?.['ca.crt'], /BEGIN CERTIFICATE/, 'it published its CA bundle through the API server');
    const r = await runner.run(
      'kubectl',
      ['--kubeconfig', lab.paths.controllerKubeconfig, 'auth', 'can-i', 'delete', 'nodes'],
      { okExitCodes: [1], timeoutMs: 60_000 },
    );
    t.equal(r.stdout.trim(), 'no', "its kubeconfig carries Antrea's controller RBAC, not admin");
  });

  await t.test('9 Pods are scheduled over both Nodes, get IPs from their Node and become Ready', async (t) => {
    model = await ensureModel(lab.client, 'k8s', { timeoutMs: 120_000 });
    t.same(
      model.map((p) => p.key),
      MODEL_KEYS,
    );
    const perNode = new Map<string, number>();
    for (const p of model) perNode.set(p.node, (perNode.get(p.node) ?? 0) + 1);
    t.same([...perNode.keys()].sort(), ['node-1', 'node-2'], 'both Nodes run Pods');
    t.ok(
      [...perNode.values()].every((n) => n >= 4),
      `spread evenly: ${JSON.stringify([...perNode])}`,
    );
    const pods = (await lab.client.list<PodObj>({ apiVersion: 'v1', resource: 'pods' })).items;
    const ips = new Set<string>();
    for (const p of pods) {
      const key = `${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`;
      const node = nodes.find((n) => n.metadata?.name === p.spec?.nodeName);
      const cidr = parseCIDR(node?.spec?.podCIDR ?? '');
      const ip = parseIP(p.status?.podIP ?? '');
      t.ok(
        cidr !== undefined && ip !== undefined && cidrHas(cidr, ip),
        `${key}: ${p.status?.podIP ?? '-'} in ${node?.spec?.podCIDR ?? '-'}`,
      );
      t.same(p.status?.podIPs, [{ ip: p.status?.podIP }]);
      t.equal(p.status?.hostIP, node?.status?.addresses?.find((a) => a.type === 'InternalIP')?.address);
      t.ok(
        p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        `${key} Ready`,
      );
      t.equal(p.status?.containerStatuses?.length, 6);
      ips.add(p.status?.podIP ?? '');
    }
    t.equal(ips.size, 9, 'no two Pods share an IP');
    records = podRecords(lab.paths);
    t.equal(records.length, 9);
    for (const r of records) {
      t.ok(netns.exists(r.netns), `${r.namespace}/${r.name} has its network namespace ${r.netns}`);
      const addr = await runner.run('ip', ['-n', r.netns, '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
      t.match(
        addr.stdout,
        new RegExp(`inet ${r.ips[0]?.replaceAll('.', '\\.') ?? 'none'}/24`),
        'eth0 holds the IP the status reports',
      );
    }
    const cache = readdirSync(lab.paths.cniCacheDir('node-1')).concat(readdirSync(lab.paths.cniCacheDir('node-2')));
    t.equal(cache.length, 9, 'the runtime cached one CNI result per Pod');
  });

  await t.test('probes: every Pod reaches the Pods on its Node (and, where the CNI routes, all)', async (t) => {
    const pods = await probePods(lab.paths, lab.client, ['x', 'y', 'z']);
    t.equal(pods.length, 9);
    const nodeOf = new Map(model.map((p) => [p.key, p.node]));
    for (const [port, protocol] of [
      [80, 'TCP'],
      [81, 'UDP'],
    ] as const) {
      const m = await probeMatrix(pods, port, protocol);
      t.comment(`${protocol}/${port} (${cni} CNI)\n${renderMatrix(m).join('\n')}`);
      let sameNode = 0;
      for (const from of MODEL_KEYS) {
        for (const to of MODEL_KEYS) {
          const r = m.cells.get(from)?.get(to);
          if (nodeOf.get(from) === nodeOf.get(to)) {
            sameNode++;
            if (r?.outcome !== 'connected')
              t.fail(`${protocol}/${port} ${from}→${to} (same Node): ${JSON.stringify(r)}`);
            else if (r.reply !== to.split('/')[1]) t.fail(`${from}→${to}: answered by ${r.reply ?? '?'}`);
          } else if (fullMesh && r?.outcome !== 'connected') {
            t.fail(`${protocol}/${port} ${from}→${to} (across Nodes, ${cni}): ${JSON.stringify(r)}`);
          }
        }
      }
      t.ok(sameNode >= 41, `${sameNode} same-Node pairs (loopback included) connected on ${protocol}/${port}`);
    }
    const cli = await labCli(['probe', '--data-dir', lab.dataDir, '--port', '81', '--namespaces', 'x,y,z']);
    t.equal(cli.exitCode, 0);
    t.match(cli.stdout, /TCP\/81, 9 Pods, 81 pairs\nfrom\\to xa xb xc ya yb yc za zb zc\nxa +\. /);
  });

  await t.test('exec runs a command inside a Pod', async (t) => {
    const rec = records.find((r) => r.namespace === 'y' && r.name === 'b');
    const r = await labCli([
      'exec',
      '--data-dir',
      lab.dataDir,
      '-n',
      'y',
      'b',
      '--',
      'ip',
      '-4',
      '-o',
      'addr',
      'show',
      'dev',
      'eth0',
    ]);
    t.equal(r.exitCode, 0);
    t.match(r.stdout, new RegExp(`inet ${rec?.ips[0]?.replaceAll('.', '\\.') ?? 'none'}/`));
    const code = await labCli(['exec', '--data-dir', lab.dataDir, 'z/c', '--', 'sh', '-c', 'exit 3']);
    t.equal(code.exitCode, 3, "the command's exit status is passed on");
    const missing = await labCli(['exec', '--data-dir', lab.dataDir, 'z/nope', '--', 'true']);
    t.equal(missing.exitCode, 1);
    t.match(missing.stderr, /Pod z\/nope is not running in the lab/);
    const usage = await labCli(['exec', '--data-dir', lab.dataDir, 'z/c']);
    t.equal(usage.exitCode, 2);
  });

  await t.test('a Pod program that dies is restarted', async (t) => {
    const rec = records.find((r) => r.namespace === 'x' && r.name === 'b');
    if (rec === undefined) throw new Error('no record for x/b');
    process.kill(rec.pid, 'SIGKILL');
    await eventually('x/b restarted', async () => {
      const p = await lab.client.get<PodObj>({ apiVersion: 'v1', resource: 'pods', namespace: 'x', name: 'b' });
      return p.status?.containerStatuses?.[0]?.restartCount === 1;
    });
    const fresh = JSON.parse(readFileSync(lab.paths.podRecord('x', 'b'), 'utf8')) as PodRecord;
    t.not(fresh.pid, rec.pid);
    t.same(fresh.ips, rec.ips, 'same network, same IP');
    const m = await probeMatrix(await probePods(lab.paths, lab.client, ['x']), 80, 'TCP', {
      pairs: (f, to) => to === 'x/b' && f === to,
    });
    t.equal(m.cells.get('x/b')?.get('x/b')?.outcome, 'connected');
  });

  await t.test('deleting a Pod calls CNI DEL and removes its namespace; its IP returns to the pool', async (t) => {
    const rec = records.find((r) => r.namespace === 'x' && r.name === 'c');
    if (rec === undefined) throw new Error('no record for x/c');
    const node = rec.node;
    const ipamFiles = (): string[] => {
      const dir = `${lab.paths.ipamDir(node)}/lab-bridge`;
      return existsSync(dir) ? readdirSync(dir) : [];
    };
    if (cni === 'bridge') t.ok(ipamFiles().includes(rec.ips[0] ?? ''), 'host-local holds the reservation');
    const r = await runner.run(
      'kubectl',
      ['--kubeconfig', lab.paths.adminKubeconfig, 'delete', 'pod', '-n', 'x', 'c', '--wait=true'],
      {
        timeoutMs: 60_000,
      },
    );
    t.match(r.stdout, /pod "c" deleted/);
    t.notOk(netns.exists(rec.netns), 'the Pod namespace is gone');
    t.notOk(existsSync(lab.paths.podRecord('x', 'c')), 'the record is gone');
    t.notOk(existsSync(rec.socket), 'the control socket is gone');
    t.notOk(
      readdirSync(lab.paths.cniCacheDir(node)).some((f) => f.includes(rec.containerId)),
      'the cached result is dropped',
    );
    if (cni === 'bridge')
      t.notOk(ipamFiles().includes(rec.ips[0] ?? ''), 'host-local released the IP (DEL reached IPAM)');
    const again = await ensureModel(lab.client, 'k8s');
    t.equal(again.length, 9, 'the model is whole again');
  });

  await t.test('status lists Nodes, Pods and processes', async (t) => {
    const r = await labCli(['status', '--data-dir', lab.dataDir]);
    t.equal(r.exitCode, 0);
    t.match(r.stdout, /: ready\n/);
    t.match(r.stdout, /node-1 +True +192\.0\.2\.11 +10\.10\.\d+\.0\/24 +ovsdb-server=\d+ ovs-vswitchd=\d+/);
    t.match(r.stdout, /9 Pod\(s\)/);
    t.match(r.stdout, /isolation: ok/);
  });

  await t.test(
    'conformance runs a directory of case files against the lab',
    {
      skip: fullMesh
        ? false
        : `the self-test cases need every Pod to reach every Pod; ${cni} does not connect Nodes yet`,
    },
    async (t) => {
      const self = join(ROOT, 'test', 'conformance', 'lab-selftest');
      const r = await labCli(['conformance', '--data-dir', lab.dataDir, '--cases', self, '--retry-seconds', '2']);
      t.equal(r.exitCode, 1, 'a failing case makes the run fail');
      const lines = r.stdout.trimEnd().split('\n');
      t.match(lines, [/^running 4 case\(s\) from /]);
      t.match(r.stdout, /^PASS {2}lab-01-allow-all \(/m);
      t.match(r.stdout, /^PASS {2}lab-02-ipblock-placeholders \(/m);
      t.match(r.stdout, /^SKIP {2}lab-03-sctp \([^)]*\): .*SCTP/m);
      t.match(r.stdout, /^FAIL {2}lab-04-wrong-expectation \(/m);
      t.equal(lines.at(-1), '2 passed, 1 failed, 1 skipped');

      // Any directory in the format: a copy of one case passes alone; a broken file is reported by field.
      const dir = mkdtempSync('/tmp/alab-cases-');
      t.teardown(() => rmSync(dir, { recursive: true, force: true }));
      copyFileSync(join(self, '01-allow-all.json'), join(dir, 'mine.json'));
      const one = await labCli(['conformance', '--data-dir', lab.dataDir, '--cases', dir, '--filter', 'allow-all']);
      t.equal(one.exitCode, 0, 'exit status 0', { output: one.stdout + one.stderr });
      t.match(one.stdout, /1 passed, 0 failed, 0 skipped\n$/);
      writeFileSync(join(dir, 'broken.json'), JSON.stringify({ schema: 'netpol-case/v1', id: 'broken' }));
      const bad = await labCli([
        'conformance',
        '--data-dir',
        lab.dataDir,
        '--cases',
        dir,
        '--filter',
        'nothing-matches',
      ]);
      t.equal(bad.exitCode, 1);
      t.match(bad.stdout, /INVALID .*broken\.json\n {2}[^\n]*required/);
      t.match(bad.stdout, /0 passed, 1 failed, 0 skipped\n$/);
      t.same(
        (await lab.client.list({ apiVersion: 'networking.k8s.io/v1', resource: 'networkpolicies' })).items,
        [],
        'the runner removed what the cases applied',
      );
    },
  );

  await t.test('down removes everything and a second down finds nothing', async (t) => {
    const r = await labCli(['down', '--data-dir', lab.dataDir]);
    t.equal(r.exitCode, 0, 'exit status 0', { output: r.stdout + r.stderr });
    t.match(r.stdout, /stopping the lab supervisor/);
    t.same(await labInventory(lab.dataDir), []);
    t.same(await labRoutes(lab.prefix), routesBefore, "the root namespace's routes are as before");
    const again = await labCli(['down', '--data-dir', lab.dataDir]);
    t.match(again.stdout, /nothing to remove/);
    const status = await labCli(['status', '--data-dir', lab.dataDir]);
    t.equal(status.exitCode, 3);
  });
});
