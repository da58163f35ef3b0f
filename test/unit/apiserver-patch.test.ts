import t from 'tap';
import {
  applyJsonPatch,
  applyMergePatch,
  applyStrategicMergePatch,
  SMP_SCHEMAS,
  type SmpNode,
} from '../../src/lab/apiserver/patch.ts';
import type { Json } from '../../src/lab/apiserver/types.ts';
import { expectApiError } from '../helpers/apiserver.ts';

const pod = SMP_SCHEMAS['/Pod'];

t.test('JSON patch: every operation', (t) => {
  const doc: Json = { a: { b: 1 }, list: [1, 2, 3], 'x/y': { '~z': 0 } };
  t.same(applyJsonPatch(doc, [{ op: 'add', path: '/a/c', value: 2 }]), {
    a: { b: 1, c: 2 },
    list: [1, 2, 3],
    'x/y': { '~z': 0 },
  });
  t.same(applyJsonPatch(doc, [{ op: 'add', path: '/list/1', value: 9 }]), { ...doc, list: [1, 9, 2, 3] });
  t.same(applyJsonPatch(doc, [{ op: 'add', path: '/list/-', value: 4 }]), { ...doc, list: [1, 2, 3, 4] });
  t.same(applyJsonPatch(doc, [{ op: 'remove', path: '/list/0' }]), { ...doc, list: [2, 3] });
  t.same(applyJsonPatch(doc, [{ op: 'replace', path: '/a/b', value: 'x' }]), { ...doc, a: { b: 'x' } });
  t.same(applyJsonPatch(doc, [{ op: 'move', from: '/a/b', path: '/moved' }]), { ...doc, a: {}, moved: 1 });
  t.same(applyJsonPatch(doc, [{ op: 'copy', from: '/a', path: '/copy' }]), { ...doc, copy: { b: 1 } });
  t.same(
    applyJsonPatch(doc, [{ op: 'replace', path: '/x~1y/~0z', value: 5 }]),
    { ...doc, 'x/y': { '~z': 5 } },
    'escapes',
  );
  t.same(
    applyJsonPatch(doc, [
      { op: 'test', path: '/a/b', value: 1 },
      { op: 'remove', path: '/a' },
    ]),
    { list: [1, 2, 3], 'x/y': { '~z': 0 } },
  );
  t.same(doc, { a: { b: 1 }, list: [1, 2, 3], 'x/y': { '~z': 0 } }, 'input untouched');
  t.end();
});

t.test('JSON patch: failures are 422, undecodable patches 400', (t) => {
  const doc: Json = { a: { b: 1 } };
  expectApiError(t, () => applyJsonPatch(doc, [{ op: 'test', path: '/a/b', value: 2 }]), 422, undefined, 'failed test');
  expectApiError(t, () => applyJsonPatch(doc, [{ op: 'remove', path: '/nope' }]), 422, undefined, 'remove missing');
  expectApiError(
    t,
    () => applyJsonPatch(doc, [{ op: 'replace', path: '/a/nope', value: 1 }]),
    422,
    undefined,
    'replace missing',
  );
  expectApiError(
    t,
    () => applyJsonPatch(doc, [{ op: 'add', path: '/x/y', value: 1 }]),
    422,
    undefined,
    'add below a missing parent',
  );
  expectApiError(t, () => applyJsonPatch(doc, { op: 'add' }), 400, undefined, 'not a list');
  expectApiError(t, () => applyJsonPatch(doc, [{ op: 'frobnicate', path: '/a' }]), 400, undefined, 'unknown op');
  expectApiError(t, () => applyJsonPatch(doc, [{ op: 'add', path: 'a', value: 1 }]), 400, undefined, 'bad pointer');
  t.end();
});

t.test('JSON merge patch (RFC 7386)', (t) => {
  t.same(applyMergePatch({ a: 'b', c: { d: 'e', f: 'g' } }, { a: 'z', c: { f: null } }), { a: 'z', c: { d: 'e' } });
  t.same(applyMergePatch({ a: [1, 2] }, { a: [3] }), { a: [3] }, 'lists are replaced');
  t.same(applyMergePatch({ a: 1 }, { b: { c: null } }), { a: 1, b: {} });
  t.same(applyMergePatch({ a: 1 }, 'x'), 'x');
  t.end();
});

t.test('SMP: maps merge, null deletes, unknown lists are replaced', (t) => {
  const out = applyStrategicMergePatch(
    { metadata: { labels: { a: '1', b: '2' } }, spec: { tolerations: [{ key: 'x' }], nodeName: 'n1' } },
    { metadata: { labels: { b: null, c: '3' } }, spec: { tolerations: [{ key: 'y' }] } },
    pod,
  );
  t.same(out, { metadata: { labels: { a: '1', c: '3' } }, spec: { tolerations: [{ key: 'y' }], nodeName: 'n1' } });
  t.end();
});

t.test('SMP: lists merge by their merge key (containers, ports, env, service ports)', (t) => {
  const base = {
    spec: {
      containers: [
        { name: 'c1', image: 'a:1', ports: [{ containerPort: 80, name: 'http' }], env: [{ name: 'A', value: '1' }] },
        { name: 'c2', image: 'b:1' },
      ],
    },
  };
  const out = applyStrategicMergePatch(
    base,
    {
      spec: {
        containers: [
          {
            name: 'c1',
            image: 'a:2',
            ports: [{ containerPort: 443, name: 'https' }],
            env: [
              { name: 'A', value: '2' },
              { name: 'B', value: 'x' },
            ],
          },
          { name: 'c3', image: 'c:1' },
        ],
      },
    },
    pod,
  );
  t.same(out, {
    spec: {
      containers: [
        {
          name: 'c1',
          image: 'a:2',
          ports: [
            { containerPort: 80, name: 'http' },
            { containerPort: 443, name: 'https' },
          ],
          env: [
            { name: 'A', value: '2' },
            { name: 'B', value: 'x' },
          ],
        },
        { name: 'c2', image: 'b:1' },
        { name: 'c3', image: 'c:1' },
      ],
    },
  });
  const svc = applyStrategicMergePatch(
    { spec: { ports: [{ port: 80, targetPort: 8080 }, { port: 443 }] } },
    { spec: { ports: [{ port: 80, targetPort: 9090 }] } },
    SMP_SCHEMAS['/Service'],
  );
  t.same(svc, { spec: { ports: [{ port: 80, targetPort: 9090 }, { port: 443 }] } });
  const np = applyStrategicMergePatch(
    { spec: { ingress: [{ from: [{ podSelector: {} }] }] } },
    { spec: { ingress: [{ ports: [{ port: 80 }] }] } },
    SMP_SCHEMAS['networking.k8s.io/NetworkPolicy'],
  );
  t.same(np, { spec: { ingress: [{ ports: [{ port: 80 }] }] } }, 'NetworkPolicy rules are atomic');
  t.end();
});

t.test('SMP directive $patch: delete in a merge list and in a map', (t) => {
  const base = { spec: { containers: [{ name: 'c1' }, { name: 'c2' }] }, metadata: { annotations: { a: 'b' } } };
  t.same(applyStrategicMergePatch(base, { spec: { containers: [{ $patch: 'delete', name: 'c2' }] } }, pod), {
    spec: { containers: [{ name: 'c1' }] },
    metadata: { annotations: { a: 'b' } },
  });
  t.same(applyStrategicMergePatch(base, { metadata: { annotations: { $patch: 'delete' } } }, pod), {
    spec: base.spec,
    metadata: {},
  });
  t.end();
});

t.test('SMP directive $patch: replace for a map and for a list', (t) => {
  const base = { spec: { nodeSelector: { a: '1', b: '2' }, containers: [{ name: 'c1' }, { name: 'c2' }] } };
  t.same(applyStrategicMergePatch(base, { spec: { nodeSelector: { $patch: 'replace', c: '3' } } }, pod), {
    spec: { nodeSelector: { c: '3' }, containers: base.spec.containers },
  });
  t.same(applyStrategicMergePatch(base, { spec: { containers: [{ $patch: 'replace' }, { name: 'only' }] } }, pod), {
    spec: { nodeSelector: base.spec.nodeSelector, containers: [{ name: 'only' }] },
  });
  t.same(applyStrategicMergePatch(base, { spec: { nodeSelector: { $patch: 'merge', c: '3' } } }, pod), {
    spec: { nodeSelector: { a: '1', b: '2', c: '3' }, containers: base.spec.containers },
  });
  expectApiError(t, () => applyStrategicMergePatch(base, { spec: { $patch: 'explode' } }, pod), 400);
  t.end();
});

t.test('SMP directive $deleteFromPrimitiveList and primitive merge lists', (t) => {
  const base = { metadata: { finalizers: ['one', 'two', 'three'] } };
  t.same(applyStrategicMergePatch(base, { metadata: { '$deleteFromPrimitiveList/finalizers': ['two'] } }, pod), {
    metadata: { finalizers: ['one', 'three'] },
  });
  t.same(
    applyStrategicMergePatch(base, { metadata: { finalizers: ['four', 'one'] } }, pod),
    {
      metadata: { finalizers: ['one', 'two', 'three', 'four'] },
    },
    'finalizers are a set: new ones appended, duplicates dropped',
  );
  t.end();
});

t.test('SMP directive $setElementOrder orders merged lists', (t) => {
  const base = { spec: { containers: [{ name: 'a' }, { name: 'b' }, { name: 'c' }] } };
  const out = applyStrategicMergePatch(
    base,
    {
      spec: {
        '$setElementOrder/containers': [{ name: 'c' }, { name: 'a' }, { name: 'b' }],
        containers: [{ name: 'c', image: 'x' }],
      },
    },
    pod,
  );
  t.same(out, { spec: { containers: [{ name: 'c', image: 'x' }, { name: 'a' }, { name: 'b' }] } });
  const prim = applyStrategicMergePatch(
    { metadata: { finalizers: ['x', 'y'] } },
    { metadata: { '$setElementOrder/finalizers': ['y', 'z', 'x'], finalizers: ['z'] } },
    pod,
  );
  t.same(prim, { metadata: { finalizers: ['y', 'z', 'x'] } });
  const serverOnly = applyStrategicMergePatch(
    { spec: { containers: [{ name: 'a' }, { name: 's' }, { name: 'b' }] } },
    { spec: { '$setElementOrder/containers': [{ name: 'b' }, { name: 'a' }] } },
    pod,
  );
  t.same(
    serverOnly,
    { spec: { containers: [{ name: 's' }, { name: 'b' }, { name: 'a' }] } },
    'server-only elements are interleaved by their place in the live list (apimachinery mergeSortedSlice)',
  );
  t.end();
});

t.test('SMP directive $retainKeys', (t) => {
  const schema: SmpNode = { fields: { spec: { fields: { volumes: { merge: { key: 'name' } } } } } };
  const out = applyStrategicMergePatch(
    { spec: { volumes: [{ name: 'v', hostPath: { path: '/x' }, readOnly: true }] } },
    { spec: { volumes: [{ name: 'v', emptyDir: {}, $retainKeys: ['emptyDir', 'name'] }] } },
    schema,
  );
  t.same(out, { spec: { volumes: [{ name: 'v', emptyDir: {} }] } });
  t.end();
});

t.test('SMP: the patch kubectl apply sends after removing a container, env, label and finalizer', (t) => {
  const stored = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', labels: { a: '1', b: '2' }, finalizers: ['one', 'two'] },
    spec: {
      containers: [
        {
          name: 'c1',
          image: 'i1',
          env: [
            { name: 'A', value: '1' },
            { name: 'B', value: '2' },
          ],
        },
        { name: 'c2', image: 'i2' },
      ],
    },
  };
  const patch = {
    metadata: {
      '$deleteFromPrimitiveList/finalizers': ['two'],
      '$setElementOrder/finalizers': ['one'],
      labels: { b: null },
    },
    spec: {
      '$setElementOrder/containers': [{ name: 'c1' }],
      containers: [
        { '$setElementOrder/env': [{ name: 'A' }], env: [{ $patch: 'delete', name: 'B' }], name: 'c1' },
        { $patch: 'delete', name: 'c2' },
      ],
    },
  };
  t.same(applyStrategicMergePatch(stored, patch, pod), {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', labels: { a: '1' }, finalizers: ['one'] },
    spec: { containers: [{ name: 'c1', image: 'i1', env: [{ name: 'A', value: '1' }] }] },
  });
  t.end();
});

t.test('SMP: bad patches are 400', (t) => {
  expectApiError(t, () => applyStrategicMergePatch({}, [1, 2] as Json, pod), 400, undefined, 'not an object');
  expectApiError(
    t,
    () => applyStrategicMergePatch({ spec: {} }, { spec: { containers: [{ image: 'x' }] } }, pod),
    400,
    undefined,
    'no merge key',
  );
  expectApiError(t, () => applyStrategicMergePatch({}, { $foo: 1 }, pod), 400, undefined, 'unknown directive');
  t.end();
});
