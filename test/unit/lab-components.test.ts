/**
 * Component requests of the running lab (src/lab/components.ts): validation naming the bad field,
 * the supervisor's unix-socket server with a recorded handler (one request at a time, errors carried
 * back with their code), and the client's errors when no supervisor answers. The real components
 * (agents, controller, ovs-vswitchd) are driven in test/e2e/lab-faults.test.ts.
 */
import t from 'tap';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ComponentControlServer,
  ComponentError,
  type ComponentRequest,
  describeResult,
  parseComponentRequest,
  requestComponent,
} from '../../src/lab/components.ts';

t.test('requests are validated, naming the bad field', (t) => {
  t.same(parseComponentRequest({ action: 'kill', component: 'antrea-agent', node: 'n1' }), {
    action: 'kill',
    component: 'antrea-agent',
    node: 'n1',
  });
  t.same(parseComponentRequest({ action: 'restart', component: 'antrea-controller' }), {
    action: 'restart',
    component: 'antrea-controller',
  });
  const bad: [unknown, string, RegExp][] = [
    [null, 'request', /must be an object/],
    [{ action: 'pause', component: 'antrea-agent', node: 'n1' }, 'action', /kill, stop, start, restart.*"pause"/],
    [{ action: 'kill', component: 'kube-proxy', node: 'n1' }, 'component', /antrea-agent.*"kube-proxy"/],
    [{ action: 'kill', component: 'ovs-vswitchd' }, 'node', /runs per Node/],
    [{ action: 'kill', component: 'antrea-agent', node: '' }, 'node', /runs per Node/],
    [{ action: 'stop', component: 'antrea-controller', node: 'n1' }, 'node', /does not run per Node/],
  ];
  for (const [req, field, message] of bad) {
    t.throws(() => parseComponentRequest(req), { code: 'INVALID_ARGUMENT', field, message }, JSON.stringify(req));
  }
  t.equal(
    describeResult({ action: 'restart', component: 'antrea-agent', node: 'n1', pid: 42, ms: 2100 }),
    'antrea-agent on n1: restart done in 2.1 s, pid 42',
  );
  t.equal(
    describeResult({ action: 'stop', component: 'antrea-controller', ms: 12.4 }),
    'antrea-controller: stop done in 12 ms, not running',
  );
  t.end();
});

t.test('the server runs requests one at a time and carries errors back with their code', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'labctl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'control.sock');
  const log: string[] = [];
  let busy = false;
  const server = new ComponentControlServer({
    socketPath: socket,
    handler: async (req: ComponentRequest) => {
      t.notOk(busy, `${req.action} ${req.component} does not overlap another request`);
      busy = true;
      log.push(`${req.action} ${req.component} ${req.node ?? '-'}`);
      await new Promise((r) => setTimeout(r, 20));
      busy = false;
      if (req.node === 'absent') throw new ComponentError('COMPONENT_UNAVAILABLE', 'no Node absent in this lab');
      if (req.component === 'ovs-vswitchd') throw new Error('boom');
      return { ...req, pid: 7, ms: 20 };
    },
  });
  await server.listen();
  await server.listen();
  t.teardown(() => server.close());

  const results = await Promise.all([
    requestComponent(socket, { action: 'kill', component: 'antrea-agent', node: 'n1' }),
    requestComponent(socket, { action: 'start', component: 'antrea-agent', node: 'n1' }),
    requestComponent(socket, { action: 'restart', component: 'antrea-controller' }),
  ]);
  t.same(
    results.map((r) => [r.action, r.component, r.pid]),
    [
      ['kill', 'antrea-agent', 7],
      ['start', 'antrea-agent', 7],
      ['restart', 'antrea-controller', 7],
    ],
  );
  t.same(log.slice().sort(), ['kill antrea-agent n1', 'restart antrea-controller -', 'start antrea-agent n1']);

  await t.rejects(requestComponent(socket, { action: 'stop', component: 'antrea-agent', node: 'absent' }), {
    code: 'COMPONENT_UNAVAILABLE',
    message: /no Node absent/,
  });
  await t.rejects(requestComponent(socket, { action: 'stop', component: 'ovs-vswitchd', node: 'n1' }), {
    code: 'COMPONENT_FAILED',
    message: /boom/,
  });
  await t.rejects(
    requestComponent(socket, { action: 'dance', component: 'antrea-agent', node: 'n1' } as unknown as ComponentRequest),
    { code: 'INVALID_ARGUMENT', field: 'action' },
    'a bad request is refused before it is sent',
  );

  await server.close();
  t.notOk(existsSync(socket), 'close removes the socket file');
  await server.close();
  await t.rejects(requestComponent(socket, { action: 'start', component: 'antrea-controller' }), {
    code: 'LAB_CONTROL_SOCKET',
    message: /is the lab running/,
  });
});
