/**
 * The embedded API server over real HTTP(S): authentication (401), RBAC (403), discovery and the
 * OpenAPI stub, Status errors, content types, watch framing and timeouts, tables, pagination,
 * TokenRequest/TokenReview/SubjectAccessReview, and persistence across a restart.
 */
import t, { type Test } from 'tap';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { shortTempDir } from '../helpers/env.ts';
import { startApiServer, type ApiServer, type ApiServerOptions } from '../../src/lab/apiserver/server.ts';

interface Res {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  readonly raw: Buffer;
  json(): Record<string, unknown>;
}

interface ReqOptions {
  readonly body?: unknown;
  readonly contentType?: string;
  readonly accept?: string;
  /** undefined: the admin token; null: none. */
  readonly token?: string | null;
  readonly headers?: Record<string, string>;
}

function call(s: ApiServer, method: string, path: string, o: ReqOptions = {}): Promise<Res> {
  const url = new URL(path, s.url);
  const headers: Record<string, string> = { ...o.headers };
  const token = o.token === undefined ? s.adminToken : o.token;
  if (token !== null) headers['Authorization'] = `Bearer ${token}`;
  if (o.accept !== undefined) headers['Accept'] = o.accept;
  let body: Buffer | undefined;
  if (o.body !== undefined) {
    body = Buffer.isBuffer(o.body) ? o.body : Buffer.from(typeof o.body === 'string' ? o.body : JSON.stringify(o.body));
    headers['Content-Type'] = o.contentType ?? 'application/json';
  }
  const fn = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = fn(url, { method, headers, ...(s.caCertPem === undefined ? {} : { ca: s.caCertPem }) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const text = raw.toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text,
          raw,
          json: () => JSON.parse(text) as Record<string, unknown>,
        });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function server(t: Test, o: ApiServerOptions = {}): Promise<ApiServer> {
  const s = await startApiServer(o);
  t.teardown(() => s.stop());
  return s;
}

t.test('authentication: tokens are required except for health and version', async (t) => {
  const s = await server(t);
  t.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const anon = await call(s, 'GET', '/api/v1/namespaces', { token: null });
  t.equal(anon.status, 401);
  t.same(anon.json(), {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'Unauthorized',
    reason: 'Unauthorized',
    code: 401,
  });
  t.equal((await call(s, 'GET', '/api/v1/namespaces', { token: 'forged' })).status, 401);
  t.equal((await call(s, 'GET', '/api', { token: null })).status, 401, 'discovery needs a token too');
  const health = await call(s, 'GET', '/healthz', { token: null });
  t.equal(health.status, 200);
  t.equal(health.text, 'ok');
  t.equal((await call(s, 'GET', '/readyz', { token: null })).text, 'ok');
  t.match((await call(s, 'GET', '/version', { token: null })).json(), {
    major: '1',
    minor: '32',
    gitVersion: 'v1.32.4+antrea-lab',
  });
  t.equal((await call(s, 'GET', '/api/v1/namespaces')).status, 200, 'the admin token works');
});

t.test('plain HTTP only on loopback', async (t) => {
  await t.rejects(startApiServer({ insecureHttp: true, host: '0.0.0.0' }), { code: 'INVALID_ARGUMENT', field: 'host' });
  const s = await server(t, { insecureHttp: true });
  t.match(s.url, /^http:\/\//);
  t.equal(s.caCertPem, undefined);
  t.match(s.kubeconfig(), /insecure-skip-tls-verify: true/);
  t.equal((await call(s, 'GET', '/api/v1/namespaces', { token: null })).status, 401, 'tokens still required');
  t.equal((await call(s, 'GET', '/api/v1/namespaces')).status, 200);
});

t.test('RBAC: a ServiceAccount token is refused until a binding allows it', async (t) => {
  const s = await server(t);
  t.equal(
    (await call(s, 'POST', '/api/v1/namespaces/default/serviceaccounts', { body: { metadata: { name: 'bot' } } }))
      .status,
    201,
  );
  const tr = await call(s, 'POST', '/api/v1/namespaces/default/serviceaccounts/bot/token', {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
  });
  t.equal(tr.status, 201);
  const status = tr.json()['status'] as { token: string; expirationTimestamp: string };
  t.match(status.expirationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const token = status.token;
  const denied = await call(s, 'GET', '/api/v1/namespaces/default/pods', { token });
  t.equal(denied.status, 403);
  t.match(denied.json(), {
    kind: 'Status',
    reason: 'Forbidden',
    code: 403,
    message:
      'pods is forbidden: User "system:serviceaccount:default:bot" cannot list resource "pods" in API group "" in the namespace "default"',
    details: { kind: 'pods' },
  });
  t.equal((await call(s, 'GET', '/apis', { token })).status, 200, 'discovery for any authenticated user');
  await call(s, 'POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles', {
    body: {
      metadata: { name: 'pod-reader' },
      rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }],
    },
  });
  await call(s, 'POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings', {
    body: {
      metadata: { name: 'bot-reads' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'bot', namespace: 'default' }],
    },
  });
  t.equal((await call(s, 'GET', '/api/v1/namespaces/default/pods', { token })).status, 200);
  t.equal(
    (await call(s, 'GET', '/api/v1/namespaces/kube-system/pods', { token })).status,
    403,
    'only in its namespace',
  );
  t.equal((await call(s, 'DELETE', '/api/v1/namespaces/default/pods/x', { token })).status, 403);
  const review = await call(s, 'POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
  });
  t.equal(review.status, 201);
  t.match(review.json(), {
    kind: 'TokenReview',
    status: {
      authenticated: true,
      user: {
        username: 'system:serviceaccount:default:bot',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:default', 'system:authenticated'],
      },
      audiences: ['https://kubernetes.default.svc.cluster.local'],
    },
  });
  const sar = await call(s, 'POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
    body: {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: 'system:serviceaccount:default:bot',
        groups: ['system:authenticated'],
        resourceAttributes: { namespace: 'default', verb: 'watch', resource: 'pods' },
      },
    },
  });
  t.match(sar.json(), { status: { allowed: true } });
  t.equal(
    (await call(s, 'POST', '/apis/authentication.k8s.io/v1/tokenreviews', { token, body: { spec: { token } } })).status,
    403,
    'reviews need their own permission',
  );
  t.equal((await call(s, 'POST', '/api/v1/namespaces/default/serviceaccounts/nobody/token', { body: {} })).status, 404);
  const impersonated = await call(s, 'GET', '/api/v1/namespaces/default/pods', {
    headers: { 'Impersonate-User': 'system:serviceaccount:default:bot' },
  });
  t.equal(impersonated.status, 200, 'the admin may impersonate the ServiceAccount');
  const asBot = await call(s, 'GET', '/api/v1/namespaces/default/secrets', {
    headers: { 'Impersonate-User': 'system:serviceaccount:default:bot' },
  });
  t.match(asBot.json(), {
    code: 403,
    message: /User "system:serviceaccount:default:bot" cannot list resource "secrets"/,
  });
  const botImpersonates = await call(s, 'GET', '/api/v1/namespaces/default/pods', {
    token,
    headers: { 'Impersonate-User': 'admin' },
  });
  t.match(botImpersonates.json(), {
    code: 403,
    message:
      'users "admin" is forbidden: User "system:serviceaccount:default:bot" cannot impersonate resource "users" in API group "" at the cluster scope',
  });
});

t.test('discovery documents and the OpenAPI v2 stub', async (t) => {
  const s = await server(t);
  t.match((await call(s, 'GET', '/api')).json(), {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0' }],
  });
  const groups = (await call(s, 'GET', '/apis')).json()['groups'] as {
    name: string;
    preferredVersion: { version: string };
  }[];
  t.ok(
    groups.some((g) => g.name === 'crd.antrea.io'),
    'CRD groups are discoverable',
  );
  t.ok(groups.some((g) => g.name === 'networking.k8s.io' && g.preferredVersion.version === 'v1'));
  const core = (await call(s, 'GET', '/api/v1')).json()['resources'] as {
    name: string;
    verbs: string[];
    shortNames?: string[];
    kind: string;
  }[];
  t.match(
    core.find((r) => r.name === 'pods'),
    { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', shortNames: ['po'], categories: ['all'] },
  );
  t.match(
    core.find((r) => r.name === 'pods/status'),
    { verbs: ['get', 'patch', 'update'] },
  );
  t.match(
    core.find((r) => r.name === 'serviceaccounts/token'),
    { kind: 'TokenRequest', verbs: ['create'] },
  );
  const antrea = (await call(s, 'GET', '/apis/crd.antrea.io/v1beta1')).json()['resources'] as {
    name: string;
    shortNames?: string[];
  }[];
  t.same(antrea.find((r) => r.name === 'clusternetworkpolicies')?.shortNames, ['acnp']);
  t.equal((await call(s, 'GET', '/apis/nope.example.com/v1')).status, 404);
  const v2 = await call(s, 'GET', '/openapi/v2', {
    accept: 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf',
  });
  t.equal(v2.headers['content-type'], 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf');
  t.same([...v2.raw], [0x0a, 0x03, 0x32, 0x2e, 0x30], 'swagger: "2.0" in protobuf');
  t.equal((await call(s, 'GET', '/openapi/v3')).status, 404, 'kubectl falls back to v2');
});

t.test('errors are Kubernetes Status objects', async (t) => {
  const s = await server(t);
  const nf = await call(s, 'GET', '/api/v1/namespaces/default/pods/missing');
  t.equal(nf.status, 404);
  t.equal(nf.headers['content-type'], 'application/json');
  t.same(nf.json(), {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'pods "missing" not found',
    reason: 'NotFound',
    details: { name: 'missing', kind: 'pods' },
    code: 404,
  });
  const pod = { metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'x' }] } };
  t.equal((await call(s, 'POST', '/api/v1/namespaces/default/pods', { body: pod })).status, 201);
  t.match((await call(s, 'POST', '/api/v1/namespaces/default/pods', { body: pod })).json(), {
    reason: 'AlreadyExists',
    code: 409,
    message: 'pods "p" already exists',
  });
  const inv = (
    await call(s, 'POST', '/api/v1/namespaces/default/pods', {
      body: { metadata: { name: 'q' }, spec: { containers: [{ name: 'c' }] } },
    })
  ).json();
  t.match(inv, {
    reason: 'Invalid',
    code: 422,
    message: 'Pod "q" is invalid: spec.containers[0].image: Required value',
    details: {
      name: 'q',
      kind: 'Pod',
      causes: [{ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.containers[0].image' }],
    },
  });
  t.match((await call(s, 'POST', '/api/v1/namespaces/default/pods', { body: '{not json' })).json(), {
    reason: 'BadRequest',
    code: 400,
  });
  t.match((await call(s, 'GET', '/api/v1/pods?labelSelector=a%20in%20b')).json(), { reason: 'BadRequest', code: 400 });
  t.match((await call(s, 'GET', '/api/v1/pods?fieldSelector=spec.foo%3Dx')).json(), {
    code: 400,
    message: 'field label not supported: spec.foo',
  });
  t.match(
    (
      await call(s, 'PATCH', '/apis/crd.antrea.io/v1beta1/tiers/x', {
        body: {},
        contentType: 'application/strategic-merge-patch+json',
      })
    ).json(),
    { code: 415 },
  );
  await call(s, 'POST', '/apis/crd.antrea.io/v1beta1/tiers', {
    body: { metadata: { name: 't' }, spec: { priority: 1 } },
  });
  t.match(
    (
      await call(s, 'PATCH', '/apis/crd.antrea.io/v1beta1/tiers/t', {
        body: { spec: { priority: 2 } },
        contentType: 'application/strategic-merge-patch+json',
      })
    ).json(),
    { code: 415, reason: 'UnsupportedMediaType' },
  );
  t.match(
    (await call(s, 'PATCH', '/api/v1/namespaces/default/pods/p', { body: {}, contentType: 'text/plain' })).json(),
    { code: 415 },
  );
  t.match((await call(s, 'PUT', '/api/v1/namespaces', { body: {} })).json(), { code: 405, reason: 'MethodNotAllowed' });
  t.match(
    (
      await call(s, 'GET', '/api/v1/namespaces/default/pods/p', { accept: 'application/vnd.kubernetes.protobuf' })
    ).json(),
    {
      code: 406,
    },
  );
  t.equal(
    (
      await call(s, 'GET', '/api/v1/namespaces/default/pods/p', {
        accept: 'application/vnd.kubernetes.protobuf,application/json',
      })
    ).status,
    200,
  );
  t.match((await call(s, 'POST', '/api/v1/namespaces/default/configmaps', { body: 'x'.repeat(3_200_000) })).json(), {
    code: 413,
  });
  const stale = await call(s, 'PUT', '/api/v1/namespaces/default/pods/p', {
    body: { ...pod, metadata: { name: 'p', resourceVersion: '1' } },
  });
  t.match(stale.json(), { code: 409, reason: 'Conflict' });
});

t.test('watch: headers at once, one JSON event per line, timeoutSeconds, 410 as an ERROR event', async (t) => {
  const s = await server(t);
  const url = new URL(
    `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${s.store.rv}&timeoutSeconds=1`,
    s.url,
  );
  const got = await new Promise<{ headersAt: number; endAt: number; lines: string[]; ct: string | undefined }>(
    (resolve, reject) => {
      const t0 = Date.now();
      let headersAt = 0;
      const req = httpsRequest(
        url,
        { headers: { Authorization: `Bearer ${s.adminToken}` }, ca: s.caCertPem },
        (res) => {
          headersAt = Date.now() - t0;
          let buf = '';
          res.on('data', (c: Buffer) => (buf += c.toString()));
          res.on('end', () =>
            resolve({ headersAt, endAt: Date.now() - t0, lines: buf.split('\n'), ct: res.headers['content-type'] }),
          );
          setTimeout(() => {
            s.registry.create(s.types.get('', 'v1', 'configmaps')!, 'default', { metadata: { name: 'w1' } });
          }, 100);
        },
      );
      req.on('error', reject);
      req.end();
    },
  );
  t.ok(got.headersAt < 500, 'headers are flushed before any event');
  t.equal(got.ct, 'application/json');
  t.ok(got.endAt >= 1000 && got.endAt < 3000, 'ends cleanly after timeoutSeconds');
  t.equal(got.lines.at(-1), '', 'newline-terminated');
  const ev = JSON.parse(got.lines[0] ?? '{}') as { type: string; object: { kind: string; metadata: { name: string } } };
  t.match(ev, { type: 'ADDED', object: { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'w1' } } });
  t.equal(got.lines.length, 2);
  s.registry.create(s.types.get('', 'v1', 'configmaps')!, 'default', { metadata: { name: 'w2' } });
  s.expireWatchHistory();
  const expired = await call(s, 'GET', '/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1');
  t.equal(expired.status, 200, 'the real cacher answers 200...');
  const errEv = JSON.parse(expired.text.trim()) as { type: string; object: Record<string, unknown> };
  t.match(
    errEv,
    { type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } },
    '...with an ERROR event, then ends',
  );
  t.match((await call(s, 'GET', `/api/v1/configmaps?watch=true&resourceVersion=${s.store.rv + 1000}`)).json(), {
    code: 504,
    reason: 'Timeout',
    message: /^Too large resource version/,
  });
  t.match((await call(s, 'GET', '/api/v1/configmaps?watch=true&fieldSelector=nope%3Dx')).json(), { code: 400 });
});

t.test('tables, partial metadata, limit/continue', async (t) => {
  const s = await server(t);
  for (let i = 0; i < 5; i++) {
    await call(s, 'POST', '/api/v1/namespaces/default/pods', {
      body: { metadata: { name: `p${i}` }, spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'x' }] } },
    });
  }
  const table = (
    await call(s, 'GET', '/api/v1/namespaces/default/pods?limit=500', {
      accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json',
    })
  ).json();
  t.equal(table['kind'], 'Table');
  t.same(
    (table['columnDefinitions'] as { name: string }[]).map((c) => c.name),
    ['Name', 'Ready', 'Status', 'Restarts', 'Age', 'IP', 'Node', 'Nominated Node', 'Readiness Gates'],
  );
  const row = (table['rows'] as { cells: unknown[]; object: { kind: string } }[])[0];
  t.match(row?.cells, ['p0', '0/1', 'Pending', 0, /^\d+s$/, '<none>', 'n1', '<none>', '<none>']);
  t.equal(row?.object.kind, 'PartialObjectMetadata');
  const crdTable = (
    await call(s, 'GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
      accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
    })
  ).json();
  t.same(
    (crdTable['columnDefinitions'] as { name: string }[]).map((c) => c.name),
    ['Name', 'Created At'],
  );
  await call(s, 'POST', '/apis/crd.antrea.io/v1beta1/tiers', {
    body: { metadata: { name: 'tr1' }, spec: { priority: 7 } },
  });
  const tiers = (
    await call(s, 'GET', '/apis/crd.antrea.io/v1beta1/tiers', {
      accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
    })
  ).json();
  t.match((tiers['rows'] as { cells: unknown[] }[])[0]?.cells, ['tr1', 7, /^\d+s$/], 'printer columns of the CRD');
  const partial = (
    await call(s, 'GET', '/api/v1/namespaces/default/pods', {
      accept: 'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io',
    })
  ).json();
  t.equal(partial['kind'], 'PartialObjectMetadataList');
  const page1 = (await call(s, 'GET', '/api/v1/namespaces/default/pods?limit=2')).json();
  const meta1 = page1['metadata'] as { continue: string; resourceVersion: string; remainingItemCount: number };
  t.equal((page1['items'] as unknown[]).length, 2);
  t.equal(meta1.remainingItemCount, 3);
  const page2 = (
    await call(s, 'GET', `/api/v1/namespaces/default/pods?limit=10&continue=${encodeURIComponent(meta1.continue)}`)
  ).json();
  t.same(
    (page2['items'] as { metadata: { name: string } }[]).map((p) => p.metadata.name),
    ['p2', 'p3', 'p4'],
  );
  t.equal((page2['metadata'] as { resourceVersion: string }).resourceVersion, meta1.resourceVersion);
  const list = (await call(s, 'GET', '/api/v1/namespaces/default/pods')).json();
  t.equal(list['kind'], 'PodList');
  t.equal(list['apiVersion'], 'v1');
});

t.test('with --data-dir, objects survive a restart and revisions keep increasing', async (t) => {
  const dataDir = shortTempDir(t, 'apisrv');
  const s1 = await startApiServer({ dataDir });
  await call(s1, 'POST', '/api/v1/namespaces/default/configmaps', {
    body: { metadata: { name: 'keep' }, data: { a: '1' } },
  });
  const rv1 = s1.store.rv;
  const token = s1.adminToken;
  await s1.stop();
  const s2 = await server(t, { dataDir });
  t.equal(s2.adminToken, token, 'the admin token is kept');
  const got = await call(s2, 'GET', '/api/v1/namespaces/default/configmaps/keep');
  t.equal(got.status, 200);
  t.same(got.json()['data'], { a: '1' });
  const created = await call(s2, 'POST', '/api/v1/namespaces/default/configmaps', {
    body: { metadata: { name: 'new' } },
  });
  t.ok(Number((created.json()['metadata'] as { resourceVersion: string }).resourceVersion) > rv1);
  const mem = await server(t);
  t.equal(
    (await call(mem, 'GET', '/api/v1/namespaces/default/configmaps/keep')).status,
    404,
    'without a data dir nothing is kept',
  );
});
