/**
 * CNI end to end on one real Node: antrea-agent in a Node namespace with its own ovsdb-server and
 * ovs-vswitchd (userspace datapath) and its own OpenFlow pipeline, and the installed antrea-cni
 * plugin run exactly as a container runtime runs it (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS,
 * CNI_IFNAME, CNI_ARGS with K8S_POD_NAME/K8S_POD_NAMESPACE, CNI_PATH; configuration on stdin).
 *
 * 20 Pods are added (in parallel batches), ping each other and the gateway through the agent's
 * flows, pass CHECK, and are deleted leaving no veth, port, flow or IP; repeated DEL succeeds; ADD
 * with bad configuration or a missing netns returns the right code and leaves nothing; GC keeps
 * only the valid attachments; every supported CNI version works. Pods get the ofports the agent
 * requested, and a restarted agent skips numbers taken meanwhile.
 */
import t, { type Test } from 'tap';
import { SUPPORTED_CNI_VERSIONS } from '../../src/common/apis/cni/spec.ts';
import { AgentNode, type PodRef } from '../helpers/agent-node.ts';
import { POD_OFPORT_MIN } from '../../src/common/agent/cniserver/ofport-allocator.ts';
import { integrationSkipReason, runner, uniqueName } from '../helpers/env.ts';
import { NO_BUN } from '../helpers/bun.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

interface AddedPod extends PodRef {
  readonly ip: string;
  readonly hostName: string;
  readonly mac: string;
  readonly result: Record<string, unknown>;
}

async function addPod(t: Test, node: AgentNode, name: string, version = '1.0.0'): Promise<AddedPod> {
  const pod: PodRef = { containerId: uniqueName('ctr'), netns: await node.podNetns(t), name };
  const r = await node.cni('ADD', pod, { version });
  if (r.exitCode !== 0) throw new Error(`ADD ${name} failed: ${r.stdout}`);
  const res = r.json!;
  const ips = res['ips'] as { address: string }[];
  const ifs = res['interfaces'] as { name: string; mac: string }[];
  return { ...pod, ip: ips[0]!.address.split('/')[0]!, hostName: ifs[0]!.name, mac: ifs[1]!.mac, result: res };
}

/** Pings each target once from `from`; returns the targets that did not answer. */
async function unreachable(node: AgentNode, from: string, targets: readonly string[]): Promise<string[]> {
  const script = `for ip in ${targets.join(' ')}; do ping -c1 -W2 -q $ip >/dev/null 2>&1 || echo $ip; done`;
  const r = await node.inPod(from, 'sh', ['-c', script]);
  return r.stdout.split('\n').filter((l) => l !== '');
}

async function inBatches<T, R>(items: readonly T[], size: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

t.test('20 Pods: ADD, connectivity, CHECK, DEL leaves nothing behind', async (t) => {
  const node = await AgentNode.create(t);
  await node.start();
  const names = Array.from({ length: 20 }, (_, i) => `web-${i}`);
  const pods = await inBatches(names, 5, (n) => addPod(t, node, n));

  t.equal(new Set(pods.map((p) => p.ip)).size, 20, '20 distinct IPs');
  t.ok(
    pods.every((p) => p.ip.startsWith('10.10.1.')),
    'from the Node Pod CIDR',
  );
  const first = pods[0]!;
  t.match(first.result, {
    cniVersion: '1.0.0',
    interfaces: [{ name: first.hostName }, { name: 'eth0', sandbox: first.netns }],
    ips: [{ gateway: '10.10.1.1', interface: 1 }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.10.1.1' }],
  });
  const ids = await node.portExternalIds(first.hostName);
  t.match(ids, {
    'antrea-type': 'container',
    'container-id': first.containerId,
    'pod-name': 'web-0',
    'pod-namespace': 'default',
    'ip-address': first.ip,
    'attached-mac': first.mac,
  });
  const inside = await node.inPod(first.netns, 'ip', ['-o', 'addr', 'show', 'eth0']);
  t.match(inside.stdout, new RegExp(`inet ${first.ip.replaceAll('.', '\\.')}/24`), 'the address is inside the Pod');
  t.match((await node.inPod(first.netns, 'ip', ['link', 'show', 'eth0'])).stdout, /mtu 1450/, 'MTU 1500 - Geneve');
  t.same(await node.violations(), [], 'ports, veths, flows and IPs are consistent');

  const flows = await node.flows();
  t.notOk(
    flows.some((f) => f.includes('actions=NORMAL') && !f.includes('arp')),
    'IP goes through our flows, not NORMAL',
  );

  const gw = await inBatches(pods, 5, (p) => unreachable(node, p.netns, [node.gatewayIP]));
  t.same(gw.flat(), [], 'every Pod reaches the gateway');
  const mesh = await inBatches(pods, 4, async (p) =>
    (
      await unreachable(
        node,
        p.netns,
        pods.filter((q) => q !== p).map((q) => q.ip),
      )
    ).map((ip) => `${p.ip}->${ip}`),
  );
  t.same(mesh.flat(), [], 'every Pod reaches every other Pod (380 pairs)');

  const checks = await inBatches(pods, 5, (p) => node.cni('CHECK', p, { config: { prevResult: p.result } }));
  t.same(
    checks.map((c) => c.exitCode),
    pods.map(() => 0),
    'CHECK passes for every Pod',
  );

  const dels = await inBatches(pods, 5, (p) => node.cni('DEL', p, { config: { prevResult: p.result } }));
  t.same(
    dels.map((d) => d.exitCode),
    pods.map(() => 0),
    'DEL succeeds',
  );
  t.same(await node.ports(), ['antrea-gw0', 'antrea-tun0'], 'no Pod port left');
  t.same([...node.reservations().keys()], [], 'no IP reserved');
  const links = await node.links();
  t.same(
    pods.filter((p) => links.has(p.hostName)).map((p) => p.hostName),
    [],
    'no veth left',
  );
  const after = (await node.flows()).join('\n');
  for (const p of pods) {
    if (after.includes(p.mac) || after.includes(`=${p.ip},`) || after.includes(`=${p.ip} `))
      t.fail(`flows of ${p.name} left`);
  }
  t.notMatch(after, /priority=190,in_port=/, 'no Pod classifier flow left');
  const again = await inBatches(pods, 5, (p) => node.cni('DEL', p));
  t.same(
    again.map((d) => d.exitCode),
    pods.map(() => 0),
    'a repeated DEL succeeds',
  );
  const noNetns = await node.cni('DEL', { ...first, netns: '' }, { env: { CNI_NETNS: undefined } });
  t.equal(noNetns.exitCode, 0, 'DEL without CNI_NETNS succeeds');
  t.same(await node.violations(), []);
});

t.test('bad ADDs return the right code and leave nothing', async (t) => {
  const node = await AgentNode.create(t);
  await node.start();
  const netns = await node.podNetns(t);
  const pod: PodRef = { containerId: uniqueName('bad'), netns, name: 'bad' };
  const cases: [string, Parameters<AgentNode['cni']>[2], PodRef, number][] = [
    [
      'an unsupported cniVersion',
      { stdin: '{"cniVersion":"0.2.0","name":"antrea","type":"antrea","ipam":{"type":"host-local"}}' },
      pod,
      1,
    ],
    ['an unknown IPAM type', { config: { ipam: { type: 'dhcp' } } }, pod, 2],
    ['another plugin type', { config: { type: 'bridge' } }, pod, 2],
    ['malformed JSON', { stdin: '{"cniVersion":' }, pod, 6],
    ['no network name', { stdin: '{"cniVersion":"1.0.0","type":"antrea"}' }, pod, 7],
    ['a netns that does not exist', {}, { ...pod, netns: '/run/netns/does-not-exist' }, 4],
    ['a netns path that is not a namespace', {}, { ...pod, netns: '/etc/hostname' }, 4],
    ['no CNI_NETNS', { env: { CNI_NETNS: undefined } }, pod, 4],
    ['an invalid interface name', {}, { ...pod, ifname: 'eth0:1' }, 4],
  ];
  for (const [what, opts, ref, code] of cases) {
    const r = await node.cni('ADD', ref, opts);
    t.equal(r.exitCode, 1, `${what}: fails`);
    t.equal(r.json?.['code'], code, `${what}: code ${code} (${String(r.json?.['msg'])})`);
  }
  t.same(await node.ports(), ['antrea-gw0', 'antrea-tun0'], 'no port');
  t.same([...node.reservations().keys()], [], 'no IP');
  t.same(await node.violations(), []);
  const inside = await node.inPod(netns, 'ip', ['-o', 'link']);
  t.notMatch(inside.stdout, /eth0/, 'nothing inside the Pod');
  const ok = await node.cni('ADD', pod);
  t.equal(ok.exitCode, 0, 'the same Pod then succeeds with a good configuration');
  const dup = await node.cni('ADD', pod);
  t.same(dup.json, ok.json, 'a repeated ADD returns the same result');
  t.same(await node.violations(), []);
});

t.test('CHECK detects damage, GC keeps only valid attachments, STATUS answers', async (t) => {
  const node = await AgentNode.create(t);
  await node.start();
  const [a, b, c] = [await addPod(t, node, 'a'), await addPod(t, node, 'b'), await addPod(t, node, 'c')];
  t.equal((await node.cni('CHECK', a, { config: { prevResult: a.result } })).exitCode, 0);
  await node.inPod(a.netns, 'ip', ['addr', 'flush', 'dev', 'eth0']);
  const damaged = await node.cni('CHECK', a, { config: { prevResult: a.result } });
  t.equal(damaged.json?.['code'], 103, 'a Pod that lost its address fails CHECK');
  t.match(String(damaged.json?.['msg']), /lacks address/);
  const noPrev = await node.cni('CHECK', b);
  t.equal(noPrev.json?.['code'], 2, 'CHECK needs prevResult');

  const gc = await node.cni('GC', undefined, {
    version: '1.1.0',
    config: { 'cni.dev/valid-attachments': [{ containerID: b.containerId, ifname: 'eth0' }] },
  });
  t.equal(gc.exitCode, 0, gc.stdout);
  t.same(await node.ports(), ['antrea-gw0', 'antrea-tun0', b.hostName].sort(), 'only the valid Pod keeps its port');
  t.same([...node.reservations().keys()], [b.ip], 'only its IP stays reserved');
  t.same(await unreachable(node, b.netns, [node.gatewayIP]), [], 'and it still works');
  t.same(await node.violations(), []);
  t.equal((await node.cni('DEL', a)).exitCode, 0, 'DEL after GC still succeeds');
  t.equal((await node.cni('DEL', c)).exitCode, 0);
  t.equal((await node.cni('STATUS', undefined, { version: '1.1.0' })).exitCode, 0, 'STATUS: ready');
  const old = await node.cni('STATUS', undefined, { version: '1.0.0' });
  t.equal(old.json?.['code'], 1, 'STATUS needs a 1.1.0 configuration');
  await node.stop();
  const down = await node.cni('STATUS', undefined, { version: '1.1.0' });
  t.equal(down.json?.['code'], 50, 'STATUS with the agent down: 50');
  const addDown = await node.cni('ADD', { containerId: 'x', netns: b.netns, name: 'x' });
  t.equal(addDown.json?.['code'], 11, 'ADD with the agent down: try again later');
});

for (const plugin of ['standalone', 'node'] as const) {
  t.test(
    `every supported CNI version: ADD, CHECK, DEL (plugin ${plugin === 'node' ? 'on Node' : 'standalone'})`,
    { skip: plugin === 'standalone' ? NO_BUN : false },
    async (t) => {
      const node = await AgentNode.create(t, { plugin });
      t.equal(node.pluginForm, plugin === 'node' ? 'node-bundle' : 'standalone');
      await node.start();
      for (const version of SUPPORTED_CNI_VERSIONS) {
        const p = await addPod(t, node, `v-${version.replaceAll('.', '')}`, version);
        t.equal(p.result['cniVersion'], version, `${version}: result version`);
        const ip = (p.result['ips'] as Record<string, unknown>[])[0]!;
        t.equal(
          ip['version'],
          version.startsWith('0.') ? '4' : undefined,
          `${version}: ips[].version only before 1.0.0`,
        );
        if (version !== '0.3.0' && version !== '0.3.1') {
          t.equal(
            (await node.cni('CHECK', p, { version, config: { prevResult: p.result } })).exitCode,
            0,
            `${version}: CHECK`,
          );
        } else {
          t.equal((await node.cni('CHECK', p, { version })).json?.['code'], 1, `${version}: no CHECK before 0.4.0`);
        }
        t.same(await unreachable(node, p.netns, [node.gatewayIP]), [], `${version}: connectivity`);
        t.equal(
          (await node.cni('DEL', p, { version, config: { prevResult: p.result } })).exitCode,
          0,
          `${version}: DEL`,
        );
      }
      t.same(await node.ports(), ['antrea-gw0', 'antrea-tun0']);
      t.same(await node.violations(), []);
    },
  );
}

t.test('Pods get the ofports the agent chose; after a restart it skips every number in use', async (t) => {
  const node = await AgentNode.create(t);
  await node.start();
  const vsctl = async (...args: string[]): Promise<string> =>
    (await runner.run('ovs-vsctl', [`--db=${node.ovs.dbEndpoint}`, ...args], { timeoutMs: 20_000 })).stdout.trim();
  const a = await addPod(t, node, 'of-a');
  const b = await addPod(t, node, 'of-b');
  const ofA = await node.ofport(a.hostName);
  t.equal(ofA, POD_OFPORT_MIN, 'the first Pod has the lowest Pod ofport (upper half of the range)');
  t.equal(Number(await vsctl('get', 'Interface', a.hostName, 'ofport_request')), ofA, 'as requested');
  t.equal(await node.ofport(b.hostName), POD_OFPORT_MIN + 1);
  t.same(await unreachable(node, a.netns, [b.ip, node.gatewayIP]), [], 'both Pods forward through their flows');

  // While the agent is down, another writer takes the next number.
  await node.stop();
  await vsctl(
    'add-port',
    'br-int',
    'intruder0',
    '--',
    'set',
    'Interface',
    'intruder0',
    'type=internal',
    `ofport_request=${POD_OFPORT_MIN + 2}`,
  );
  t.teardown(() => vsctl('--if-exists', 'del-port', 'intruder0'));
  await node.start();
  const c = await addPod(t, node, 'of-c');
  t.equal(await node.ofport(c.hostName), POD_OFPORT_MIN + 3, 'the restarted agent skips the taken number');
  t.same(await unreachable(node, c.netns, [a.ip, b.ip, node.gatewayIP]), [], 'the new Pod forwards too');
  const flows = await node.flows();
  t.ok(
    flows.some((f) => f.includes(`in_port=${POD_OFPORT_MIN + 3} `)),
    "the new Pod's flows use its ofport",
  );
  t.notOk(
    flows.some((f) => f.includes(`in_port=${POD_OFPORT_MIN + 2} `)),
    'nothing points at the intruder',
  );
  await vsctl('del-port', 'intruder0');
  for (const p of [a, b, c]) t.equal((await node.cni('DEL', p)).exitCode, 0);
  t.same(await node.violations(), []);
});
