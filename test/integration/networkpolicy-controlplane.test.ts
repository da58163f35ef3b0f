/**
 * NetworkPolicy from the Kubernetes API to packets on a Node (test/helpers/controlplane-node.ts):
 * the embedded API server, the real antrea-controller, and the antrea-agent process watching it. A
 * K8s NetworkPolicy is enforced on real TCP connections and its realization is reported back to the
 * controller. With the controller down the agent is killed and restarted: it enforces its snapshot
 * (a continuous prober on the denied pair never succeeds; the allowed pair is back within 10 s);
 * with the controller back a policy change is enforced again.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { controllerRequest } from '../../src/common/agent/controlplane/index.ts';
import { ControlplaneNode, NODE, until } from '../helpers/controlplane-node.ts';
import { integrationSkipReason, launcher } from '../helpers/env.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

const CP = '/apis/controlplane.antrea.io/v1beta2';
const PROBE = join(import.meta.dirname, '..', 'helpers', 'netpol-probe.ts');

t.test(
  'a Kubernetes NetworkPolicy through antrea-controller to packets; the snapshot while it is down',
  async (t: Test) => {
    const cp = await ControlplaneNode.create(t, '10.10.30.0/24', 4000);
    const node = cp.node;
    const reg = cp.api.registry;
    cp.namespace('x');
    await node.start();
    const server = await cp.addPod('x', 'server', { app: 'server' });
    const a = await cp.addPod('x', 'a', { app: 'a' });
    const b = await cp.addPod('x', 'b', { app: 'b' });
    await cp.serve(server, [80]);
    t.ok(await cp.eventually(b, server, true), 'no policy: b → server');

    const npType = cp.type('networkpolicies', 'networking.k8s.io');
    const spec = (from: string): Record<string, unknown> => ({
      podSelector: { matchLabels: { app: 'server' } },
      policyTypes: ['Ingress'],
      ingress: [
        { from: [{ podSelector: { matchLabels: { app: from } } }], ports: [{ protocol: 'TCP', port: 'http' }] },
      ],
    });
    reg.create(npType, 'x', { metadata: { name: 'allow', namespace: 'x' }, spec: spec('a') });
    t.notOk(await cp.eventually(b, server, false), 'b → server denied by the policy from the API');
    t.ok(await cp.probe(a, server), 'a → server allowed (named port "http" resolved on the server)');

    // The agent reported the realization to the controller.
    const list = JSON.parse((await controllerRequest(cp.admin, { path: `${CP}/networkpolicies` })).body.toString()) as {
      items: { metadata: { name: string }; sourceRef?: { name: string } }[];
    };
    const internal = list.items.find((p) => p.sourceRef?.name === 'allow');
    t.ok(internal !== undefined, 'the controller computed the policy');
    await until('the realization status', async () => {
      const st = JSON.parse(
        (
          await controllerRequest(cp.admin, { path: `${CP}/networkpolicies/${internal?.metadata.name ?? ''}/status` })
        ).body.toString(),
      ) as { nodes?: { nodeName: string; realizationFailure?: boolean }[] };
      return st.nodes?.some((n) => n.nodeName === NODE && n.realizationFailure !== true) === true;
    });
    t.pass('the Node reported the policy realized');

    // A continuous prober on the denied pair; the controller goes down; the agent is killed and restarted.
    const probeLog = join(cp.dir, 'deny.log');
    const prober = await launcher.launch(
      'ip',
      ['netns', 'exec', b.ns, process.execPath, PROBE, 'loop', 'tcp', server.ip, '80', '200'],
      { logFile: probeLog },
    );
    cp.own(prober);
    await cp.stopControllerNow();
    await node.kill('SIGKILL');
    const restartAt = Date.now();
    await node.start({ waitReady: false });
    await node.waitReady(20_000);
    t.ok(Date.now() - restartAt < 20_000, 'the agent became ready while the controller is down');
    t.match(node.log(), /falling back on the policy snapshot on disk/, 'from its snapshot');
    t.ok(await cp.eventually(a, server, true), 'a → server allowed from the snapshot');
    t.ok(Date.now() - restartAt <= 12_000, `allowed within ~10 s of the restart (${Date.now() - restartAt} ms)`);

    // The controller is back: a changed policy (now b instead of a) is enforced.
    await cp.startController();
    t.notOk(await cp.probe(b, server), 'b → server still denied with the controller back');
    const updateAt = Date.now();
    const cur = reg.get(npType, 'x', 'allow').obj;
    reg.update(npType, 'x', 'allow', { ...cur, spec: spec('b') });
    t.ok(await cp.eventually(b, server, true), 'with the controller back, the update allows b');
    t.notOk(await cp.eventually(a, server, false), 'and denies a');
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
    // A corrupt snapshot with the controller down: never "no policy". The agent stays not ready
    // (ADD answers 11) and the previous flows keep enforcing.
    await cp.stopControllerNow();
    await node.kill('SIGKILL');
    const snap = join(node.stateDir, 'networkpolicy', 'snapshot');
    const bytes = readFileSync(snap);
    writeFileSync(snap, Buffer.concat([bytes.subarray(0, bytes.length - 7), Buffer.from('garbage')]));
    await node.start({ waitReady: false });
    await until('the CNI socket', () => existsSync(node.socket), 20_000);
    const add = await node.cni('ADD', {
      containerId: 'late',
      netns: await node.podNetns(),
      name: 'late',
      namespace: 'x',
    });
    t.equal(add.json?.['code'], 11, 'ADD answers 11: a corrupt snapshot is not an empty policy set');
    t.notOk(await cp.probe(a, server), 'a → server still denied (previous flows)');
    t.ok(await cp.probe(b, server), 'b → server still allowed (previous flows)');
    await cp.startController();
    await node.waitReady(30_000);
    t.pass('with the controller back the agent becomes ready');
  },
);
