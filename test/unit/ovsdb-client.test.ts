import t from 'tap';
import type { CacheUpdate } from '../../src/common/ovs/ovsdb/cache.ts';
import { DEFAULT_MONITOR, interpretTransactResult, OvsdbClient } from '../../src/common/ovs/ovsdb/client.ts';
import { OvsdbError } from '../../src/common/ovs/ovsdb/errors.ts';
import { eq, type Operation, ops } from '../../src/common/ovs/ovsdb/operations.ts';
import { mapToRecord } from '../../src/common/ovs/ovsdb/values.ts';
import { memoryLogger } from '../../src/common/util/log.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { FakeOvsdbServer, settle, until } from '../helpers/fake-ovsdb.ts';

const ROOT = 'aaaaaaaa-0000-0000-0000-000000000001';

function setup(opts: { echoIntervalMs?: number } = {}): {
  server: FakeOvsdbServer;
  clock: FakeClock;
  client: OvsdbClient;
  stop: () => Promise<void>;
} {
  const server = new FakeOvsdbServer();
  server.initial2 = {
    Open_vSwitch: { [ROOT]: { initial: { bridges: ['set', []], other_config: ['map', [['a', 'b']]] } } },
    Bridge: { 'bbbbbbbb-0000-0000-0000-000000000001': { initial: { name: 'br-int' } } },
  };
  const clock = new FakeClock();
  const client = new OvsdbClient({
    endpoint: 'unix:/fake/db.sock',
    connector: server.connector,
    clock,
    logger: memoryLogger(),
    backoff: { initialMs: 200, maxMs: 1000, random: () => 0 },
    echoIntervalMs: opts.echoIntervalMs ?? 0,
    requestTimeoutMs: 10_000,
  });
  const ac = new AbortController();
  const done = client.run(ac.signal);
  return {
    server,
    clock,
    client,
    stop: async () => {
      ac.abort();
      await done;
    },
  };
}

t.test('connecting fetches the schema, monitors the default tables and fills the cache', async (t) => {
  const { server, client, stop } = setup();
  await client.whenConnected();
  t.equal(client.state, 'connected');
  t.equal(client.connectCount, 1);
  const rx = server.last.received;
  t.same(
    rx.map((m) => m.method),
    ['get_schema', 'monitor_cond'],
  );
  t.same(rx[0]!.params, ['Open_vSwitch']);
  const [db, id, requests] = rx[1]!.params as [string, string, Record<string, { columns: string[] }[]>];
  t.equal(db, 'Open_vSwitch');
  t.equal(id, 'antrea-ts');
  t.same(Object.keys(requests).sort(), Object.keys(DEFAULT_MONITOR).sort());
  t.same(requests['Interface']![0]!.columns, DEFAULT_MONITOR['Interface']);
  t.equal(client.schema?.name, 'Open_vSwitch');
  t.equal(client.cache.lookup('Bridge', 'name', 'br-int').length, 1);
  t.same(client.cache.get('Open_vSwitch', ROOT)?.columns['other_config'], ['map', [['a', 'b']]]);
  t.same(client.cache.get('Bridge', 'bbbbbbbb-0000-0000-0000-000000000001')?.columns['ports'], ['set', []]);
  await stop();
  t.equal(client.state, 'closed');
});

t.test('transact sends the operations and returns their results; update2 reaches the cache', async (t) => {
  const { server, client, stop } = setup();
  await client.whenConnected();
  server.onTransact = (txn) => txn.map(() => ({ count: 1 }));
  const txn: Operation[] = [ops.mutate('Open_vSwitch', [], [['other_config', 'delete', ['set', ['a']]]])];
  t.same(await client.transact(txn), [{ count: 1 }]);
  const sent = server.last.received.at(-1)!;
  t.equal(sent.method, 'transact');
  t.same(sent.params, ['Open_vSwitch', ...txn]);
  const otherConfig = (): Record<string, string> =>
    mapToRecord(client.cache.get('Open_vSwitch', ROOT)?.columns['other_config']);
  t.same(otherConfig(), { a: 'b' });
  server.last.notifyUpdate2({ Open_vSwitch: { [ROOT]: { modify: { other_config: ['map', [['a', 'b']]] } } } });
  await until(() => Object.keys(otherConfig()).length === 0, 'update2 applied');
  t.same(otherConfig(), {}, 'the update2 notification removed the key');
  await stop();
});

t.test('an update2 read together with the monitor reply is applied after it, without a resync', async (t) => {
  const { server, client, stop } = setup();
  server.updateWithMonitorReply = { Open_vSwitch: { [ROOT]: { modify: { other_config: ['map', [['a', 'b']]] } } } };
  await client.whenConnected();
  await settle();
  t.same(mapToRecord(client.cache.get('Open_vSwitch', ROOT)?.columns['other_config']), {}, 'the update was applied');
  t.equal(client.connectCount, 1, 'no reconnect');
  t.equal(client.state, 'connected');
  t.equal(server.sessions.length, 1);
  await stop();
});

t.test('a bad operation is rejected before sending, naming table, column and value', async (t) => {
  const { server, client, stop } = setup();
  await client.whenConnected();
  const err = await client
    .transact([ops.insert('Interface', { name: 'x', ofport_request: 'one' })])
    .catch((e: unknown) => e);
  t.type(err, OvsdbError);
  t.match(err, {
    code: 'OVSDB_INVALID_OPERATION',
    opIndex: 0,
    table: 'Interface',
    column: 'ofport_request',
    value: 'one',
  });
  t.notOk(
    server.last.received.some((m) => m.method === 'transact'),
    'nothing was sent',
  );
  await stop();
});

t.test('server errors are typed: per-operation vs whole transaction', (t) => {
  const txn: Operation[] = [
    ops.insert('Interface', { name: 'x', ofport_request: 70000 }, 'i'),
    ops.insert('Port', { name: 'x', interfaces: ['named-uuid', 'i'] }),
  ];
  // ovsdb-server 3.1 replies, captured from a real server
  const perOp = [
    null,
    { error: 'constraint violation', details: '70000 is not in the valid range 1 to 65279 (inclusive)' },
  ];
  t.throws(() => interpretTransactResult(txn, [{ uuid: ['uuid', ROOT] }, ...perOp.slice(1)], 'unix:/x'), {
    code: 'OVSDB_OPERATION_FAILED',
    kind: 'operation',
    opIndex: 1,
    table: 'Port',
    ovsdbError: 'constraint violation',
  });
  t.throws(() => interpretTransactResult(txn, [perOp[1]]), {
    code: 'OVSDB_OPERATION_FAILED',
    opIndex: 0,
    table: 'Interface',
    column: 'ofport_request',
    value: 70000,
    message: /operation 0 \(insert Interface\) failed: constraint violation: 70000 is not in the valid range/,
  });
  t.throws(
    () =>
      interpretTransactResult(txn, [
        { error: 'unknown column', details: 'No column foo in table Bridge.', syntax: '{"foo":1}' },
      ]),
    { code: 'OVSDB_OPERATION_FAILED', opIndex: 0, table: 'Bridge', column: 'foo', value: { foo: 1 } },
  );
  t.throws(
    () =>
      interpretTransactResult(
        [ops.comment('a'), ops.comment('b'), ops.insert('Nope', {})],
        [
          {
            error: 'syntax error',
            details: 'Parsing ovsdb operation 3 of 3 failed: No table named Nope.',
            syntax: '{"op":"insert","row":{},"table":"Nope"}',
          },
        ],
      ),
    { code: 'OVSDB_OPERATION_FAILED', opIndex: 2, table: 'Nope' },
  );
  t.throws(
    () =>
      interpretTransactResult(
        [ops.insert('Port', { name: 'x', interfaces: ['uuid', ROOT] })],
        [
          { uuid: ['uuid', ROOT] },
          {
            error: 'referential integrity violation',
            details: `Table Port column interfaces row ${ROOT} references nonexistent row 00000000-0000-0000-0000-000000000000 in table Interface.`,
          },
        ],
      ),
    {
      code: 'OVSDB_TRANSACTION_FAILED',
      kind: 'transaction',
      table: 'Port',
      column: 'interfaces',
      ovsdbError: 'referential integrity violation',
    },
  );
  t.throws(
    () =>
      interpretTransactResult(
        [ops.insert('Bridge', { name: 'x' })],
        [
          { uuid: ['uuid', ROOT] },
          {
            error: 'constraint violation',
            details:
              'Transaction causes multiple rows in "Bridge" table to have identical values (x) for index on column "name".  First row...',
          },
        ],
      ),
    { code: 'OVSDB_TRANSACTION_FAILED', table: 'Bridge', column: 'name', value: 'x' },
  );
  t.throws(
    () =>
      interpretTransactResult(
        [ops.wait('Interface', [eq('name', 'p')], ['ofport'], '!=', [{ ofport: ['set', []] }], 100)],
        [{ error: 'timed out', details: '"wait" timed out after 100 ms' }],
      ),
    { code: 'OVSDB_OPERATION_FAILED', op: 'wait', ovsdbError: 'timed out' },
  );
  t.throws(() => interpretTransactResult(txn, [{}]), { code: 'OVSDB_PROTOCOL_ERROR' });
  t.throws(() => interpretTransactResult(txn, { error: 'x' }), { code: 'OVSDB_PROTOCOL_ERROR' });
  t.same(interpretTransactResult([ops.comment('a')], [{}, null]), [{}]);
  t.end();
});

t.test('a dropped connection fails open requests, then reconnects with backoff and resyncs', async (t) => {
  const { server, clock, client, stop } = setup();
  await client.whenConnected();
  const updates: CacheUpdate[] = [];
  client.cache.subscribe((u) => updates.push(u));
  server.holdTransactions = true;
  const pending = client.transact([ops.comment('x')]).catch((e: unknown) => e);
  await settle();
  server.refuse = true;
  server.last.drop();
  t.match(await pending, { code: 'OVSDB_DISCONNECTED', kind: 'transport' });
  await until(() => client.state === 'backoff', 'backoff');
  t.match(await client.transact([ops.comment('y')]).catch((e: unknown) => e), { code: 'OVSDB_DISCONNECTED' });
  // refused twice: 200 ms then 400 ms
  const attempts = server.connectAttempts;
  await clock.advance(199);
  t.equal(server.connectAttempts, attempts, 'waits for the backoff');
  await clock.advance(1);
  await until(() => server.connectAttempts === attempts + 1, 'second attempt');
  await until(() => client.state === 'backoff', 'backoff again');
  await clock.advance(399);
  t.equal(server.connectAttempts, attempts + 1, 'the delay doubled');
  // while it was down, a bridge went away and another appeared
  server.refuse = false;
  server.holdTransactions = false;
  server.initial2 = {
    Open_vSwitch: { [ROOT]: { initial: { other_config: ['map', [['a', 'b']]] } } },
    Bridge: { 'bbbbbbbb-0000-0000-0000-000000000002': { initial: { name: 'br-phy' } } },
  };
  await clock.advance(1);
  await until(() => client.isConnected, 'reconnected');
  t.equal(client.connectCount, 2);
  t.same(client.cache.lookup('Bridge', 'name', 'br-int'), [], 'stale rows are gone');
  t.equal(client.cache.lookup('Bridge', 'name', 'br-phy').length, 1);
  const resync = updates.at(-1)!;
  t.equal(resync.resync, true);
  t.same(resync.changes.map((c) => [c.kind, c.table]).sort(), [
    ['delete', 'Bridge'],
    ['insert', 'Bridge'],
  ]);
  t.same(await client.transact([ops.comment('z')]), [{}]);
  await stop();
});

t.test('whenConnected times out with the last connection error; connect() cleans up', async (t) => {
  const { server, clock, client, stop } = setup();
  await client.whenConnected();
  server.refuse = true;
  server.last.drop();
  await until(() => client.state === 'backoff', 'backoff');
  const waiting = client.whenConnected({ timeoutMs: 3000 }).catch((e: unknown) => e);
  for (let i = 0; i < 30; i++) await clock.advance(100);
  const err = await waiting;
  t.match(err, { code: 'OVSDB_CONNECT_FAILED', message: /not connected to unix:\/fake\/db.sock after 3000ms/ });
  t.match((err as OvsdbError).cause, { code: 'OVSDB_CONNECT_FAILED', message: /ECONNREFUSED/ });
  await stop();
  t.match(await client.whenConnected().catch((e: unknown) => e), { code: 'OVSDB_DISCONNECTED' });

  const refusing = new FakeOvsdbServer();
  refusing.refuse = true;
  const err2 = await OvsdbClient.connect({
    endpoint: 'unix:/nowhere',
    connector: refusing.connector,
    timeoutMs: 50,
    backoff: { initialMs: 10, maxMs: 10 },
  }).catch((e: unknown) => e);
  t.match(err2, { code: 'OVSDB_CONNECT_FAILED' });
  const attempts = refusing.connectAttempts;
  await new Promise((r) => setTimeout(r, 30));
  t.equal(refusing.connectAttempts, attempts, 'a failed connect() leaves nothing retrying');
});

t.test('an unanswered echo drops the connection; an answered one keeps it', async (t) => {
  const { server, clock, client, stop } = setup({ echoIntervalMs: 5000 });
  await client.whenConnected();
  await clock.advance(5000);
  await until(() => server.last.received.some((m) => m.method === 'echo'), 'echo sent');
  t.equal(client.state, 'connected', 'an answered echo keeps the connection');
  const first = server.last;
  server.answerEcho = false;
  await clock.advance(5000);
  await until(() => first.received.filter((m) => m.method === 'echo').length === 2, 'second echo');
  await clock.advance(5000);
  await until(() => first.closed, 'dropped');
  t.match(client.lastError, { code: 'OVSDB_DISCONNECTED', message: /no echo reply within 5000ms/ });
  server.answerEcho = true;
  await clock.advance(200);
  await until(() => client.isConnected && client.connectCount === 2, 'reconnected');
  t.pass('reconnected after the dead connection');
  await stop();
});

t.test('falls back to monitor on a server without monitor_cond', async (t) => {
  const server = new FakeOvsdbServer();
  server.supportsMonitorCond = false;
  server.initial1 = { Bridge: { 'bbbbbbbb-0000-0000-0000-000000000009': { new: { name: 'br-old' } } } };
  const client = await OvsdbClient.connect({ endpoint: 'unix:/x', connector: server.connector, echoIntervalMs: 0 });
  t.same(
    server.last.received.map((m) => m.method),
    ['get_schema', 'monitor_cond', 'monitor'],
  );
  t.equal(client.cache.lookup('Bridge', 'name', 'br-old').length, 1);
  await client.close();
});

t.test('a monitor update that does not fit the cache forces a resync', async (t) => {
  const { server, clock, client, stop } = setup();
  await client.whenConnected();
  server.last.notifyUpdate2({ Bridge: { 'cccccccc-0000-0000-0000-000000000000': { modify: { name: 'x' } } } });
  await until(() => client.state === 'backoff', 'dropped');
  await clock.advance(200);
  await until(() => client.isConnected, 'reconnected');
  t.equal(client.connectCount, 2);
  await stop();
});
