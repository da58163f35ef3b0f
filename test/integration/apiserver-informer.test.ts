/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- client-node model classes are plain data shapes; object literals are how its API is used. */
/**
 * @kubernetes/client-node informers (makeInformer / ListWatch, the real library) against the embedded
 * API server over HTTPS: they must see every change, in order, live and across a forced watch expiry
 * (410), a dropped connection, a client-side inactivity timeout and a server restart.
 */
import t, { type Test } from 'tap';
import { CoreV1Api, KubeConfig, ListWatch, makeInformer, Watch, type V1Pod } from '@kubernetes/client-node';
import { shortTempDir } from '../helpers/env.ts';
import { startApiServer, type ApiServer, type ApiServerOptions } from '../../src/lab/apiserver/server.ts';
import type { StoreEvent } from '../../src/lab/apiserver/store.ts';
import { typeOf } from '../../src/lab/apiserver/core.ts';
import { until } from '../helpers/wait.ts';

interface Seen {
  readonly type: string;
  readonly name: string;
  readonly rv: number;
}

const toVerb: Record<string, string> = { ADDED: 'add', MODIFIED: 'update', DELETED: 'delete' };

async function server(t: Test, o: ApiServerOptions = {}): Promise<ApiServer> {
  const s = await startApiServer(o);
  t.teardown(() => s.stop());
  return s;
}

/** What the server did to Pods of `ns`, as informer verbs. */
function truth(s: ApiServer, ns: string): Seen[] {
  const out: Seen[] = [];
  s.store.onChange((ev: StoreEvent) => {
    if (ev.storageKey === '/pods' && ev.obj.metadata.namespace === ns) {
      out.push({ type: toVerb[ev.type] ?? ev.type, name: ev.obj.metadata.name ?? '', rv: ev.rv });
    }
  });
  return out;
}

function record(inf: { on(verb: 'add' | 'update' | 'delete', fn: (o: V1Pod) => void): void }): Seen[] {
  const seen: Seen[] = [];
  for (const verb of ['add', 'update', 'delete'] as const) {
    inf.on(verb, (o) =>
      seen.push({ type: verb, name: o.metadata?.name ?? '', rv: Number(o.metadata?.resourceVersion) }),
    );
  }
  return seen;
}

function kubeConfig(s: ApiServer): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(s.kubeconfig());
  return kc;
}

const podSpec = (name: string, labels: Record<string, string> = { app: 'web' }): V1Pod => ({
  metadata: { name, labels },
  spec: { containers: [{ name: 'c', image: 'nginx:1.25' }] },
});

function pods(s: ApiServer) {
  return typeOf(s.types, '', 'pods');
}

t.test('an informer sees every change in order, live and across a forced watch expiry (410)', async (t) => {
  const s = await server(t);
  const kc = kubeConfig(s);
  const api = kc.makeApiClient(CoreV1Api);
  await api.createNamespace({ body: { metadata: { name: 'inf' } } });
  const expected = truth(s, 'inf');
  let lists = 0;
  const inf = makeInformer(kc, '/api/v1/namespaces/inf/pods', () => {
    lists++;
    return api.listNamespacedPod({ namespace: 'inf' });
  });
  const seen = record(inf);
  const errors: unknown[] = [];
  inf.on('error', (e) => errors.push(e));
  await inf.start();
  t.teardown(() => inf.stop());
  for (let i = 0; i < 8; i++) await api.createNamespacedPod({ namespace: 'inf', body: podSpec(`p${i}`) });
  for (let i = 0; i < 8; i += 2) {
    await api.patchNamespacedPod({
      namespace: 'inf',
      name: `p${i}`,
      body: [{ op: 'add', path: '/metadata/labels/gen', value: '2' }],
    });
  }
  await api.deleteNamespacedPod({ namespace: 'inf', name: 'p1' });
  await until('live events', () => seen.length === expected.length);
  t.same(seen, expected, 'every change, in order, with the server resourceVersions');

  // Force an expiry: end the watch and, before the client can resume, change things and compact
  // the history. Resuming from its old revision gets ERROR 410, so the informer relists.
  const reg = s.registry;
  s.closeWatches();
  reg.create(pods(s), 'inf', podSpec('late'));
  reg.patch(pods(s), 'inf', 'p2', 'merge', { metadata: { labels: { gen: '3' } } });
  reg.delete(pods(s), 'inf', 'p3');
  s.expireWatchHistory();
  const before = seen.length;
  await until('relist', () => lists === 2 && inf.list('inf').length === 7 && seen.length >= before + 3);
  const after = seen.slice(before);
  t.same(
    after.map((e) => `${e.type} ${e.name}`).sort(),
    ['add late', 'delete p3', 'update p2'],
    'the relist reports exactly what changed while the watch was gone',
  );
  const names = inf
    .list('inf')
    .map((p) => p.metadata?.name)
    .sort();
  const live = (await reg.list(pods(s), 'inf', {})).items.map((e) => e.obj.metadata.name).sort();
  t.same(names, live, 'cache equals the server');
  for (const p of inf.list('inf')) {
    t.equal(p.metadata?.resourceVersion, reg.get(pods(s), 'inf', p.metadata?.name ?? '').obj.metadata.resourceVersion);
  }
  reg.create(pods(s), 'inf', podSpec('after'));
  await until('events after the relist', () => seen.at(-1)?.name === 'after');
  t.same(errors, [], 'no errors surfaced');
});

t.test('a dropped connection: the application restarts the informer and it resumes without a gap', async (t) => {
  const s = await server(t);
  const kc = kubeConfig(s);
  const api = kc.makeApiClient(CoreV1Api);
  await api.createNamespace({ body: { metadata: { name: 'drop' } } });
  const expected = truth(s, 'drop');
  let lists = 0;
  const inf = makeInformer(kc, '/api/v1/namespaces/drop/pods', () => {
    lists++;
    return api.listNamespacedPod({ namespace: 'drop' });
  });
  const seen = record(inf);
  let errors = 0;
  let stopped = false;
  inf.on('error', () => {
    errors++;
    if (!stopped) setTimeout(() => void (stopped ? undefined : inf.start()), 50);
  });
  await inf.start();
  t.teardown(() => {
    stopped = true;
    return inf.stop();
  });
  for (let i = 0; i < 3; i++) await api.createNamespacedPod({ namespace: 'drop', body: podSpec(`p${i}`) });
  await until('first events', () => seen.length === 3);
  s.dropConnections();
  const reg = s.registry;
  for (let i = 3; i < 6; i++) reg.create(pods(s), 'drop', podSpec(`p${i}`));
  reg.patch(pods(s), 'drop', 'p0', 'merge', { metadata: { labels: { x: 'y' } } });
  reg.delete(pods(s), 'drop', 'p1');
  await until('resumed events', () => seen.length === expected.length);
  t.ok(errors >= 1, 'client-node surfaced the reset as an error');
  t.equal(lists, 1, 'it resumed from its resourceVersion instead of relisting');
  t.same(seen, expected, 'every change, in order');
});

t.test(
  'a label-selected informer sees objects enter and leave its selector; inactivity reconnects keep the revision',
  async (t) => {
    const s = await server(t);
    const kc = kubeConfig(s);
    const api = kc.makeApiClient(CoreV1Api);
    let lists = 0;
    const watch = new Watch(kc);
    // client-node 2.x aborts a watch after 30 s without data; shorten it (a private field) to see it happen.
    (watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs = 500;
    const inf = new ListWatch<V1Pod>(
      '/api/v1/namespaces/default/pods',
      watch,
      () => {
        lists++;
        return api.listNamespacedPod({ namespace: 'default', labelSelector: 'app=web' });
      },
      false,
      'app=web',
    );
    const seen = record(inf);
    const errors: unknown[] = [];
    inf.on('error', (e) => errors.push(e));
    await inf.start();
    t.teardown(() => inf.stop());
    const reg = s.registry;
    reg.create(pods(s), 'default', podSpec('a'));
    reg.create(pods(s), 'default', podSpec('b', { app: 'db' }));
    await until('a', () => seen.length === 1);
    // No events for a while: client-node aborts its watch after requestTimeoutMs and resumes from the
    // same revision, which a quiet resource type must still accept.
    await new Promise((r) => setTimeout(r, 1_600));
    reg.patch(pods(s), 'default', 'a', 'merge', { metadata: { labels: { app: 'other' } } });
    reg.patch(pods(s), 'default', 'b', 'merge', { metadata: { labels: { app: 'web' } } });
    await until('transitions', () => seen.length === 3);
    t.same(
      seen.map((e) => `${e.type} ${e.name}`),
      ['add a', 'delete a', 'add b'],
    );
    t.equal(lists, 1, 'no relist');
    t.same(errors, []);
  },
);

t.test(
  'a server restart with --data-dir: objects survive, revisions keep increasing, the informer resumes',
  async (t) => {
    const dataDir = shortTempDir(t, 'apisrv');
    const s1 = await startApiServer({ dataDir });
    const port = s1.port;
    const kcText = s1.kubeconfig();
    const kc = new KubeConfig();
    kc.loadFromString(kcText);
    const api = kc.makeApiClient(CoreV1Api);
    await api.createNamespace({ body: { metadata: { name: 'rs' } } });
    let lists = 0;
    const inf = makeInformer(kc, '/api/v1/namespaces/rs/pods', () => {
      lists++;
      return api.listNamespacedPod({ namespace: 'rs' });
    });
    const seen = record(inf);
    let stopped = false;
    inf.on('error', () => {
      if (!stopped) setTimeout(() => void inf.start(), 100);
    });
    await inf.start();
    t.teardown(() => {
      stopped = true;
      return inf.stop();
    });
    for (let i = 0; i < 3; i++) await api.createNamespacedPod({ namespace: 'rs', body: podSpec(`p${i}`) });
    await until('before restart', () => seen.length === 3);
    const rvBefore = s1.store.rv;
    const uid = s1.registry.get(pods(s1), 'rs', 'p0').obj.metadata.uid;
    await s1.stop();
    const s2 = await startApiServer({ dataDir, port });
    t.teardown(() => s2.stop());
    t.equal(s2.kubeconfig(), kcText, 'same CA, address and admin token: the kubeconfig stays valid');
    t.equal(s2.registry.get(pods(s2), 'rs', 'p0').obj.metadata.uid, uid, 'objects survived');
    const expected = truth(s2, 'rs');
    s2.registry.create(pods(s2), 'rs', podSpec('p3'));
    s2.registry.delete(pods(s2), 'rs', 'p1');
    await until('after restart', () => seen.length === 5);
    t.same(seen.slice(3), expected, 'the informer resumed and saw every change in order');
    t.ok(
      expected.every((e) => e.rv > rvBefore),
      'resourceVersions keep increasing across the restart',
    );
    t.equal(lists, 1, 'no relist was needed');
    const ns = await api.readNamespace({ name: 'rs' });
    t.equal(ns.metadata?.labels?.['kubernetes.io/metadata.name'], 'rs');
  },
);
