/**
 * The lab's EndpointSlice controller on the in-process API core: slices follow the selected Pods'
 * IPs and readiness (ready / serving / terminating), named target ports resolve per Pod, Services
 * without a selector keep their own slices, and slices go with their Service.
 */
import t from 'tap';
import { testCore } from '../helpers/apiserver.ts';
import type { KObject } from '../../src/lab/apiserver/types.ts';

type Core = Awaited<ReturnType<typeof testCore>>;

function slicesOf(core: Core, svc: string): KObject[] {
  return [...core.store.type('discovery.k8s.io/endpointslices').objects.values()]
    .map((e) => e.obj)
    .filter((o) => o.metadata.labels?.['kubernetes.io/service-name'] === svc);
}

function pod(
  name: string,
  ip: string | undefined,
  ready: boolean,
  labels = { app: 'web' },
  node = 'node-1',
): Record<string, unknown> {
  return {
    metadata: { name, labels },
    spec: { nodeName: node, containers: [{ name: 'c', image: 'x', ports: [{ name: 'http', containerPort: 8080 }] }] },
    status: {
      phase: 'Running',
      ...(ip === undefined ? {} : { podIP: ip, podIPs: [{ ip }] }),
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
    },
  };
}

t.test('slices follow Pods and their readiness', async (t) => {
  const core = await testCore(t);
  const pods = core.type('', 'pods');
  const svcs = core.type('', 'services');
  // Pods are created, then their status written through the status subresource (as a kubelet does).
  const put = (name: string, body: Record<string, unknown>): void => {
    if (core.registry.find('/pods', `default/${name}`) === undefined) core.registry.create(pods, 'default', body);
    const now = core.registry.find('/pods', `default/${name}`);
    core.registry.update(pods, 'default', name, { ...now?.obj, status: body['status'] }, { subresource: 'status' });
  };
  put('a', pod('a', '10.10.1.2', true));
  put('b', pod('b', '10.10.2.3', true, { app: 'web' }, 'node-2'));
  put('other', pod('other', '10.10.1.9', true, { app: 'db' }));
  put('pending', pod('pending', undefined, false));
  core.registry.create(svcs, 'default', {
    metadata: { name: 'web' },
    spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
  });
  await core.controllers.idle();
  let [s] = slicesOf(core, 'web');
  t.ok(s !== undefined, 'a slice for the Service');
  t.equal(s?.metadata.labels?.['endpointslice.kubernetes.io/managed-by'], 'endpointslice-controller.k8s.io');
  t.same(s?.['ports'], [{ name: 'http', protocol: 'TCP', port: 8080 }], 'named targetPort resolved');
  t.same(
    (s?.['endpoints'] as { addresses: string[]; nodeName: string; conditions: unknown }[]).map((e) => [
      e.addresses[0],
      e.nodeName,
      e.conditions,
    ]),
    [
      ['10.10.1.2', 'node-1', { ready: true, serving: true, terminating: false }],
      ['10.10.2.3', 'node-2', { ready: true, serving: true, terminating: false }],
    ],
    'the selected Pods with IPs, ready',
  );
  const rv = s?.metadata.resourceVersion;

  put('b', pod('b', '10.10.2.3', false, { app: 'web' }, 'node-2'));
  await core.controllers.idle();
  [s] = slicesOf(core, 'web');
  t.same(
    (s?.['endpoints'] as { conditions: { ready: boolean } }[]).map((e) => e.conditions.ready),
    [true, false],
    'b not ready any more',
  );
  t.not(s?.metadata.resourceVersion, rv);

  const again = s?.metadata.resourceVersion;
  put('other', pod('other', '10.10.1.9', true, { app: 'db' }));
  await core.controllers.idle();
  t.equal(slicesOf(core, 'web')[0]?.metadata.resourceVersion, again, 'no write when nothing changed');

  // A deleted Pod on a Node terminates first (grace period), then leaves the slice.
  core.registry.delete(pods, 'default', 'a');
  await core.controllers.idle();
  t.same(
    (slicesOf(core, 'web')[0]?.['endpoints'] as { conditions: unknown }[])[0]?.conditions,
    { ready: false, serving: true, terminating: true },
    'terminating: serving but not ready',
  );
  await core.clock.advance(31_000);
  await core.controllers.idle();
  t.same(
    (slicesOf(core, 'web')[0]?.['endpoints'] as { addresses: string[] }[]).map((e) => e.addresses[0]),
    ['10.10.2.3'],
    'gone once deleted',
  );

  core.registry.delete(svcs, 'default', 'web');
  await core.controllers.idle();
  t.same(slicesOf(core, 'web'), [], 'the slice goes with its Service');
});

t.test('a Service without a selector keeps its own slices', async (t) => {
  const core = await testCore(t);
  core.registry.create(core.type('', 'services'), 'default', {
    metadata: { name: 'manual' },
    spec: { ports: [{ port: 80 }] },
  });
  core.registry.create(core.type('discovery.k8s.io', 'endpointslices'), 'default', {
    metadata: { name: 'manual-1', labels: { 'kubernetes.io/service-name': 'manual' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['192.0.2.50'] }],
    ports: [{ port: 80 }],
  });
  await core.controllers.idle();
  t.equal(slicesOf(core, 'manual').length, 1, 'untouched');
});
