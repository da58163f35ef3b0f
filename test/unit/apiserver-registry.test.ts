import t from 'tap';
import type { KObject } from '../../src/lab/apiserver/types.ts';
import { expectApiError, expectApiErrorAsync, MemorySink, settle, testCore } from '../helpers/apiserver.ts';

const podBody = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  metadata: { name, labels: { app: 'web' } },
  spec: { containers: [{ name: 'c', image: 'nginx:1.25' }] },
  ...extra,
});

t.test('create: server-owned metadata, defaults and one global resourceVersion', async (t) => {
  const c = await testCore(t);
  const pods = c.type('', 'pods');
  const before = c.store.rv;
  const a = c.registry.create(pods, 'default', podBody('a'));
  const b = c.registry.create(pods, 'default', podBody('b'));
  t.equal(Number(a.obj.metadata.resourceVersion), before + 1);
  t.equal(Number(b.obj.metadata.resourceVersion), before + 2, 'one counter for every write');
  t.match(a.obj.metadata.uid, /^[0-9a-f-]{36}$/);
  t.equal(a.obj.metadata.creationTimestamp, '2026-01-01T12:00:00Z', 'second precision');
  t.equal(a.obj.metadata.generation, 1);
  t.equal(a.obj.apiVersion, 'v1');
  t.equal(a.obj.kind, 'Pod');
  t.match(a.obj, {
    spec: {
      restartPolicy: 'Always',
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'default',
      terminationGracePeriodSeconds: 30,
    },
    status: { phase: 'Pending', qosClass: 'BestEffort' },
  });
  const g = c.registry.create(pods, 'default', { ...podBody(''), metadata: { generateName: 'web-' } });
  t.match(g.obj.metadata.name, /^web-[bcdfghjklmnpqrstvwxz2456789]{5}$/, 'generateName gets 5 random characters');
  expectApiError(t, () => c.registry.create(pods, 'default', podBody('a')), 409, 'AlreadyExists');
  expectApiError(t, () => c.registry.create(pods, 'nope', podBody('x')), 404, 'NotFound', 'namespace must exist');
  expectApiError(
    t,
    () => c.registry.create(pods, 'default', { ...podBody('x'), metadata: { name: 'x', namespace: 'other' } }),
    400,
    'BadRequest',
    'path and body namespaces disagree',
  );
  expectApiError(t, () => c.registry.create(pods, 'default', { ...podBody('x'), kind: 'Service' }), 400, 'BadRequest');
});

t.test('validation errors are 422 with causes naming the field', async (t) => {
  const c = await testCore(t);
  const pods = c.type('', 'pods');
  const e = expectApiError(
    t,
    () => c.registry.create(pods, 'default', { metadata: { name: 'Bad_Name' }, spec: {} }),
    422,
    'Invalid',
  );
  t.match(
    e?.message,
    /^Pod "Bad_Name" is invalid: \[metadata\.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/,
  );
  t.same(
    e?.statusDetails?.causes?.map((x) => [x.reason, x.field]),
    [
      ['FieldValueInvalid', 'metadata.name'],
      ['FieldValueRequired', 'spec.containers'],
    ],
  );
  const svc = expectApiError(
    t,
    () =>
      c.registry.create(c.type('', 'services'), 'default', {
        metadata: { name: 's' },
        spec: { ports: [{ port: 70000 }] },
      }),
    422,
  );
  t.equal(svc?.statusDetails?.causes?.[0]?.field, 'spec.ports[0].port');
  const np = expectApiError(
    t,
    () =>
      c.registry.create(c.type('networking.k8s.io', 'networkpolicies'), 'default', {
        metadata: { name: 'np' },
        spec: { podSelector: { matchExpressions: [{ key: 'a', operator: 'Like' }] } },
      }),
    422,
  );
  t.equal(np?.message.startsWith('NetworkPolicy.networking.k8s.io "np" is invalid'), true);
});

t.test('update: 409 on a stale resourceVersion, no-op writes change nothing, generation on spec changes', async (t) => {
  const c = await testCore(t);
  const pods = c.type('', 'pods');
  const a = c.registry.create(pods, 'default', podBody('a'));
  const next = structuredClone(a.obj);
  next.metadata.labels = { app: 'web', x: 'y' };
  const u1 = c.registry.update(pods, 'default', 'a', next).entry;
  t.equal(u1.obj.metadata.generation, 1, 'label change keeps generation');
  t.ok(Number(u1.obj.metadata.resourceVersion) > Number(a.obj.metadata.resourceVersion));
  const e = expectApiError(t, () => c.registry.update(pods, 'default', 'a', next), 409, 'Conflict');
  t.equal(
    e?.message,
    'Operation cannot be fulfilled on pods "a": the object has been modified; please apply your changes to the latest version and try again',
  );
  const rv = c.store.rv;
  const same = c.registry.update(pods, 'default', 'a', structuredClone(u1.obj)).entry;
  t.equal(same.obj.metadata.resourceVersion, u1.obj.metadata.resourceVersion, 'no-op update keeps the resourceVersion');
  t.equal(c.store.rv, rv, 'and writes nothing');
  const img = structuredClone(u1.obj);
  (img['spec'] as { containers: { image: string }[] }).containers[0]!.image = 'nginx:1.26';
  t.equal(
    c.registry.update(pods, 'default', 'a', img).entry.obj.metadata.generation,
    2,
    'spec change bumps generation',
  );
  const forbidden = structuredClone(c.registry.get(pods, 'default', 'a').obj);
  (forbidden['spec'] as Record<string, unknown>)['restartPolicy'] = 'Never';
  expectApiError(
    t,
    () => c.registry.update(pods, 'default', 'a', forbidden),
    422,
    'Invalid',
    'pod spec is mostly immutable',
  );
  const cm = c.type('', 'configmaps');
  c.registry.create(cm, 'default', { metadata: { name: 'cm' }, data: { a: '1' } });
  const unconditional = c.registry.update(cm, 'default', 'cm', { metadata: { name: 'cm' }, data: { a: '2' } }).entry;
  t.same(unconditional.obj['data'], { a: '2' }, 'built-ins accept an update without resourceVersion');
  t.equal(unconditional.obj.metadata.generation, undefined, 'ConfigMaps have no generation');
  expectApiError(t, () => c.registry.update(cm, 'default', 'absent', { metadata: { name: 'absent' } }), 404);
  const lease = c.registry.update(c.type('coordination.k8s.io', 'leases'), 'default', 'l', {
    metadata: { name: 'l' },
    spec: {},
  });
  t.ok(lease.created, 'Leases are created on update');
});

t.test('status subresource is kept apart from the main resource', async (t) => {
  const c = await testCore(t);
  const pods = c.type('', 'pods');
  const a = c.registry.create(pods, 'default', { ...podBody('a'), status: { phase: 'Running' } });
  t.equal((a.obj['status'] as { phase: string }).phase, 'Pending', 'create resets status');
  const withStatus = structuredClone(a.obj);
  withStatus['status'] = { phase: 'Running', podIP: '10.0.0.5' };
  const main = c.registry.update(pods, 'default', 'a', withStatus).entry;
  t.equal((main.obj['status'] as { phase: string }).phase, 'Pending', 'main endpoint ignores status');
  t.equal(main.obj.metadata.resourceVersion, a.obj.metadata.resourceVersion, 'so nothing changed');
  const st = structuredClone(main.obj);
  st['status'] = { phase: 'Running', podIP: '10.0.0.5' };
  (st['spec'] as Record<string, unknown>)['nodeName'] = 'sneaky';
  const s1 = c.registry.update(pods, 'default', 'a', st, { subresource: 'status' }).entry;
  t.match(s1.obj['status'], { phase: 'Running', podIP: '10.0.0.5' });
  t.equal((s1.obj['spec'] as Record<string, unknown>)['nodeName'], undefined, '/status ignores spec');
  t.equal(s1.obj.metadata.generation, 1, 'status writes do not bump generation');
  const patched = c.registry.patch(
    pods,
    'default',
    'a',
    'merge',
    { status: { phase: 'Succeeded' } },
    { subresource: 'status' },
  );
  t.equal((patched.obj['status'] as { phase: string }).phase, 'Succeeded');
});

t.test(
  'patches: JSON patch, merge patch, SMP; 415 for SMP on custom resources; 409 only with a stale RV',
  async (t) => {
    const c = await testCore(t);
    const pods = c.type('', 'pods');
    c.registry.create(pods, 'default', podBody('a'));
    const j = c.registry.patch(pods, 'default', 'a', 'json', [{ op: 'add', path: '/metadata/labels/x', value: '1' }]);
    t.same(j.obj.metadata.labels, { app: 'web', x: '1' });
    const m = c.registry.patch(pods, 'default', 'a', 'merge', { metadata: { labels: { x: null } } });
    t.same(m.obj.metadata.labels, { app: 'web' });
    const s = c.registry.patch(pods, 'default', 'a', 'strategic', {
      spec: { containers: [{ name: 'c', image: 'nginx:2' }] },
    });
    t.match(s.obj['spec'], { containers: [{ name: 'c', image: 'nginx:2', imagePullPolicy: 'IfNotPresent' }] });
    expectApiError(
      t,
      () => c.registry.patch(pods, 'default', 'a', 'merge', { metadata: { resourceVersion: '1' } }),
      409,
      'Conflict',
    );
    expectApiError(
      t,
      () => c.registry.patch(pods, 'default', 'a', 'json', [{ op: 'test', path: '/metadata/name', value: 'b' }]),
      422,
    );
    const tiers = c.type('crd.antrea.io', 'tiers');
    c.registry.create(tiers, undefined, { metadata: { name: 't1' }, spec: { priority: 5 } });
    expectApiError(
      t,
      () => c.registry.patch(tiers, undefined, 't1', 'strategic', { spec: { priority: 6 } }),
      415,
      'UnsupportedMediaType',
    );
    t.equal(c.registry.patch(tiers, undefined, 't1', 'merge', { spec: { priority: 6 } }).obj.metadata.generation, 2);
  },
);

t.test('namespaces: the metadata.name label, Terminating and cascading deletion', async (t) => {
  const c = await testCore(t);
  const nsT = c.type('', 'namespaces');
  const ns = c.registry.create(nsT, undefined, { metadata: { name: 'team', labels: { a: 'b' } } });
  t.same(ns.obj.metadata.labels, { a: 'b', 'kubernetes.io/metadata.name': 'team' });
  t.same(ns.obj['spec'], { finalizers: ['kubernetes'] });
  t.same(ns.obj['status'], { phase: 'Active' });
  const stripped = structuredClone(ns.obj);
  stripped.metadata.labels = {};
  t.same(
    c.registry.update(nsT, undefined, 'team', stripped).entry.obj.metadata.labels,
    { 'kubernetes.io/metadata.name': 'team' },
    'the label is put back',
  );
  await c.controllers.idle();
  t.ok(c.registry.find('/serviceaccounts', 'team/default'), 'a default ServiceAccount per namespace');
  c.registry.create(c.type('', 'configmaps'), 'team', { metadata: { name: 'cm' } });
  c.registry.create(c.type('', 'pods'), 'team', podBody('p'));
  const del = c.registry.delete(nsT, undefined, 'team');
  t.equal(del.deleted, false);
  t.equal((del.entry.obj['status'] as { phase: string }).phase, 'Terminating');
  expectApiError(
    t,
    () => c.registry.create(c.type('', 'configmaps'), 'team', { metadata: { name: 'late' } }),
    403,
    'Forbidden',
  );
  await c.controllers.idle();
  await settle();
  await c.controllers.idle();
  t.equal(c.registry.find('/namespaces', 'team'), undefined, 'namespace gone after its content');
  t.equal(c.registry.find('/configmaps', 'team/cm'), undefined);
  t.equal(c.registry.find('/pods', 'team/p'), undefined);
});

t.test('deletion with finalizers, graceful Pod deletion and the DELETED event', async (t) => {
  const c = await testCore(t);
  const pods = c.type('', 'pods');
  const sink = new MemorySink();
  await c.registry.watch(pods, 'default', { resourceVersion: String(c.store.rv) }, sink);
  c.registry.create(pods, 'default', { ...podBody('f'), metadata: { name: 'f', finalizers: ['example.com/x'] } });
  const d = c.registry.delete(pods, 'default', 'f');
  t.equal(d.deleted, false);
  t.ok(d.entry.obj.metadata.deletionTimestamp, 'deletionTimestamp set');
  t.equal(d.entry.obj.metadata.deletionGracePeriodSeconds, 0);
  const patched = c.registry.patch(pods, 'default', 'f', 'json', [{ op: 'remove', path: '/metadata/finalizers' }]);
  t.equal(c.registry.find('/pods', 'default/f'), undefined, 'removing the last finalizer removes the object');
  t.equal(patched.obj.metadata.finalizers, undefined);
  // Graceful deletion of a scheduled Pod.
  c.registry.create(pods, 'default', {
    ...podBody('g'),
    spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'x' }] },
  });
  const g = c.registry.delete(pods, 'default', 'g');
  t.equal(g.entry.obj.metadata.deletionGracePeriodSeconds, 30);
  t.equal(g.entry.obj.metadata.deletionTimestamp, '2026-01-01T12:00:30Z');
  await c.clock.advance(29_000);
  await c.controllers.idle();
  t.ok(c.registry.find('/pods', 'default/g'), 'still Terminating during the grace period');
  await c.clock.advance(1_000);
  await settle();
  await c.controllers.idle();
  t.equal(c.registry.find('/pods', 'default/g'), undefined, 'removed when the grace period ends');
  c.registry.create(pods, 'default', {
    ...podBody('h'),
    spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'x' }] },
  });
  t.equal(c.registry.delete(pods, 'default', 'h', { gracePeriodSeconds: 0 }).deleted, true, 'grace 0 deletes at once');
  c.registry.create(pods, 'default', podBody('u'));
  t.equal(c.registry.delete(pods, 'default', 'u').deleted, true, 'unscheduled Pods go at once');
  await settle();
  t.same(
    sink.summary.map((s) => s.replace(/@\d+$/, '')),
    [
      'ADDED f',
      'MODIFIED f',
      'DELETED f',
      'ADDED g',
      'MODIFIED g',
      'DELETED g',
      'ADDED h',
      'DELETED h',
      'ADDED u',
      'DELETED u',
    ],
  );
  const del = sink.events.find((e) => e.type === 'DELETED');
  t.equal(Number(del?.object.metadata?.['resourceVersion']) > Number(patched.obj.metadata.resourceVersion) - 1, true);
  expectApiError(t, () => c.registry.delete(pods, 'default', 'nope'), 404, 'NotFound');
  c.registry.create(pods, 'default', podBody('pre'));
  expectApiError(t, () => c.registry.delete(pods, 'default', 'pre', { preconditions: { uid: 'x' } }), 409, 'Conflict');
});

t.test('services: ClusterIP and NodePort allocation, defaults, immutable ClusterIP', async (t) => {
  const c = await testCore(t);
  const svc = c.type('', 'services');
  const k = c.registry.find('/services', 'default/kubernetes');
  t.equal((k?.obj['spec'] as { clusterIP: string }).clusterIP, '10.96.0.1', 'the kubernetes Service has the first IP');
  const a = c.registry.create(svc, 'default', {
    metadata: { name: 'a' },
    spec: { type: 'NodePort', selector: { app: 'web' }, ports: [{ port: 80 }] },
  });
  t.match(a.obj['spec'], {
    clusterIP: '10.96.0.2',
    clusterIPs: ['10.96.0.2'],
    type: 'NodePort',
    sessionAffinity: 'None',
    ipFamilies: ['IPv4'],
    ipFamilyPolicy: 'SingleStack',
    internalTrafficPolicy: 'Cluster',
    externalTrafficPolicy: 'Cluster',
    ports: [{ port: 80, protocol: 'TCP', targetPort: 80, nodePort: 30000 }],
  });
  const h = c.registry.create(svc, 'default', {
    metadata: { name: 'h' },
    spec: { clusterIP: 'None', ports: [{ port: 53 }] },
  });
  t.equal((h.obj['spec'] as { clusterIP: string }).clusterIP, 'None', 'headless');
  expectApiError(
    t,
    () =>
      c.registry.create(svc, 'default', {
        metadata: { name: 'dup' },
        spec: { clusterIP: '10.96.0.2', ports: [{ port: 80 }] },
      }),
    422,
  );
  const changed = structuredClone(a.obj);
  (changed['spec'] as Record<string, unknown>)['clusterIP'] = '10.96.0.9';
  (changed['spec'] as Record<string, unknown>)['clusterIPs'] = ['10.96.0.9'];
  expectApiError(t, () => c.registry.update(svc, 'default', 'a', changed), 422, 'Invalid', 'ClusterIP is immutable');
  const replaced = c.registry.update(svc, 'default', 'a', {
    metadata: { name: 'a' },
    spec: { type: 'NodePort', ports: [{ port: 80 }] },
  }).entry;
  t.match(
    replaced.obj['spec'],
    { clusterIP: '10.96.0.2', ports: [{ nodePort: 30000 }] },
    'omitted allocated values are kept',
  );
  c.registry.delete(svc, 'default', 'a');
  const b = c.registry.create(svc, 'default', {
    metadata: { name: 'b' },
    spec: { type: 'NodePort', ports: [{ port: 80 }] },
  });
  t.match(b.obj['spec'], { clusterIP: '10.96.0.2', ports: [{ nodePort: 30000 }] }, 'released on delete');
});

t.test('list: selectors, field selectors per kind, limit/continue from one snapshot', async (t) => {
  const c = await testCore(t);
  const pods = c.type('', 'pods');
  for (let i = 0; i < 5; i++) {
    c.registry.create(pods, 'default', {
      metadata: { name: `p${i}`, labels: { idx: String(i), even: String(i % 2 === 0) } },
      spec: { nodeName: i < 2 ? 'n1' : 'n2', containers: [{ name: 'c', image: 'x' }] },
    });
  }
  const names = (items: readonly { obj: KObject }[]): string[] => items.map((e) => e.obj.metadata.name ?? '');
  t.same(names((await c.registry.list(pods, 'default', { labelSelector: 'even=true' })).items), ['p0', 'p2', 'p4']);
  t.same(names((await c.registry.list(pods, 'default', { labelSelector: 'idx in (1,3),even' })).items), ['p1', 'p3']);
  t.same(names((await c.registry.list(pods, undefined, { fieldSelector: 'spec.nodeName=n1' })).items), ['p0', 'p1']);
  t.same(
    names((await c.registry.list(pods, undefined, { fieldSelector: 'spec.nodeName!=n1,metadata.name!=p4' })).items),
    ['p2', 'p3'],
  );
  await expectApiErrorAsync(t, c.registry.list(pods, undefined, { fieldSelector: 'spec.foo=x' }), 400, 'BadRequest');
  const p1 = await c.registry.list(pods, 'default', { limit: 2 });
  t.same(names(p1.items), ['p0', 'p1']);
  t.equal(p1.remainingItemCount, 3);
  t.ok(p1.continue);
  c.registry.delete(pods, 'default', 'p3');
  const p2 = await c.registry.list(pods, 'default', { limit: 2, continue: p1.continue ?? '' });
  t.same(names(p2.items), ['p2', 'p3'], 'the next page comes from the same snapshot');
  t.equal(p2.resourceVersion, p1.resourceVersion);
  const p3 = await c.registry.list(pods, 'default', { limit: 2, continue: p2.continue ?? '' });
  t.same(names(p3.items), ['p4']);
  t.equal(p3.continue, undefined);
  await c.clock.advance(301_000);
  await expectApiErrorAsync(
    t,
    c.registry.list(pods, 'default', { limit: 2, continue: p1.continue ?? '' }),
    410,
    'Expired',
  );
  await expectApiErrorAsync(t, c.registry.list(pods, 'default', { continue: 'garbage' }), 400);
  await expectApiErrorAsync(
    t,
    c.registry.list(pods, 'default', { resourceVersion: '1', resourceVersionMatch: 'Exact' }),
    410,
  );
});

t.test('custom resources: pruning, defaults, schema validation, 422 without resourceVersion', async (t) => {
  const c = await testCore(t);
  const tiers = c.type('crd.antrea.io', 'tiers');
  const warnings: string[] = [];
  const tier = c.registry.create(
    tiers,
    undefined,
    { metadata: { name: 't', extra: 1 }, spec: { priority: 10, bogus: true } },
    { warnings },
  );
  t.same(tier.obj['spec'], { priority: 10 }, 'unknown fields pruned');
  t.same(warnings, ['unknown field "spec.bogus"']);
  expectApiError(
    t,
    () =>
      c.registry.create(
        tiers,
        undefined,
        { metadata: { name: 's' }, spec: { priority: 1, bogus: 1 } },
        { fieldValidation: 'Strict' },
      ),
    400,
    'BadRequest',
  );
  const bad = expectApiError(
    t,
    () => c.registry.create(tiers, undefined, { metadata: { name: 'b' }, spec: { priority: 300 } }),
    422,
  );
  t.equal(
    bad?.message,
    'Tier.crd.antrea.io "b" is invalid: spec.priority: Invalid value: 300: spec.priority in body should be less than or equal to 255',
  );
  const acnp = c.type('crd.antrea.io', 'clusternetworkpolicies');
  const e = expectApiError(
    t,
    () =>
      c.registry.create(acnp, undefined, {
        metadata: { name: 'p' },
        spec: { priority: 5, ingress: [{ action: 'Permit', from: [{ ipBlock: { cidr: '10.0.0.0/33' } }] }] },
      }),
    422,
  );
  t.same(
    e?.statusDetails?.causes?.map((x) => x.field),
    ['spec.ingress[0].action', 'spec.ingress[0].from[0].ipBlock.cidr'],
  );
  expectApiError(
    t,
    () => c.registry.update(tiers, undefined, 't', { metadata: { name: 't' }, spec: { priority: 11 } }),
    422,
    'Invalid',
  );
  const withStatus = c.registry.create(acnp, undefined, {
    metadata: { name: 'ok' },
    spec: { priority: 5 },
    status: { phase: 'Realized' },
  });
  t.equal(withStatus.obj['status'], undefined, 'status dropped on create when it is a subresource');
});

t.test('CRDs created through the API become served; deleting one removes its resources first', async (t) => {
  const c = await testCore(t);
  const crdT = c.type('apiextensions.k8s.io', 'customresourcedefinitions');
  c.registry.create(crdT, undefined, {
    metadata: { name: 'widgets.example.com' },
    spec: {
      group: 'example.com',
      scope: 'Namespaced',
      names: { plural: 'widgets', kind: 'Widget', shortNames: ['wd'] },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: { spec: { type: 'object', properties: { size: { type: 'integer', default: 3 } } } },
            },
          },
          subresources: { status: {} },
        },
      ],
    },
  });
  const w = c.type('example.com', 'widgets');
  t.equal(w.kind, 'Widget');
  t.same(w.shortNames, ['wd']);
  const obj = c.registry.create(w, 'default', { metadata: { name: 'w1' }, spec: {} });
  t.same(obj.obj['spec'], { size: 3 }, 'defaults from the schema');
  await c.controllers.idle();
  const crd = c.registry.find('apiextensions.k8s.io/customresourcedefinitions', 'widgets.example.com');
  t.match(crd?.obj['status'], {
    conditions: [
      { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts' },
      { type: 'Established', status: 'True', reason: 'InitialNamesAccepted' },
    ],
    acceptedNames: { plural: 'widgets', kind: 'Widget', singular: 'widget', listKind: 'WidgetList' },
    storedVersions: ['v1'],
  });
  expectApiError(
    t,
    () =>
      c.registry.create(crdT, undefined, {
        metadata: { name: 'x.example.com' },
        spec: { group: 'example.com', scope: 'Cluster', names: { plural: 'y', kind: 'Y' }, versions: [] },
      }),
    422,
  );
  c.registry.delete(crdT, undefined, 'widgets.example.com');
  await c.controllers.idle();
  await settle();
  await c.controllers.idle();
  t.equal(c.registry.find('example.com/widgets', 'default/w1'), undefined, 'custom resources deleted');
  t.equal(c.registry.find('apiextensions.k8s.io/customresourcedefinitions', 'widgets.example.com'), undefined);
  t.notOk(
    c.types.all().some((x) => x.group === 'example.com'),
    'no longer served',
  );
});

t.test('garbage collection deletes dependents of a deleted owner; Orphan keeps them', async (t) => {
  const c = await testCore(t);
  const svc = c.type('', 'services');
  const es = c.type('discovery.k8s.io', 'endpointslices');
  const owner = c.registry.create(svc, 'default', { metadata: { name: 'o' }, spec: { ports: [{ port: 80 }] } });
  const ref = { apiVersion: 'v1', kind: 'Service', name: 'o', uid: owner.obj.metadata.uid ?? '' };
  c.registry.create(es, 'default', {
    metadata: { name: 'o-1', ownerReferences: [ref] },
    addressType: 'IPv4',
    endpoints: [],
  });
  c.registry.delete(svc, 'default', 'o');
  await c.controllers.idle();
  t.equal(c.registry.find('discovery.k8s.io/endpointslices', 'default/o-1'), undefined);
  const owner2 = c.registry.create(svc, 'default', { metadata: { name: 'o2' }, spec: { ports: [{ port: 80 }] } });
  c.registry.create(es, 'default', {
    metadata: { name: 'o2-1', ownerReferences: [{ ...ref, name: 'o2', uid: owner2.obj.metadata.uid ?? '' }] },
    addressType: 'IPv4',
  });
  c.registry.delete(svc, 'default', 'o2', { propagationPolicy: 'Orphan' });
  await c.controllers.idle();
  const orphan = c.registry.find('discovery.k8s.io/endpointslices', 'default/o2-1');
  t.ok(orphan, 'orphaned dependent kept');
  t.equal(orphan?.obj.metadata.ownerReferences, undefined, 'and its owner reference removed');
});

t.test('pods/binding sets the node once', async (t) => {
  const c = await testCore(t);
  c.registry.create(c.type('', 'pods'), 'default', podBody('b'));
  c.registry.bindPod('default', 'b', 'node-1');
  t.equal((c.registry.find('/pods', 'default/b')?.obj['spec'] as { nodeName: string }).nodeName, 'node-1');
  expectApiError(t, () => c.registry.bindPod('default', 'b', 'node-2'), 409, 'Conflict');
});
