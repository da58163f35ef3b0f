/**
 * The controller's HTTPS API server with fake TokenReview/SubjectAccessReview answers (the caching
 * authenticator and authorizer, the Node binding and everything else are the real ones): health,
 * authentication and Node binding, query-parameter errors, list/get/watch in both encodings, status
 * reports, discovery, metrics, the endpoint query and the slow-watcher cut-off over real sockets.
 */
import t from 'tap';
import { ControlplaneEncoder, decodeObject, WatchDecoder } from '../../src/common/apis/controlplane/codec.ts';
import type { NetworkPolicyStatus } from '../../src/common/apis/controlplane/types.ts';
import { openRequest, readBody } from '../../src/common/agent/controlplane/client.ts';
import { groupName } from '../../src/controller/networkpolicy/controller.ts';
import { type Stack, startStack } from './fixtures/controlplane-stack.ts';
import { np, pod, sel } from './fixtures/k8s.ts';

interface Answer {
  status: number;
  type: string;
  body: Buffer;
  json: () => { message?: string; reason?: string; code?: number; [k: string]: unknown };
}

async function call(
  s: Stack,
  path: string,
  o: { token?: string; method?: string; accept?: string; body?: Buffer; contentType?: string } = {},
): Promise<Answer> {
  const res = await openRequest(s.endpoint(o.token ?? 'admin'), {
    path,
    method: o.method ?? 'GET',
    headers: {
      ...(o.accept === undefined ? {} : { Accept: o.accept }),
      ...(o.contentType === undefined ? {} : { 'Content-Type': o.contentType }),
    },
    ...(o.body === undefined ? {} : { body: o.body }),
  });
  const body = await readBody(res);
  return {
    status: res.statusCode ?? 0,
    type: res.headers['content-type'] ?? '',
    body,
    json: () => JSON.parse(body.toString()) as ReturnType<Answer['json']>,
  };
}

const CP = '/apis/controlplane.antrea.io/v1beta2';
const policy = np('ns1', 'p', {
  podSelector: sel({ app: 'db' }),
  policyTypes: ['Ingress'],
  ingress: [{ from: [{ podSelector: sel({ app: 'web' }) }] }],
});
const ATG = groupName('namespace=ns1 And podSelector=app=db');
const AG = groupName('namespace=ns1 And podSelector=app=web');

function populate(s: Stack): void {
  const c = s.controller;
  c.handlePod('ADDED', pod('ns1', 'db1', { app: 'db' }, { node: 'n1', ip: '10.0.0.1' }));
  c.handlePod('ADDED', pod('ns1', 'web1', { app: 'web' }, { node: 'n2', ip: '10.0.0.2' }));
  c.handleNetworkPolicy('ADDED', policy);
  c.flush();
  c.publish();
}

t.test('health endpoints need no token; readiness follows publication', async (t) => {
  const s = await startStack(t);
  t.equal((await call(s, '/livez', { token: '' })).status, 200);
  const before = await call(s, '/readyz', { token: '' });
  t.equal(before.status, 500);
  t.match(before.body.toString(), /\[-\]networkpolicy-computation-published failed/);
  s.controller.publish();
  const after = await call(s, '/readyz?verbose', { token: '' });
  t.equal(after.status, 200);
  t.match(after.body.toString(), /\[\+\]serving-certificate ok\nreadyz check passed/);
});

t.test('authentication: no token and a bad token get 401; answers are cached', async (t) => {
  const s = await startStack(t);
  populate(s);
  const none = await call(s, `${CP}/networkpolicies`, { token: '' });
  t.equal(none.status, 401);
  t.same([none.json().reason, none.json().code], ['Unauthorized', 401]);
  const bad = await call(s, `${CP}/networkpolicies`, { token: 'forged' });
  t.equal(bad.status, 401);
  t.match(bad.json().message, /token not recognized/);
  await call(s, `${CP}/networkpolicies`, { token: 'reader' });
  await call(s, `${CP}/networkpolicies`, { token: 'reader' });
  t.equal(s.authn.reviews, 2, 'one TokenReview per distinct token');
  t.equal(s.authz.reviews, 1, 'one SubjectAccessReview for two identical requests');
  const denied = await call(s, `${CP}/networkpolicies`, { token: 'nobody' });
  t.equal(denied.status, 403);
  t.match(
    denied.json().message,
    /nobody cannot list resource "networkpolicies" in API group "controlplane.antrea.io": no RBAC rule/,
  );
});

t.test('Node binding: an agent may only watch its own Node', async (t) => {
  const s = await startStack(t);
  populate(s);
  const watch = (node: string, token: string): Promise<Answer> =>
    call(s, `${CP}/networkpolicies?watch=true&timeoutSeconds=1&fieldSelector=nodeName%3D${node}`, { token });
  const other = await watch('n2', 'agent-n1');
  t.equal(other.status, 403);
  t.match(other.json().message, /bound to Node n1 and may not watch Node n2/);
  const list = await call(s, `${CP}/networkpolicies`, { token: 'agent-n1' });
  t.equal(list.status, 403, 'a bound agent may not list everything');
  t.match(list.json().message, /may only watch with fieldSelector nodeName=n1/);
  const all = await call(s, `${CP}/networkpolicies?watch=1&timeoutSeconds=1`, { token: 'agent-n1' });
  t.equal(all.status, 403, 'nor watch without a Node');
  const unbound = await watch('n1', 'agent-unbound');
  t.equal(unbound.status, 403);
  t.match(unbound.json().message, /not bound to a Node/);
  const own = await watch('n1', 'agent-n1');
  t.equal(own.status, 200, 'its own Node: allowed (the stream ends after timeoutSeconds)');
  const events = new WatchDecoder('json').push(own.body);
  t.same(
    events.map((e) => e.type),
    ['ADDED', 'BOOKMARK'],
  );
  t.equal(
    (await call(s, `${CP}/networkpolicies`, { token: 'admin' })).status,
    200,
    'an administrator lists everything',
  );
});

t.test('bad query parameters get 400 naming the parameter', async (t) => {
  const s = await startStack(t);
  populate(s);
  const cases: [string, RegExp][] = [
    ['fieldSelector=spec.foo%3Dbar', /^fieldSelector: field label not supported: spec.foo/],
    ['fieldSelector=nodeName!%3Dn1', /^fieldSelector: operator != is not supported for nodeName/],
    ['fieldSelector=nodeName%3DN_1', /^fieldSelector nodeName: "N_1" is not a valid name/],
    ['fieldSelector=nodeName%3D', /^fieldSelector nodeName: must not be empty/],
    ['fieldSelector=nodeName%3Dn1,nodeName%3Dn2', /nodeName is given more than once/],
    ['fieldSelector=bogus', /^fieldSelector: invalid selector "bogus"/],
    ['watch=maybe', /^watch: "maybe" is not a boolean/],
    ['watch=true&timeoutSeconds=-1', /^timeoutSeconds: "-1" is not a non-negative integer/],
    ['labelSelector=app%3Dweb', /^labelSelector: not supported/],
    ['resourceVersion=abc', /^resourceVersion: "abc" is not a resource version/],
    ['continue=xyz', /^continue: not supported/],
    ['watch=true&sendInitialEvents=false', /^sendInitialEvents: only true is supported/],
    ['frobnicate=1', /^frobnicate: unknown query parameter/],
    ['watch=true&watch=false', /^watch: given more than once/],
  ];
  for (const [q, re] of cases) {
    const a = await call(s, `${CP}/networkpolicies?${q}`, { token: 'admin' });
    t.equal(a.status, 400, q);
    t.match(a.json().message, re, q);
    t.equal(a.json().reason, 'BadRequest');
  }
  t.equal((await call(s, `${CP}/networkpolicies/Bad_Name`)).status, 400, 'a bad object name');
  t.equal((await call(s, `${CP}/networkpolicies`, { accept: 'text/html' })).status, 406);
  t.equal((await call(s, `${CP}/networkpolicies`, { method: 'DELETE' })).status, 405);
  t.equal((await call(s, `${CP}/pods`)).status, 404);
  t.equal((await call(s, '/apis/controlplane.antrea.io/v1')).status, 404);
});

t.test('list and get in JSON and protobuf; discovery', async (t) => {
  const s = await startStack(t);
  populate(s);
  const list = await call(s, `${CP}/addressgroups`, { accept: 'application/vnd.kubernetes.protobuf' });
  t.equal(list.type, 'application/vnd.kubernetes.protobuf');
  const decoded = decodeObject('protobuf', list.body, ['AddressGroupList']).object as {
    items: { metadata: { name: string } }[];
  };
  t.same(
    decoded.items.map((i) => i.metadata.name),
    [AG],
  );
  const atg = await call(s, `${CP}/appliedtogroups/${ATG}`, { accept: 'application/json' });
  t.same(atg.json().groupMembers, [{ pod: { name: 'db1', namespace: 'ns1' } }]);
  t.equal(atg.json().kind, 'AppliedToGroup');
  const byNode = await call(s, `${CP}/appliedtogroups?fieldSelector=nodeName%3Dn2`);
  t.same(byNode.json().items, [], 'a list filtered by Node');
  const missing = await call(s, `${CP}/networkpolicies/nope`);
  t.equal(missing.status, 404);
  t.match(missing.json().message, /networkpolicies.controlplane.antrea.io "nope" not found/);
  const table = await call(s, `${CP}/networkpolicies`, {
    accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json',
  });
  t.equal(table.json().kind, 'NetworkPolicyList', 'Table requests fall back to plain JSON');
  const groups = (await call(s, '/apis')).json() as { groups: { name: string }[] };
  t.same(
    groups.groups.map((g) => g.name),
    ['controlplane.antrea.io', 'system.antrea.io'],
  );
  const res = (await call(s, CP)).json() as { resources: { name: string }[] };
  t.ok(res.resources.some((r) => r.name === 'networkpolicies/status'));
});

t.test('status reports: the agent reports its Node; the controller aggregates by generation', async (t) => {
  const s = await startStack(t);
  populate(s);
  const enc = new ControlplaneEncoder();
  const name = 'uid-np-ns1-p';
  const report = (node: string, generation: number, failure?: string): Buffer =>
    enc.object('protobuf', 'NetworkPolicyStatus', {
      metadata: { name },
      nodes: [
        {
          nodeName: node,
          generation,
          ...(failure === undefined ? {} : { realizationFailure: true, message: failure }),
        },
      ],
    });
  const post = (
    token: string,
    body: Buffer,
    contentType = 'application/vnd.kubernetes.protobuf',
    target = name,
  ): Promise<Answer> => call(s, `${CP}/networkpolicies/${target}/status`, { token, method: 'POST', body, contentType });
  const realization = async (): Promise<unknown> => (await call(s, `/networkpolicyrealization?name=${name}`)).json();

  t.match(await realization(), { phase: 'Realizing', desiredNodesRealized: 1, currentNodesRealized: 0 });
  const ok = await post('agent-n1', report('n1', 1));
  t.equal(ok.status, 201);
  t.match(await realization(), { phase: 'Realized', desiredNodesRealized: 1, currentNodesRealized: 1, generation: 1 });
  t.equal((await post('agent-n1', report('n2', 1))).status, 403, 'not for another Node');
  t.equal((await post('agent-n1', report('n1', 1), 'text/plain')).status, 415);
  t.equal((await post('agent-n1', Buffer.from('garbage'))).status, 400);
  t.equal((await post('agent-n1', report('n1', 1), undefined, 'other')).status, 400, 'name mismatch');
  const gone = await post(
    'admin',
    enc.object('json', 'NetworkPolicyStatus', {
      metadata: { name: 'gone' },
      nodes: [{ nodeName: 'n1', generation: 1 }],
    }),
    'application/json',
    'gone',
  );
  t.equal(gone.status, 404);

  // A new generation: the old report no longer counts; a failure report makes it Failed.
  s.controller.handleNetworkPolicy(
    'MODIFIED',
    np('ns1', 'p', { ...policy.spec!, policyTypes: ['Ingress', 'Egress'] }, { generation: 2 }),
  );
  s.controller.flush();
  t.match(await realization(), { phase: 'Realizing', generation: 2, currentNodesRealized: 0 });
  await post('agent-n1', report('n1', 2, 'no OVS'));
  t.match(await realization(), { phase: 'Failed', failedNodes: [{ node: 'n1', message: 'no OVS' }] });
  const all = (
    await call(s, `${CP}/networkpolicies/${name}/status`, { accept: 'application/json' })
  ).json() as unknown as NetworkPolicyStatus;
  t.same(all.nodes, [{ nodeName: 'n1', generation: 2, realizationFailure: true, message: 'no OVS' }]);
});

t.test('metrics, the endpoint query, controller info and the log level', async (t) => {
  const s = await startStack(t, {
    controllerInfo: () => ({ metadata: { name: 'antrea-controller' }, connectedAgentNum: 0 }),
  });
  populate(s);
  const m = (await call(s, '/metrics')).body.toString();
  for (const name of [
    'antrea_controller_network_policy_processed 1',
    'antrea_controller_applied_to_group_processed',
    'antrea_controller_address_group_sync_duration_milliseconds_bucket{le="0.1"}',
    'antrea_controller_length_network_policy_queue 0',
    'antrea_controller_network_policies 1',
    'antrea_controller_watchers{resource="networkpolicies"} 0',
  ]) {
    t.ok(m.includes(name), name);
  }
  const ep = (await call(s, '/endpoint?namespace=ns1&pod=db1')).json() as {
    endpoints: { policies: { name: string }[] }[];
  };
  t.same(
    ep.endpoints[0]?.policies.map((p) => p.name),
    ['uid-np-ns1-p'],
    'db1 is selected by p',
  );
  const web = (await call(s, '/endpoint?namespace=ns1&pod=web1')).json() as {
    endpoints: { ingressSrcRules: unknown[]; policies: unknown[] }[];
  };
  t.same(web.endpoints[0]?.policies, []);
  t.match(web.endpoints[0]?.ingressSrcRules, [{ policyRef: { name: 'uid-np-ns1-p' }, direction: 'In', ruleIndex: 0 }]);
  t.equal((await call(s, '/endpoint?namespace=ns1&pod=ghost')).status, 404);
  t.equal((await call(s, '/endpoint?namespace=ns1')).status, 400);
  const info = await call(s, '/apis/system.antrea.io/v1beta1/controllerinfos/antrea-controller');
  t.match(info.json(), {
    kind: 'AntreaControllerInfo',
    apiVersion: 'system.antrea.io/v1beta1',
    metadata: { name: 'antrea-controller' },
  });
  t.equal((await call(s, '/apis/system.antrea.io/v1beta1/controllerinfos/other')).status, 404);
  t.same((await call(s, '/loglevel?level=debug', { method: 'PUT' })).json(), { level: 'debug' });
  t.equal((await call(s, '/loglevel?level=loud', { method: 'PUT' })).status, 400);
});

t.test('a watcher that stops reading is cut off; the others get everything', async (t) => {
  const s = await startStack(t, { maxBufferedEvents: 20 });
  populate(s);
  const path = `${CP}/networkpolicies?watch=true&fieldSelector=nodeName%3Dn1`;
  const slow = await openRequest(s.endpoint('agent-n1'), {
    path,
    headers: { Accept: 'application/vnd.kubernetes.protobuf' },
  });
  slow.pause();
  const fast = await openRequest(s.endpoint('agent-n1'), {
    path,
    headers: { Accept: 'application/vnd.kubernetes.protobuf' },
  });
  const decoder = new WatchDecoder('protobuf');
  let fastEvents = 0;
  let lastGeneration = 0;
  fast.on('data', (chunk: Buffer) => {
    for (const e of decoder.push(chunk)) {
      fastEvents++;
      if (e.type === 'MODIFIED')
        lastGeneration = (e.object as { metadata: { generation: number } }).metadata.generation;
    }
  });
  slow.on('error', () => undefined);
  const slowClosed = new Promise<void>((resolve) => slow.once('close', resolve));
  // Big policy versions (about 100 KB each) fill the socket buffers quickly.
  const blocks = Array.from({ length: 2500 }, (_, i) => ({
    ipBlock: { cidr: `10.${(i >> 8) & 255}.${i & 255}.0/24` },
  }));
  for (let g = 2; g <= 400 && s.hub.stats().closed.overflow === 0; g++) {
    s.controller.handleNetworkPolicy(
      'MODIFIED',
      np(
        'ns1',
        'p',
        { ...policy.spec!, ingress: [{ from: [{ podSelector: sel({ app: 'web' }) }, ...blocks.slice(0, 2000 + g)] }] },
        { generation: g },
      ),
    );
    s.controller.flush();
    await new Promise((r) => setImmediate(r));
  }
  t.equal(s.hub.stats().closed.overflow, 1, 'the paused watcher was cut off');
  const last = s.controller.networkPolicies.get('uid-np-ns1-p')?.object.metadata.generation ?? 0;
  t.equal(s.hub.watcherCount('networkpolicies'), 1, 'the hub dropped the slow watcher at once');
  // The kernel still holds bytes for it: the client sees the connection end once it reads them.
  slow.resume();
  await slowClosed;
  for (let i = 0; i < 200 && lastGeneration < last; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(lastGeneration, last, 'the reading watcher received every version');
  t.ok(fastEvents > 20);
  t.equal(s.hub.watcherCount('networkpolicies'), 1);
  fast.destroy();
});
