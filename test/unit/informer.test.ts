/**
 * The informer against a local list/watch server (fixtures/fake-kube-api.ts) through the real
 * @kubernetes/client-node transport: lists in pages, watches, reconnects after resets and clean
 * ends, relists on 410 (both forms), retries errors with backoff, trims objects, and stops cleanly.
 * (The end-to-end test against the lab's embedded API server is to be added when it is merged.)
 */
import t, { type Test } from 'tap';
import { ResourcePaths, kubeListWatch } from '../../src/common/k8s/client.ts';
import { Informer, type InformerEventType } from '../../src/common/k8s/informer.ts';
import { type Pod, trimPod } from '../../src/common/k8s/objects.ts';
import { Backoff } from '../../src/common/util/backoff.ts';
import { memoryLogger } from '../../src/common/util/log.ts';
import { NetworkPolicyController } from '../../src/controller/networkpolicy/controller.ts';
import { createControllerInformers } from '../../src/controller/networkpolicy/informers.ts';
import { FakeKubeApi } from './fixtures/fake-kube-api.ts';
import { np, ns, pod } from './fixtures/k8s.ts';

const PODS = ResourcePaths.pods;

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function setup(t: Test): Promise<{
  api: FakeKubeApi;
  informer: Informer<Pod>;
  events: string[];
  stop: () => Promise<void>;
}> {
  const api = new FakeKubeApi();
  const url = await api.start();
  const kc = api.kubeConfig(url);
  const informer = new Informer<Pod>({
    resource: 'pods',
    client: kubeListWatch(kc, PODS),
    transform: (o) => trimPod(o),
    logger: memoryLogger('warn'),
    backoff: new Backoff({ initialMs: 10, maxMs: 50, jitter: 0 }),
    pageSize: 2,
  });
  const events: string[] = [];
  informer.onEvent((type: InformerEventType, obj, old) =>
    events.push(
      `${type} ${obj.metadata?.name ?? ''} ${obj.metadata?.labels?.['v'] ?? ''}${old === undefined ? '' : ' (was ' + (old.metadata?.labels?.['v'] ?? '') + ')'}`,
    ),
  );
  const ac = new AbortController();
  const running = informer.run(ac.signal);
  const stop = async (): Promise<void> => {
    ac.abort();
    await running;
    await api.stop();
  };
  t.teardown(stop);
  return { api, informer, events, stop };
}

t.test('lists in pages, then watches every change in order', async (t) => {
  const { api, informer, events } = await setup(t);
  t.notOk(informer.synced);
  await informer.waitSynced();
  t.same(events, [], 'nothing listed yet');
  api.upsert(PODS, pod('a', 'p1', { v: '1' }, { node: 'n1', ip: '10.0.0.1' }));
  api.upsert(PODS, pod('a', 'p2', { v: '1' }));
  api.upsert(PODS, pod('a', 'p1', { v: '2' }, { node: 'n1', ip: '10.0.0.1' }));
  api.remove(PODS, 'a', 'p2');
  await until('4 events', () => events.length === 4);
  t.same(events, ['ADDED p1 1', 'ADDED p2 1', 'MODIFIED p1 2 (was 1)', 'DELETED p2 1 (was 1)']);
  t.same(
    [...informer.list()].map((p) => p.metadata?.name),
    ['p1'],
  );
});

t.test('the initial list is paged and complete before synced', async (t) => {
  const api = new FakeKubeApi();
  const url = await api.start();
  t.teardown(() => api.stop());
  for (let i = 0; i < 5; i++) api.upsert(PODS, pod('a', `p${i}`, { v: '1' }));
  const informer = new Informer<Pod>({
    resource: 'pods',
    client: kubeListWatch(api.kubeConfig(url), PODS),
    pageSize: 2,
  });
  const seen: string[] = [];
  informer.onEvent((type, obj) => seen.push(`${type} ${obj.metadata?.name ?? ''}`));
  const ac = new AbortController();
  const running = informer.run(ac.signal);
  await informer.waitSynced();
  t.same(seen, ['ADDED p0', 'ADDED p1', 'ADDED p2', 'ADDED p3', 'ADDED p4']);
  t.same(
    api.requests.filter((r) => !r.includes('watch')),
    ['GET /api/v1/pods?limit=2', 'GET /api/v1/pods?limit=2&continue=2', 'GET /api/v1/pods?limit=2&continue=4'],
  );
  ac.abort();
  await running;
});

t.test('reconnects after an abrupt reset and after a clean end, without losing or repeating events', async (t) => {
  const { api, informer, events } = await setup(t);
  await informer.waitSynced();
  await until('watch', () => api.watchCount === 1);
  api.upsert(PODS, pod('a', 'p1', { v: '1' }));
  await until('1 event', () => events.length === 1);
  api.dropWatches();
  api.upsert(PODS, pod('a', 'p1', { v: '2' }));
  await until('the update made while disconnected', () => events.length === 2);
  api.closeWatches();
  api.upsert(PODS, pod('a', 'p2', { v: '1' }));
  await until('3 events', () => events.length === 3);
  t.same(events, ['ADDED p1 1', 'MODIFIED p1 2 (was 1)', 'ADDED p2 1']);
  t.equal(informer.lists, 1, 'no relist needed');
  t.ok(informer.watches >= 3);
});

for (const goneAs of ['event', 'http'] as const) {
  t.test(
    `relists on 410 Gone (${goneAs === 'event' ? 'ERROR event' : 'HTTP 410'}) and reports what it missed`,
    async (t) => {
      const { api, informer, events } = await setup(t);
      api.goneAs = goneAs;
      api.upsert(PODS, pod('a', 'keep', { v: '1' }));
      api.upsert(PODS, pod('a', 'change', { v: '1' }));
      api.upsert(PODS, pod('a', 'gone', { v: '1' }));
      await until('3 events', () => events.length === 3);
      api.dropWatches();
      api.upsert(PODS, pod('a', 'change', { v: '2' }));
      api.remove(PODS, 'a', 'gone');
      api.upsert(PODS, pod('a', 'new', { v: '1' }));
      api.compact();
      await until('relist', () => informer.lists === 2);
      await until('3 more events', () => events.length === 6);
      t.same(events.slice(3).sort(), ['ADDED new 1', 'DELETED gone 1 (was 1)', 'MODIFIED change 2 (was 1)'].sort());
      api.upsert(PODS, pod('a', 'after', { v: '1' }));
      await until('watching again', () => events.length === 7);
    },
  );
}

/** Lists one Pod through a server that misbehaves first; returns the retry warnings logged. */
async function listThroughFault(t: Test, fault: (api: FakeKubeApi) => void): Promise<Record<string, unknown>[]> {
  const api = new FakeKubeApi();
  const url = await api.start();
  t.teardown(() => api.stop());
  api.upsert(PODS, pod('a', 'p1'));
  fault(api);
  const log = memoryLogger('warn');
  const informer = new Informer<Pod>({
    resource: 'pods',
    client: kubeListWatch(api.kubeConfig(url), PODS, 100),
    logger: log,
    backoff: new Backoff({ initialMs: 5, maxMs: 20, jitter: 0 }),
  });
  const ac = new AbortController();
  const running = informer.run(ac.signal);
  await informer.waitSynced();
  t.equal(informer.size, 1);
  ac.abort();
  await running;
  return log.lines.filter((l) => l['msg'] === 'list/watch failed, retrying');
}

t.test('retries failed requests with backoff until the list succeeds', async (t) => {
  const warnings = await listThroughFault(t, (api) => api.failNext(3));
  t.equal(warnings.length, 3);
  t.match(warnings[0], { err: /HTTP 500/ });
});

t.test('a list that never answers times out and is retried', async (t) => {
  const warnings = await listThroughFault(t, (api) => api.hangNext(1));
  t.match(warnings, [{ err: /no answer within 100 ms/ }]);
  t.equal(warnings.length, 1);
});

t.test('transform trims objects before they are cached', async (t) => {
  const { api, informer } = await setup(t);
  const fat: Pod & { spec: { volumes: unknown[] } } = {
    ...pod(
      'a',
      'p1',
      { v: '1' },
      {
        node: 'n1',
        ip: '10.0.0.1',
        ports: [
          { name: 'http', containerPort: 80 },
          { name: '', containerPort: 81 },
        ],
      },
    ),
    spec: {
      nodeName: 'n1',
      volumes: [{ name: 'big' }],
      containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 80 }, { containerPort: 81 }] }],
    },
  };
  api.upsert(PODS, { ...fat, metadata: { ...fat.metadata, annotations: { huge: 'x'.repeat(1000) } } });
  await until('cached', () => informer.size === 1);
  const cached = informer.get('a/p1');
  t.same(cached?.spec, { nodeName: 'n1', containers: [{ ports: [{ name: 'http', containerPort: 80 }] }] });
  t.equal(cached?.metadata?.annotations, undefined);
  t.equal(cached?.status?.podIP, '10.0.0.1');
});

t.test('stops when aborted and leaves no connection behind', async (t) => {
  const { api, informer, stop } = await setup(t);
  await informer.waitSynced();
  await until('watch', () => api.watchCount === 1);
  const ac = new AbortController();
  ac.abort();
  await t.rejects(
    new Informer<Pod>({ resource: 'x', client: kubeListWatch(api.kubeConfig('http://127.0.0.1:1'), PODS) }).waitSynced(
      ac.signal,
    ),
  );
  await stop();
  await until('sockets closed', () => api.openConnections === 0);
  t.pass('no open connections');
});

t.test('the controller computes from informers and publishes after they synced', async (t) => {
  const api = new FakeKubeApi();
  const url = await api.start();
  t.teardown(() => api.stop());
  api.upsert(ResourcePaths.namespaces, ns('ns1'));
  api.upsert(PODS, pod('ns1', 'db1', { app: 'db' }, { node: 'n1', ip: '10.0.0.1' }));
  api.upsert(
    ResourcePaths.networkPolicies,
    np('ns1', 'p', { podSelector: { matchLabels: { app: 'db' } }, policyTypes: ['Ingress'] }),
  );
  const c = new NetworkPolicyController({ logger: memoryLogger('warn') });
  const informers = createControllerInformers(c, {
    kubeConfig: api.kubeConfig(url),
    logger: memoryLogger('warn'),
    informerOptions: { backoff: new Backoff({ initialMs: 10, maxMs: 50 }) },
  });
  const ac = new AbortController();
  const running = c.run(ac.signal, informers.all);
  await c.networkPolicies.waitReady();
  t.same([...(c.networkPolicies.get('uid-np-ns1-p')?.span ?? [])], ['n1']);
  api.upsert(PODS, pod('ns1', 'db2', { app: 'db' }, { node: 'n2', ip: '10.0.0.2' }));
  await until('span grows', () => c.networkPolicies.get('uid-np-ns1-p')?.span.size === 2);
  api.remove(ResourcePaths.networkPolicies, 'ns1', 'p');
  await until('policy deleted', () => c.networkPolicies.size === 0);
  ac.abort();
  await running;
  t.equal(informers.pods.size, 2);
});
