import t from 'tap';
import { MemorySink, settle, testCore } from '../helpers/apiserver.ts';

const pod = (name: string, labels: Record<string, string>, nodeName?: string): Record<string, unknown> => ({
  metadata: { name, labels },
  spec: { containers: [{ name: 'c', image: 'x' }], ...(nodeName === undefined ? {} : { nodeName }) },
});

t.test('initial events for resourceVersion unset or 0, then changes in order', async (t) => {
  const c = await testCore(t);
  const pods = c.type('', 'pods');
  c.registry.create(pods, 'default', pod('a', {}));
  c.registry.create(pods, 'default', pod('b', {}));
  const unset = new MemorySink();
  const zero = new MemorySink();
  await c.registry.watch(pods, 'default', {}, unset);
  await c.registry.watch(pods, 'default', { resourceVersion: '0' }, zero);
  c.registry.create(pods, 'default', pod('c', {}));
  await settle();
  t.same(
    unset.summary.map((s) => s.split('@')[0]),
    ['ADDED a', 'ADDED b', 'ADDED c'],
  );
  t.same(zero.summary, unset.summary);
  const rvs = unset.events.map((e) => Number(e.object.metadata?.['resourceVersion']));
  t.same(
    rvs,
    [...rvs].sort((x, y) => x - y),
    'in resourceVersion order',
  );
  t.ok(
    unset.events.every((e) => e.object['apiVersion'] === 'v1' && e.object['kind'] === 'Pod'),
    'events carry apiVersion and kind',
  );
});

t.test('selector transitions: entering is ADDED, leaving is DELETED with the old content and the new RV', async (t) => {
  const c = await testCore(t);
  const pods = c.type('', 'pods');
  const labelSink = new MemorySink();
  const fieldSink = new MemorySink();
  await c.registry.watch(pods, undefined, { resourceVersion: String(c.store.rv), labelSelector: 'role=db' }, labelSink);
  await c.registry.watch(
    pods,
    undefined,
    { resourceVersion: String(c.store.rv), fieldSelector: 'spec.nodeName=n1' },
    fieldSink,
  );
  c.registry.create(pods, 'default', pod('p', { role: 'web' }));
  c.registry.patch(pods, 'default', 'p', 'merge', { metadata: { labels: { role: 'db' } } });
  c.registry.patch(pods, 'default', 'p', 'merge', { metadata: { labels: { extra: 'x' } } });
  const left = c.registry.patch(pods, 'default', 'p', 'merge', { metadata: { labels: { role: 'web' } } });
  c.registry.bindPod('default', 'p', 'n1');
  c.registry.delete(pods, 'default', 'p', { gracePeriodSeconds: 0 });
  await settle();
  t.same(
    labelSink.summary.map((s) => s.split('@')[0]),
    ['ADDED p', 'MODIFIED p', 'DELETED p'],
  );
  const exit = labelSink.events[2];
  t.same(exit?.object.metadata?.['labels'], { role: 'db', extra: 'x' }, 'DELETED carries the last matching content');
  t.equal(
    exit?.object.metadata?.['resourceVersion'],
    left.obj.metadata.resourceVersion,
    '... with the revision of the change',
  );
  t.same(
    fieldSink.summary.map((s) => s.split('@')[0]),
    ['ADDED p', 'DELETED p'],
    'spec.nodeName field selector',
  );
});

t.test(
  'resuming from a revision replays exactly the later events; a too-old revision gets ERROR 410 and an end',
  async (t) => {
    const c = await testCore(t, { watchHistorySize: 5 });
    const cms = c.type('', 'configmaps');
    const start = c.store.rv;
    for (let i = 0; i < 3; i++) c.registry.create(cms, 'default', { metadata: { name: `c${i}` } });
    const mid = c.store.rv - 1;
    const resumed = new MemorySink();
    await c.registry.watch(cms, 'default', { resourceVersion: String(mid) }, resumed);
    await settle();
    t.same(
      resumed.summary.map((s) => s.split('@')[0]),
      ['ADDED c2'],
      'only events after the revision',
    );
    const quiet = new MemorySink();
    await c.registry.watch(c.type('', 'secrets'), 'default', { resourceVersion: String(start) }, quiet);
    t.notOk(quiet.ended, 'an old revision of a quiet type is still valid');
    for (let i = 3; i < 10; i++) c.registry.create(cms, 'default', { metadata: { name: `c${i}` } });
    const old = new MemorySink();
    await c.registry.watch(cms, 'default', { resourceVersion: String(start) }, old);
    await settle();
    t.equal(old.events.length, 1);
    t.equal(old.events[0]?.type, 'ERROR');
    t.match(old.events[0]?.object, {
      kind: 'Status',
      code: 410,
      reason: 'Expired',
      message: /^too old resource version: \d+ \(\d+\)$/,
    });
    t.ok(old.ended, 'the stream ends after the ERROR');
    c.store.type('/secrets');
    c.registry.create(c.type('', 'secrets'), 'default', { metadata: { name: 's' } });
    for (const ts of c.store.allTypes()) ts.expireHistory(c.store.rv);
    const afterCompaction = new MemorySink();
    await c.registry.watch(c.type('', 'secrets'), 'default', { resourceVersion: String(start) }, afterCompaction);
    await settle();
    t.equal(afterCompaction.events[0]?.object['code'], 410, 'compaction expires older revisions');
  },
);

t.test(
  'bookmarks only when asked, timeoutSeconds ends cleanly, sendInitialEvents ends with an annotated bookmark',
  async (t) => {
    const c = await testCore(t, { bookmarkIntervalSeconds: 60 });
    const ns = c.type('', 'namespaces');
    const plain = new MemorySink();
    const withBookmarks = new MemorySink();
    await c.registry.watch(ns, undefined, { resourceVersion: String(c.store.rv), timeoutSeconds: 90 }, plain);
    await c.registry.watch(
      ns,
      undefined,
      { resourceVersion: String(c.store.rv), allowWatchBookmarks: true, timeoutSeconds: 90 },
      withBookmarks,
    );
    await c.clock.advance(60_000);
    await settle();
    t.same(plain.events, []);
    t.equal(withBookmarks.events.length, 1);
    t.same(withBookmarks.events[0], {
      type: 'BOOKMARK',
      object: { kind: 'Namespace', apiVersion: 'v1', metadata: { resourceVersion: String(c.store.rv) } },
    });
    t.notOk(plain.ended);
    await c.clock.advance(30_000);
    await settle();
    t.ok(plain.ended && withBookmarks.ended, 'timeoutSeconds ends the streams');
    t.same(plain.events, [], 'without an error event');
    const list = new MemorySink();
    await c.registry.watch(
      ns,
      undefined,
      { sendInitialEvents: true, allowWatchBookmarks: true, resourceVersionMatch: 'NotOlderThan' },
      list,
    );
    await settle();
    const last = list.events.at(-1);
    t.equal(list.events.filter((e) => e.type === 'ADDED').length, 4, 'the four bootstrap namespaces');
    t.equal(last?.type, 'BOOKMARK');
    t.same(last?.object.metadata?.['annotations'], { 'k8s.io/initial-events-end': 'true' });
  },
);

t.test('a watcher that does not keep up is cut off without holding back the others', async (t) => {
  const c = await testCore(t, { maxWatchBufferBytes: 20_000 });
  const cms = c.type('', 'configmaps');
  const slow = new MemorySink();
  const fast = new MemorySink();
  slow.blocked = true;
  const ws = await c.registry.watch(cms, undefined, { resourceVersion: String(c.store.rv) }, slow);
  await c.registry.watch(cms, undefined, { resourceVersion: String(c.store.rv) }, fast);
  for (let i = 0; i < 100; i++) {
    c.registry.create(cms, 'default', { metadata: { name: `c${i}` }, data: { v: 'x'.repeat(500) } });
    await settle(1);
  }
  await settle();
  t.ok(ws.isClosed, 'the slow watcher was terminated');
  t.ok(slow.ended, 'with a clean end of stream');
  t.equal(fast.events.length, 100, 'the fast watcher got every event');
  t.equal(c.store.type('/configmaps').watchers.size, 1);
});

t.test('a DELETED event for an object the watch never matched is not sent; namespaces filter watches', async (t) => {
  const c = await testCore(t);
  const cms = c.type('', 'configmaps');
  c.registry.create(c.type('', 'namespaces'), undefined, { metadata: { name: 'other' } });
  const sink = new MemorySink();
  await c.registry.watch(cms, 'default', { resourceVersion: String(c.store.rv) }, sink);
  c.registry.create(cms, 'other', { metadata: { name: 'x' } });
  c.registry.delete(cms, 'other', 'x');
  c.registry.create(cms, 'default', { metadata: { name: 'y' } });
  await settle();
  t.same(
    sink.summary.map((s) => s.split('@')[0]),
    ['ADDED y'],
  );
});
