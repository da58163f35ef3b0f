import t, { type Test } from 'tap';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nullLogger } from '../../src/common/util/log.ts';
import { Persistence } from '../../src/lab/apiserver/persistence.ts';
import { decodeK8sProtobuf } from '../../src/lab/apiserver/protobuf.ts';
import { ObjectStore } from '../../src/lab/apiserver/store.ts';
import { expectApiError, settle } from '../helpers/apiserver.ts';

function tempDir(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'apisrv-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function restore(dir: string): ObjectStore {
  const p = new Persistence(dir, nullLogger);
  const loaded = p.load();
  const store = new ObjectStore();
  if (loaded !== undefined) {
    for (const o of loaded.objects) store.restore(o.sk, o.key, o.obj, o.json);
    store.setRevision(loaded.rv, loaded.lastModified);
  }
  return store;
}

t.test('the log and snapshot keep objects and revisions across restarts', async (t) => {
  const dir = tempDir(t);
  const p = new Persistence(dir, nullLogger);
  t.equal(p.load(), undefined, 'empty directory');
  const s1 = new ObjectStore();
  p.attach(s1);
  s1.create('/configmaps', 'default/a', {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'a', namespace: 'default' },
  });
  s1.create('/configmaps', 'default/b', {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'b', namespace: 'default' },
  });
  s1.update('/configmaps', 'default/a', {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'a', namespace: 'default' },
    data: { x: '1' },
  });
  s1.delete('/configmaps', 'default/b');
  await settle();
  t.match(readFileSync(join(dir, 'objects.wal'), 'utf8'), /"op":"del"/, 'writes go to the log once per turn');
  // A crash here: only the log exists. Replaying it gives the same state.
  const s2 = restore(dir);
  t.equal(s2.rv, 4);
  t.same([...s2.type('/configmaps').objects.keys()], ['default/a']);
  t.same(s2.get('/configmaps', 'default/a')?.obj['data'], { x: '1' });
  t.equal(s2.type('/configmaps').lastModified, 4);
  // A torn last line (a crash during a write) is ignored.
  appendFileSync(join(dir, 'objects.wal'), '{"rv":5,"sk":"/configmaps","key":"default/c","op":"put","obj":{"apiVer');
  t.equal(restore(dir).rv, 4);
  // Clean shutdown writes a snapshot and empties the log.
  p.close();
  t.equal(readFileSync(join(dir, 'objects.wal'), 'utf8'), '');
  const s3 = restore(dir);
  t.equal(s3.rv, 4);
  t.same(s3.get('/configmaps', 'default/a')?.obj.metadata.resourceVersion, '3');
  const p3 = new Persistence(dir, nullLogger);
  p3.load();
  p3.attach(s3);
  const e = s3.create('/configmaps', 'default/c', {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'c', namespace: 'default' },
  });
  t.equal(e.rv, 5, 'revisions keep increasing after a restart');
  p3.close();
  t.equal(restore(dir).rv, 5);
});

t.test('watches resuming after a restart: quiet types keep their revisions, changed ones get 410', (t) => {
  const dir = tempDir(t);
  const p = new Persistence(dir, nullLogger);
  const s1 = new ObjectStore();
  p.attach(s1);
  s1.create('/secrets', 'default/s', { metadata: { name: 's' } });
  s1.create('/configmaps', 'default/a', { metadata: { name: 'a' } });
  s1.create('/configmaps', 'default/b', { metadata: { name: 'b' } });
  p.close();
  const s2 = restore(dir);
  t.equal(s2.type('/secrets').evictedUpTo, 1, 'a secrets watch from revision 1 or later can resume');
  t.equal(s2.type('/configmaps').evictedUpTo, 3, 'a configmaps watch from before 3 gets 410');
  t.end();
});

t.test('a corrupt snapshot is a typed error', (t) => {
  const dir = tempDir(t);
  appendFileSync(join(dir, 'objects.json'), 'not json');
  t.throws(() => new Persistence(dir, nullLogger).load(), { code: 'APISERVER_STATE_CORRUPT' });
  t.end();
});

// ---------------------------------------------------------------------------------------------
// protobuf request bodies

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 127) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}
const field = (num: number, wire: number): Buffer => varint((num << 3) | wire);
const bytesField = (num: number, b: Buffer | string): Buffer => {
  const data = typeof b === 'string' ? Buffer.from(b) : b;
  return Buffer.concat([field(num, 2), varint(data.length), data]);
};
const intField = (num: number, v: number): Buffer => Buffer.concat([field(num, 0), varint(v)]);
const envelope = (apiVersion: string, kind: string, raw: Buffer): Buffer =>
  Buffer.concat([
    Buffer.from('k8s\0', 'latin1'),
    bytesField(1, Buffer.concat([bytesField(1, apiVersion), bytesField(2, kind)])),
    bytesField(2, raw),
  ]);

t.test('protobuf bodies decode to the JSON object they stand for', (t) => {
  const meta = Buffer.concat([
    bytesField(1, 'cm1'),
    bytesField(3, ''),
    bytesField(11, Buffer.concat([bytesField(1, 'app'), bytesField(2, 'web')])),
    intField(7, 0),
  ]);
  const cm = Buffer.concat([
    bytesField(1, meta),
    bytesField(2, Buffer.concat([bytesField(1, 'a'), bytesField(2, 'b')])),
  ]);
  t.same(decodeK8sProtobuf(envelope('v1', 'ConfigMap', cm)), {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'cm1', labels: { app: 'web' } },
    data: { a: 'b' },
  });
  const port = Buffer.concat([
    bytesField(1, 'http'),
    bytesField(2, 'TCP'),
    intField(3, 80),
    bytesField(4, Buffer.concat([intField(1, 1), bytesField(3, 'web')])),
    intField(5, 0),
  ]);
  const svc = Buffer.concat([
    bytesField(1, bytesField(1, 's')),
    bytesField(2, Buffer.concat([bytesField(1, port), bytesField(4, 'NodePort')])),
    bytesField(3, bytesField(1, Buffer.alloc(0))),
  ]);
  t.same(decodeK8sProtobuf(envelope('v1', 'Service', svc)), {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 's' },
    spec: { ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'web' }], type: 'NodePort' },
    status: {},
  });
  const unknownField = Buffer.concat([bytesField(1, meta), bytesField(99, 'x')]);
  expectApiError(
    t,
    () => decodeK8sProtobuf(envelope('v1', 'ConfigMap', unknownField)),
    415,
    'UnsupportedMediaType',
    'unknown fields are not dropped silently',
  );
  expectApiError(t, () => decodeK8sProtobuf(envelope('apps/v1', 'Deployment', meta)), 415, 'UnsupportedMediaType');
  expectApiError(t, () => decodeK8sProtobuf(Buffer.from('{"json":true}')), 400, 'BadRequest');
  expectApiError(
    t,
    () => decodeK8sProtobuf(Buffer.concat([Buffer.from('k8s\0', 'latin1'), Buffer.from([0x12, 0x50])])),
    400,
    'BadRequest',
    'truncated',
  );
  t.end();
});
