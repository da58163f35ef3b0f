import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '../../src/common/util/errors.ts';
import {
  LabPaths,
  MARKER,
  prepareDataDir,
  readState,
  removeDataDir,
  resolveDataDir,
  writeState,
  type LabState,
} from '../../src/lab/state.ts';
import {
  agentTrafficSettings,
  buildTopology,
  controlSubnet,
  labPrefix,
  parseEncap,
  podNetnsName,
  underlaySubnetOf,
  validateNodeCount,
} from '../../src/lab/topology.ts';
import { chooseNode, type SchedulerNode } from '../../src/lab/scheduler.ts';
import { podPorts } from '../../src/lab/kubelet.ts';

t.test('the address plan of a 3-Node geneve lab', (t) => {
  const topo = buildTopology({ dataDir: '/var/lib/antrea-lab', nodes: 3, encap: 'geneve', slot: 2 });
  t.match(topo.prefix, /^al[0-9a-f]{5}-$/);
  t.equal(topo.prefix, labPrefix('/var/lib/antrea-lab'), 'the prefix derives from the data directory alone');
  t.not(labPrefix('/tmp/other'), topo.prefix);
  t.same(topo.control, {
    cidr: '198.51.100.64/27',
    prefix: 27,
    hostIP: '198.51.100.65',
    hostIface: `${topo.prefix}ctl`,
  });
  t.ok(topo.control.hostIface.length <= 15, 'the root veth name fits IFNAMSIZ');
  t.equal(topo.apiServerURL, 'https://198.51.100.65:6443');
  t.equal(topo.controllerAddress, '198.51.100.65:10349');
  t.same(
    topo.nodes.map((n) => [n.name, n.netns, n.controlIP, n.nodeIP, n.underlayPrefix, n.gatewayIP]),
    [
      ['node-1', `${topo.prefix}node-1`, '198.51.100.66', '192.0.2.11', 25, '192.0.2.1'],
      ['node-2', `${topo.prefix}node-2`, '198.51.100.67', '192.0.2.12', 25, '192.0.2.1'],
      ['node-3', `${topo.prefix}node-3`, '198.51.100.68', '192.0.2.13', 25, '192.0.2.1'],
    ],
  );
  t.same(topo.underlaySubnets, [0]);
  for (const ns of [topo.fabricNetns, topo.routerNetns, topo.externalNetns, ...topo.nodes.map((n) => n.netns)]) {
    t.ok(ns.startsWith(topo.prefix), `${ns} carries the lab prefix`);
  }
  t.end();
});

t.test('hybrid mode puts every second Node on the second underlay subnet, behind the router', (t) => {
  const topo = buildTopology({ dataDir: '/d', nodes: 4, encap: 'hybrid', slot: 0 });
  t.same(
    topo.nodes.map((n) => [n.underlaySubnet, n.nodeIP, n.gatewayIP]),
    [
      [0, '192.0.2.11', '192.0.2.1'],
      [1, '192.0.2.140', '192.0.2.129'],
      [0, '192.0.2.13', '192.0.2.1'],
      [1, '192.0.2.142', '192.0.2.129'],
    ],
  );
  t.same(topo.underlaySubnets, [0, 1]);
  t.equal(underlaySubnetOf(2, 'noencap'), 0);
  t.same(agentTrafficSettings('hybrid'), { trafficEncapMode: 'hybrid', tunnelType: 'geneve' });
  t.same(agentTrafficSettings('vxlan'), { trafficEncapMode: 'encap', tunnelType: 'vxlan' });
  t.same(agentTrafficSettings('noencap'), { trafficEncapMode: 'noEncap', tunnelType: 'geneve' });
  t.end();
});

t.test('bad lab parameters name the argument', (t) => {
  t.throws(
    () => parseEncap('gre'),
    new ValidationError('--encap', 'must be one of geneve, vxlan, noencap, hybrid, got "gre"'),
  );
  t.throws(() => validateNodeCount(0), { message: /^--nodes: / });
  t.throws(() => validateNodeCount(17), { message: /^--nodes: / });
  t.throws(() => validateNodeCount(1.5), { message: /^--nodes: / });
  t.throws(() => controlSubnet(8), { message: /^slot: / });
  t.throws(() => buildTopology({ dataDir: '/d', nodes: 0, encap: 'geneve', slot: 0 }), { message: /^nodes: / });
  t.throws(() => podNetnsName('alx-', 'ab'), { message: /^metadata\.uid: / });
  t.equal(podNetnsName('al12345-', '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0'), 'al12345-pod-0f1e2d3c4b5a');
  t.end();
});

t.test('the data directory: resolution, ownership marker, state file', (t) => {
  t.throws(() => resolveDataDir('/'), { message: /^--data-dir: / });
  t.throws(() => resolveDataDir(`/tmp/${'x'.repeat(80)}`), { message: /^--data-dir: / });
  t.equal(resolveDataDir('/tmp/lab//a/'), '/tmp/lab/a');
  const base = mkdtempSync(join(tmpdir(), 'labt-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));

  const foreign = join(base, 'foreign');
  mkdirSync(foreign);
  writeFileSync(join(foreign, 'precious.txt'), 'keep me');
  t.throws(
    () => prepareDataDir(new LabPaths(foreign)),
    { message: /^--data-dir: / },
    'a non-empty foreign directory is refused',
  );
  t.notOk(removeDataDir(new LabPaths(foreign)), 'down never removes a directory the lab did not create');
  t.equal(readFileSync(join(foreign, 'precious.txt'), 'utf8'), 'keep me');

  const paths = new LabPaths(join(base, 'lab'));
  prepareDataDir(paths);
  prepareDataDir(paths); // idempotent
  t.match(readFileSync(join(paths.dataDir, MARKER), 'utf8'), /antrea-lab/);
  t.equal(readState(paths), undefined);
  const state: LabState = {
    version: 1,
    dataDir: paths.dataDir,
    prefix: 'al00000-',
    pid: 1,
    startedAt: 'now',
    phase: 'starting',
    options: { nodes: 2, encap: 'geneve', cni: 'bridge' },
    nodes: [],
  };
  writeState(paths, state);
  t.same(readState(paths), state);
  writeFileSync(paths.state, '{"version": 2}');
  t.equal(readState(paths), undefined, 'an unknown state version is not read');
  t.ok(removeDataDir(paths));
  t.notOk(removeDataDir(paths), 'idempotent');
  t.end();
});

t.test('the scheduler picks a Ready, matching Node with the fewest Pods', (t) => {
  const nodes: SchedulerNode[] = [
    { name: 'node-1', labels: { zone: 'a' }, ready: true, unschedulable: false },
    { name: 'node-2', labels: { zone: 'b' }, ready: true, unschedulable: false },
    { name: 'node-3', labels: { zone: 'b' }, ready: false, unschedulable: false },
    { name: 'node-4', labels: { zone: 'b' }, ready: true, unschedulable: true },
  ];
  const pod = (sel?: Record<string, string>): Parameters<typeof chooseNode>[0] => ({
    metadata: { name: 'p' },
    spec: { ...(sel === undefined ? {} : { nodeSelector: sel }) },
  });
  t.same(chooseNode(pod(), nodes, new Map()), { node: 'node-1' }, 'ties go by name');
  t.same(
    chooseNode(
      pod(),
      nodes,
      new Map([
        ['node-1', 2],
        ['node-2', 1],
      ]),
    ),
    { node: 'node-2' },
  );
  t.same(
    chooseNode(pod({ zone: 'b' }), nodes, new Map([['node-2', 9]])),
    { node: 'node-2' },
    'only Ready, schedulable Nodes',
  );
  t.same(chooseNode(pod({ zone: 'c' }), nodes, new Map()), {
    reason: "0/4 nodes are available: 2 node(s) didn't match Pod's node affinity/selector",
  });
  t.same(chooseNode(pod(), [], new Map()), { reason: '0/0 nodes are available: no Node is Ready' });
  t.end();
});

t.test('a Pod serves the TCP and UDP container ports it declares', (t) => {
  const p = podPorts({
    spec: {
      containers: [
        {
          ports: [
            { containerPort: 81 },
            { containerPort: 80, protocol: 'UDP' },
            { containerPort: 80, protocol: 'SCTP' },
          ],
        },
        { ports: [{ containerPort: 80, protocol: 'TCP' }, { containerPort: 81 }] },
        {},
      ],
    },
  });
  t.same(p, { tcp: [80, 81], udp: [80], unsupported: ['80/SCTP'] });
  t.end();
});
