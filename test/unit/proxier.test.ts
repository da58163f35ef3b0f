/**
 * The proxier against the real flow store (a fake datapath records each atomic change): what one
 * sync installs for a Service with Endpoints on two Nodes, Endpoint changes as minimal updates,
 * reference-counted Endpoint flows shared by two Services, no-Endpoint reject groups, traffic
 * policies, session affinity, NodePorts handed to the host, skipped Services, terminating
 * fallback, and a failed bundle leaving everything as it was. Real OVS: test/integration/proxy.test.ts.
 */
import t from 'tap';
import { CookieAllocator } from '../../src/common/agent/openflow/cookie.ts';
import { RealizedPipeline } from '../../src/common/agent/openflow/framework.ts';
import { PodConnectivityFeature } from '../../src/common/agent/openflow/pod-connectivity.ts';
import { ServiceFeature } from '../../src/common/agent/openflow/service.ts';
import { OfStore, type PlanBuilder } from '../../src/common/agent/openflow/store.ts';
import type { SwitchOp } from '../../src/common/ovs/openflow/ops.ts';
import { desiredPorts, type NodePortKey, Proxier } from '../../src/common/agent/proxy/proxier.ts';
import type { EndpointSlice, Service } from '../../src/common/k8s/objects.ts';

const cookies = new CookieAllocator(1);
const gateway = { ofport: 32769, mac: '0a:00:00:00:00:01', ips: ['10.10.1.1'] };
const pc = new PodConnectivityFeature({ cookies, gateway, podCIDRs: ['10.10.1.0/24'] });

function describe(o: SwitchOp): string {
  switch (o.kind) {
    case 'flow':
      return `${o.command} ${o.flow.toString()}`;
    case 'group':
      return `group_${o.command} ${o.group.toString()}`;
    case 'group_delete':
      return `group_delete ${o.groupId}`;
    case 'flows':
    case 'meter':
    case 'meter_delete':
      return o.kind;
  }
}

class FakeDatapath {
  readonly store = new OfStore();
  readonly changes: string[][] = [];
  failNext = false;
  readonly pipeline: RealizedPipeline;
  constructor(pipeline: RealizedPipeline) {
    this.pipeline = pipeline;
  }
  change(build: (b: PlanBuilder) => void): Promise<void> {
    const plan = this.store.plan(build);
    if (this.failNext) {
      this.failNext = false;
      return Promise.reject(new Error('bundle failed'));
    }
    this.changes.push(plan.ops.map(describe));
    plan.commit();
    return Promise.resolve();
  }
  get last(): string[] {
    return this.changes[this.changes.length - 1] ?? [];
  }
}

function setup(nodePort = false): { dp: FakeDatapath; proxier: Proxier; nodePorts: NodePortKey[][] } {
  const svc = new ServiceFeature({ cookies, gateway, ...(nodePort ? { nodePortAddresses: ['192.0.2.10'] } : {}) });
  const dp = new FakeDatapath(new RealizedPipeline([pc, svc]));
  const nodePorts: NodePortKey[][] = [];
  const proxier = new Proxier({
    datapath: dp,
    feature: svc,
    nodeName: 'node-1',
    nodePortHost: {
      setNodePorts: (p) => {
        nodePorts.push([...p]);
        return Promise.resolve();
      },
    },
  });
  return { dp, proxier, nodePorts };
}

function service(name: string, ip: string, extra: Partial<NonNullable<Service['spec']>> = {}): Service {
  return {
    metadata: { namespace: 'default', name, resourceVersion: '1' },
    spec: { type: 'ClusterIP', clusterIP: ip, ports: [{ name: 'http', port: 80, protocol: 'TCP' }], ...extra },
  };
}

function slice(
  svc: string,
  eps: { ip: string; node: string; ready?: boolean; serving?: boolean; terminating?: boolean }[],
  name = `${svc}-abc`,
): EndpointSlice {
  return {
    metadata: { namespace: 'default', name, labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: eps.map((e) => ({
      addresses: [e.ip],
      nodeName: e.node,
      conditions: {
        ...(e.ready === undefined ? {} : { ready: e.ready }),
        ...(e.serving === undefined ? {} : { serving: e.serving }),
        ...(e.terminating === undefined ? {} : { terminating: e.terminating }),
      },
    })),
  };
}

const three = [
  { ip: '10.10.1.5', node: 'node-1' },
  { ip: '10.10.1.6', node: 'node-1' },
  { ip: '10.10.2.7', node: 'node-2' },
];

t.test('one sync installs a Service with three Endpoints in one bundle; an Endpoint change is minimal', async (t) => {
  const { dp, proxier } = setup();
  proxier.setService(service('web', '10.96.0.10'));
  proxier.setSlice(slice('web', three));
  t.same(await proxier.sync(), { changed: 1, removed: 0 });
  t.equal(dp.changes.length, 1, 'one atomic change');
  const ops = dp.last;
  t.equal(ops.filter((o) => o.startsWith('group_add')).length, 1, 'one group');
  t.match(
    ops.find((o) => o.startsWith('group_add')),
    /^group_add group_id=1,type=select(,bucket=bucket_id:\d,weight:100,actions=[^,]+(,[^,b][^,]*)*){3}$/,
  );
  t.equal(ops.filter((o) => /nat\(dst=10\.10\.\d\.\d:8080\)/.test(o)).length, 3, 'three DNAT flows');
  t.equal(ops.filter((o) => /nw_src=(\S+),nw_dst=\1 /.test(o)).length, 2, 'hairpin for the two local Endpoints');
  t.equal(ops.filter((o) => /nw_dst=10\.96\.0\.10,tp_dst=80 actions=.*group:1/.test(o)).length, 1, 'ServiceLB flow');
  t.ok(
    ops.indexOf(ops.find((o) => o.startsWith('group_add'))!) < ops.findIndex((o) => o.includes('group:1')),
    'group before its flow',
  );

  // The remote Endpoint goes away: the group changes, its DNAT flow goes, nothing else.
  proxier.setSlice(slice('web', three.slice(0, 2)), slice('web', three));
  await proxier.sync();
  t.equal(dp.changes.length, 2);
  t.same(
    dp.last.map((o) => o.split(' ')[0]),
    ['group_modify', 'delete_strict'],
    'the group no longer selects it, then its flow is deleted',
  );
  t.match(dp.last[1], /10\.10\.2\.7/);
  t.same(await proxier.sync(), { changed: 0, removed: 0 }, 'nothing pending: nothing to do');
  t.equal(dp.changes.length, 2);

  proxier.deleteService(service('web', '10.96.0.10'));
  t.same(await proxier.sync(), { changed: 0, removed: 1 });
  t.equal(dp.store.allFlows().length, 0, 'every Service flow removed');
  t.equal(dp.store.allGroups().length, 0, 'the group removed');
  t.ok(
    dp.last.indexOf('group_delete 1') > dp.last.findIndex((o) => o.includes('group:1')),
    'group deleted after its flow',
  );
});

t.test('Endpoint flows are shared and reference-counted across Services', async (t) => {
  const { dp, proxier } = setup();
  proxier.setService(service('a', '10.96.0.1'));
  proxier.setService(service('b', '10.96.0.2'));
  proxier.setSlice(slice('a', three.slice(0, 1)));
  proxier.setSlice(slice('b', three.slice(0, 1)));
  await proxier.sync();
  t.equal(dp.last.filter((o) => o.includes('nat(dst=10.10.1.5:8080)')).length, 1, 'one DNAT flow for two Services');
  proxier.deleteService(service('a', '10.96.0.1'));
  await proxier.sync();
  t.notOk(
    dp.last.some((o) => o.includes('nat(dst=')),
    'still used by b: kept',
  );
  proxier.deleteService(service('b', '10.96.0.2'));
  await proxier.sync();
  t.ok(
    dp.last.some((o) => o.startsWith('delete_strict') && o.includes('nat(dst=10.10.1.5:8080)')),
    'now removed',
  );
  t.equal(dp.store.allFlows().length, 0);
});

t.test('no Endpoints: a reject group; ITP Local: the local group; affinity: learn', async (t) => {
  const { dp, proxier } = setup();
  proxier.setService(service('empty', '10.96.0.3'));
  await proxier.sync();
  t.ok(
    dp.last.some((o) => o.includes('set_field:0x4000/0x4000->reg0')),
    'the no-Endpoint bucket',
  );
  proxier.setService(service('local', '10.96.0.4', { internalTrafficPolicy: 'Local' }));
  proxier.setSlice(slice('local', three));
  await proxier.sync();
  const cluster = proxier.groupId('default/local:http/TCP');
  const local = proxier.groupId('default/local:http/TCP', 'local');
  t.ok(cluster !== undefined && local !== undefined && cluster !== local);
  t.ok(dp.last.some((o) => o.includes(`nw_dst=10.96.0.4,tp_dst=80 actions=`) && o.endsWith(`group:${local}`)));
  const localGroup = dp.store.allGroups().find((g) => g.groupId === local)!;
  t.equal(localGroup.buckets.length, 2, 'only the local Endpoints');
  proxier.setService(
    service('sticky', '10.96.0.5', {
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 30 } },
    }),
  );
  await proxier.sync();
  t.ok(dp.last.some((o) => o.includes('learn(table=') && o.includes('hard_timeout=30')));
});

t.test('NodePorts: ServiceLB flows and the host set; ETP Local', async (t) => {
  const { dp, proxier, nodePorts } = setup(true);
  proxier.setService(
    service('np', '10.96.0.6', {
      type: 'NodePort',
      externalTrafficPolicy: 'Local',
      ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }],
    }),
  );
  proxier.setSlice(slice('np', three));
  await proxier.sync();
  t.same(nodePorts, [[{ port: 30080, protocol: 'TCP' }]]);
  t.equal(
    dp.last.filter((o) => o.includes('tp_dst=30080')).length,
    2,
    'external clients → local group, local clients → cluster group',
  );
  proxier.deleteService(service('np', '10.96.0.6'));
  await proxier.sync();
  t.same(nodePorts[1], [], 'the host set emptied');
});

t.test('a failed bundle changes nothing and the change stays pending', async (t) => {
  const { dp, proxier } = setup();
  proxier.setService(service('web', '10.96.0.10'));
  proxier.setSlice(slice('web', three));
  dp.failNext = true;
  await t.rejects(proxier.sync(), /bundle failed/);
  t.equal(dp.store.allFlows().length, 0);
  t.equal(proxier.installedPorts().length, 0);
  t.equal(proxier.pendingChanges, 1);
  await proxier.sync();
  t.equal(proxier.installedPorts().length, 1);
  t.equal(dp.store.allGroups()[0]?.groupId, 1, 'the group id of the failed attempt was reused');
});

t.test('desiredPorts: skipped Services, readiness and terminating fallback', (t) => {
  const s = service('x', '10.96.0.9');
  t.same(desiredPorts(service('h', 'None'), [], 'node-1'), [], 'headless');
  t.same(desiredPorts({ ...s, spec: { ...s.spec, type: 'ExternalName' } }, [], 'node-1'), [], 'ExternalName');
  t.same(
    desiredPorts(
      { ...s, metadata: { ...s.metadata, labels: { 'service.kubernetes.io/service-proxy-name': 'other' } } },
      [],
      'n',
    ),
    [],
    'another proxy',
  );
  t.same(desiredPorts(s, [], 'node-1', new Set(['default/x'])), [], 'skipServices');
  const ready = desiredPorts(
    s,
    [
      slice('x', [
        { ip: '10.0.0.2', node: 'n2', ready: false },
        { ip: '10.0.0.1', node: 'node-1' },
      ]),
    ],
    'node-1',
  );
  t.same(ready[0]?.cluster, [{ ip: '10.0.0.1', port: 8080, local: true }], 'only ready Endpoints');
  const term = desiredPorts(
    s,
    [
      slice('x', [
        { ip: '10.0.0.3', node: 'n', ready: false, serving: true, terminating: true },
        { ip: '10.0.0.4', node: 'n', ready: false },
      ]),
    ],
    'node-1',
  );
  t.same(
    term[0]?.cluster.map((e) => e.ip),
    ['10.0.0.3'],
    'serving terminating Endpoints when none is ready',
  );
  t.equal(
    desiredPorts({ ...s, spec: { ...s.spec, sessionAffinity: 'ClientIP' } }, [], 'n')[0]?.affinityTimeout,
    10800,
    'default affinity timeout',
  );
  t.end();
});
