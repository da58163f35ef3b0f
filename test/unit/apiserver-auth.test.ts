import t from 'tap';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import type { UserInfo } from '../../src/lab/apiserver/auth.ts';
import { typeOf } from '../../src/lab/apiserver/core.ts';
import { isObject, scalarString, type JsonObject } from '../../src/lab/apiserver/types.ts';
import { expectApiError, testCore } from '../helpers/apiserver.ts';

t.test('ServiceAccount tokens: issue, review, expiry, audiences, deleted accounts', async (t) => {
  const c = await testCore(t);
  const sa = c.registry.create(c.type('', 'serviceaccounts'), 'kube-system', { metadata: { name: 'antrea-agent' } });
  const { token } = c.tokens.issue({ namespace: 'kube-system', name: 'antrea-agent', uid: sa.obj.metadata.uid ?? '' });
  const r = c.tokens.review(token);
  t.ok(r.ok);
  t.match(r, {
    user: {
      name: 'system:serviceaccount:kube-system:antrea-agent',
      uid: sa.obj.metadata.uid,
      groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
    },
    audiences: ['https://kubernetes.default.svc.cluster.local'],
  });
  t.notOk(c.tokens.review(token, ['antrea']).ok, 'wrong audience');
  const scoped = c.tokens.issue(
    { namespace: 'kube-system', name: 'antrea-agent', uid: sa.obj.metadata.uid ?? '' },
    { audiences: ['antrea'] },
  ).token;
  t.match(c.tokens.review(scoped, ['antrea']), { ok: true, audiences: ['antrea'] });
  t.notOk(c.tokens.review(scoped).ok, 'a token for another audience is not an API token');
  t.notOk(c.tokens.review(`${token.slice(0, -4)}AAAA`).ok, 'tampered signature');
  t.notOk(c.tokens.review('not-a-token').ok);
  await c.clock.advance(3601_000);
  t.match(c.tokens.review(token), { ok: false, error: /expired/ });
  const fresh = c.tokens.issue({
    namespace: 'kube-system',
    name: 'antrea-agent',
    uid: sa.obj.metadata.uid ?? '',
  }).token;
  c.registry.delete(c.type('', 'serviceaccounts'), 'kube-system', 'antrea-agent');
  t.match(c.tokens.review(fresh), { ok: false, error: /not found/ }, 'the account must still exist');
  c.registry.create(c.type('', 'serviceaccounts'), 'kube-system', { metadata: { name: 'antrea-agent' } });
  t.match(c.tokens.review(fresh), { ok: false, error: /UID/ }, 'a recreated account has another uid');
});

t.test('tokens bound to a Pod carry its name and stop working when it is gone', async (t) => {
  const c = await testCore(t);
  const sa = c.registry.create(c.type('', 'serviceaccounts'), 'default', { metadata: { name: 'app' } });
  const pod = c.registry.create(c.type('', 'pods'), 'default', {
    metadata: { name: 'p' },
    spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'x' }] },
  });
  const { token } = c.tokens.issue(
    { namespace: 'default', name: 'app', uid: sa.obj.metadata.uid ?? '' },
    { boundPod: { name: 'p', uid: pod.obj.metadata.uid ?? '', nodeName: 'n1' } },
  );
  const r = c.tokens.review(token);
  t.match(r, {
    ok: true,
    user: {
      extra: { 'authentication.kubernetes.io/pod-name': ['p'], 'authentication.kubernetes.io/node-name': ['n1'] },
    },
  });
  c.registry.delete(c.type('', 'pods'), 'default', 'p', { gracePeriodSeconds: 0 });
  t.notOk(c.tokens.review(token).ok);
});

t.test('tokens bound to a Node carry its name and uid and stop working when it is gone', async (t) => {
  const c = await testCore(t);
  const sa = c.registry.create(c.type('', 'serviceaccounts'), 'default', { metadata: { name: 'agent' } });
  const node = c.registry.create(c.type('', 'nodes'), undefined, { metadata: { name: 'n1' } });
  const { token } = c.tokens.issue(
    { namespace: 'default', name: 'agent', uid: sa.obj.metadata.uid ?? '' },
    { boundNode: { name: 'n1', uid: node.obj.metadata.uid ?? '' } },
  );
  t.match(c.tokens.review(token), {
    ok: true,
    user: {
      extra: {
        'authentication.kubernetes.io/node-name': ['n1'],
        'authentication.kubernetes.io/node-uid': [node.obj.metadata.uid],
      },
    },
  });
  c.registry.delete(c.type('', 'nodes'), undefined, 'n1', { gracePeriodSeconds: 0 });
  t.match(c.tokens.review(token), { ok: false, error: /nodes "n1" not found/ });
  c.registry.create(c.type('', 'nodes'), undefined, { metadata: { name: 'n1' } });
  t.match(c.tokens.review(token), { ok: false, error: /Node UID/ }, 'a recreated Node has another uid');
});

function applyManifest(c: Awaited<ReturnType<typeof testCore>>, file: string): void {
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const obj = doc.toJS() as unknown;
    if (!isObject(obj)) continue;
    const kind = scalarString(obj['kind']);
    const resource = {
      ServiceAccount: 'serviceaccounts',
      ClusterRole: 'clusterroles',
      ClusterRoleBinding: 'clusterrolebindings',
      Role: 'roles',
      RoleBinding: 'rolebindings',
    }[kind];
    if (resource === undefined) continue;
    const group = kind === 'ServiceAccount' ? '' : 'rbac.authorization.k8s.io';
    const meta = obj['metadata'] as JsonObject;
    c.registry.create(
      typeOf(c.types, group, resource),
      typeof meta['namespace'] === 'string' ? meta['namespace'] : undefined,
      obj,
    );
  }
}

t.test(
  'RBAC expresses what antrea-agent, antrea-controller and antctl may do (build/yamls/antrea-rbac.yml)',
  async (t) => {
    const c = await testCore(t);
    applyManifest(c, new URL('../../build/yamls/antrea-rbac.yml', import.meta.url).pathname);
    const sa = (name: string): UserInfo => ({
      name: `system:serviceaccount:kube-system:${name}`,
      groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
    });
    const can = (
      u: UserInfo,
      verb: string,
      apiGroup: string,
      resource: string,
      namespace?: string,
      subresource?: string,
      name?: string,
    ): boolean =>
      c.authz.authorize({
        user: u,
        verb,
        resourceRequest: true,
        apiGroup,
        resource,
        ...(namespace === undefined ? {} : { namespace }),
        ...(subresource === undefined ? {} : { subresource }),
        ...(name === undefined ? {} : { name }),
      }).allowed;
    const agent = sa('antrea-agent');
    const controller = sa('antrea-controller');
    const antctl = sa('antctl');
    t.ok(can(agent, 'watch', '', 'pods'), 'agent watches Pods');
    t.ok(can(agent, 'get', '', 'nodes'));
    t.ok(can(agent, 'list', 'discovery.k8s.io', 'endpointslices'));
    t.ok(can(agent, 'update', 'crd.antrea.io', 'antreaagentinfos'));
    t.notOk(can(agent, 'create', 'crd.antrea.io', 'antreaagentinfos'), 'the controller creates them');
    t.ok(can(agent, 'watch', 'controlplane.antrea.io', 'networkpolicies'), 'agent watches the controlplane API');
    t.ok(can(agent, 'patch', '', 'pods', 'default', 'status'), 'agent updates Pod status');
    t.notOk(can(agent, 'delete', '', 'pods', 'default'), 'agent may not delete Pods');
    t.notOk(can(agent, 'create', 'crd.antrea.io', 'clusternetworkpolicies'));
    t.ok(can(agent, 'create', 'authentication.k8s.io', 'tokenreviews'), "the agent's own API delegates authentication");
    t.notOk(can(agent, 'list', '', 'configmaps', 'kube-system'), 'configmaps only by name');
    t.ok(can(agent, 'get', '', 'configmaps', 'kube-system', undefined, 'antrea-ca'));
    t.ok(can(controller, 'create', 'authentication.k8s.io', 'tokenreviews'), 'controller delegates authentication');
    t.ok(can(controller, 'create', 'authorization.k8s.io', 'subjectaccessreviews'));
    t.ok(can(controller, 'watch', 'networking.k8s.io', 'networkpolicies'));
    t.ok(can(controller, 'update', 'crd.antrea.io', 'clusternetworkpolicies', undefined, 'status'));
    t.ok(can(controller, 'get', '', 'configmaps', 'kube-system', undefined, 'extension-apiserver-authentication'));
    t.notOk(can(controller, 'delete', '', 'nodes'));
    t.ok(can(antctl, 'get', 'controlplane.antrea.io', 'networkpolicies'));
    t.ok(can(antctl, 'list', 'crd.antrea.io', 'antreaagentinfos'));
    t.notOk(can(antctl, 'create', '', 'pods', 'default'));
    const anyone: UserInfo = { name: 'bob', groups: ['system:authenticated'] };
    t.notOk(can(anyone, 'list', '', 'pods', 'default'));
    t.ok(
      c.authz.authorize({ user: anyone, verb: 'get', resourceRequest: false, path: '/apis' }).allowed,
      'discovery for everyone',
    );
    t.ok(
      c.authz.authorize({
        user: anyone,
        verb: 'create',
        resourceRequest: true,
        apiGroup: 'authorization.k8s.io',
        resource: 'selfsubjectaccessreviews',
      }).allowed,
    );
    t.ok(can({ name: 'root', groups: ['system:masters'] }, 'delete', '', 'nodes'), 'system:masters may do anything');
  },
);

t.test('Roles, RoleBindings, resourceNames and aggregated ClusterRoles', async (t) => {
  const c = await testCore(t);
  const rbac = (r: string) => c.type('rbac.authorization.k8s.io', r);
  c.registry.create(rbac('roles'), 'default', {
    metadata: { name: 'cm-reader' },
    rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'], resourceNames: ['only'] }],
  });
  c.registry.create(rbac('rolebindings'), 'default', {
    metadata: { name: 'b' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'cm-reader' },
    subjects: [{ kind: 'User', name: 'alice' }],
  });
  const alice: UserInfo = { name: 'alice', groups: ['system:authenticated'] };
  const q = (verb: string, namespace: string, name?: string) =>
    c.authz.authorize({
      user: alice,
      verb,
      resourceRequest: true,
      apiGroup: '',
      resource: 'configmaps',
      namespace,
      ...(name === undefined ? {} : { name }),
    }).allowed;
  t.ok(q('get', 'default', 'only'));
  t.notOk(q('get', 'default', 'other'), 'resourceNames restrict');
  t.notOk(q('get', 'kube-system', 'only'), 'a RoleBinding is namespaced');
  c.registry.create(rbac('clusterroles'), undefined, {
    metadata: { name: 'extra-view', labels: { 'rbac.authorization.k8s.io/aggregate-to-view': 'true' } },
    rules: [{ apiGroups: ['crd.antrea.io'], resources: ['tiers'], verbs: ['list'] }],
  });
  c.registry.create(rbac('clusterrolebindings'), undefined, {
    metadata: { name: 'alice-view' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
    subjects: [{ kind: 'User', name: 'alice' }],
  });
  t.ok(
    c.authz.authorize({
      user: alice,
      verb: 'list',
      resourceRequest: true,
      apiGroup: 'crd.antrea.io',
      resource: 'tiers',
    }).allowed,
    'view aggregates labelled roles',
  );
  t.ok(
    c.authz.authorize({
      user: alice,
      verb: 'watch',
      resourceRequest: true,
      apiGroup: '',
      resource: 'pods',
      namespace: 'x',
    }).allowed,
  );
  t.notOk(
    c.authz.authorize({
      user: alice,
      verb: 'delete',
      resourceRequest: true,
      apiGroup: '',
      resource: 'pods',
      namespace: 'x',
    }).allowed,
  );
  expectApiError(
    t,
    () =>
      c.registry.create(rbac('rolebindings'), 'default', {
        metadata: { name: 'bad' },
        roleRef: { apiGroup: 'x', kind: 'Role', name: 'r' },
      }),
    422,
  );
});

t.test('review resources answer with status', async (t) => {
  const c = await testCore(t);
  const review = (resource: string) => c.types.all().find((x) => x.resource === resource)!;
  const admin: UserInfo = { name: 'admin', groups: ['system:masters'] };
  const sar = review('subjectaccessreviews').virtual!(
    {
      metadata: {},
      spec: {
        user: 'bob',
        groups: ['system:authenticated'],
        resourceAttributes: { verb: 'list', resource: 'pods', namespace: 'default' },
      },
    },
    { namespace: undefined, user: admin },
  );
  t.same(sar['status'], { allowed: false });
  t.equal(sar['kind'], 'SubjectAccessReview');
  const self = review('selfsubjectaccessreviews').virtual!(
    { metadata: {}, spec: { nonResourceAttributes: { path: '/healthz', verb: 'get' } } },
    { namespace: undefined, user: { name: 'bob', groups: ['system:authenticated'] } },
  );
  t.match(self['status'], { allowed: true });
  expectApiError(
    t,
    () =>
      review('subjectaccessreviews').virtual!(
        { metadata: {}, spec: { user: 'x' } },
        { namespace: undefined, user: admin },
      ),
    422,
  );
  const tr = review('tokenreviews').virtual!(
    { metadata: {}, spec: { token: 'nope' } },
    { namespace: undefined, user: admin },
  );
  t.match(tr['status'], { error: /invalid/ });
  t.notOk((tr['status'] as JsonObject)['authenticated']);
});
