import t from 'tap';
import { duplexPair } from 'node:stream';
import { JsonRpcConnection, JsonStreamParser } from '../../src/common/ovs/ovsdb/jsonrpc.ts';
import { OvsdbError } from '../../src/common/ovs/ovsdb/errors.ts';
import { formatEndpoint, netConnector, parseEndpoint } from '../../src/common/ovs/ovsdb/transport.ts';
import { createServer, type Server } from 'node:net';
import { ValidationError } from '../../src/common/util/errors.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { settle } from '../helpers/fake-ovsdb.ts';
import { localEndpointPath } from '../helpers/local-endpoint.ts';

t.test('the stream parser cuts back-to-back JSON values at any chunk boundary', (t) => {
  const msgs = [
    { id: 1, result: [{ uuid: ['uuid', 'a'] }], error: null },
    { method: 'update2', params: ['m', { T: { u: { modify: { s: 'a}b{c"d\\e[' } } } }], id: null },
    { id: 'x', result: 'été ✓ 😀', error: null },
    [1, [2, [3]]],
  ];
  const text = Buffer.from(msgs.map((m) => JSON.stringify(m)).join('\n \t'), 'utf8');
  // every split point, including inside strings, escapes and multi-byte characters
  for (let cut = 0; cut <= text.length; cut++) {
    const p = new JsonStreamParser();
    const out = [...p.push(text.subarray(0, cut)), ...p.push(text.subarray(cut))];
    if (JSON.stringify(out) !== JSON.stringify(msgs)) {
      t.fail(`split at ${cut} gave ${JSON.stringify(out)}`);
      break;
    }
  }
  // byte by byte
  const p = new JsonStreamParser();
  const out: unknown[] = [];
  for (const b of text) out.push(...p.push(Buffer.from([b])));
  t.same(out, msgs);
  t.end();
});

t.test('the stream parser rejects garbage and oversized messages', (t) => {
  t.throws(() => new JsonStreamParser().push(Buffer.from('hello')), { code: 'OVSDB_PROTOCOL_ERROR' });
  t.throws(() => new JsonStreamParser().push(Buffer.from('{"a":tru}')), { code: 'OVSDB_PROTOCOL_ERROR' });
  const small = new JsonStreamParser(10);
  t.throws(() => small.push(Buffer.from('{"a":"0123456789')), /larger than 10 bytes/);
  t.end();
});

function pair(clock = new FakeClock()): {
  conn: JsonRpcConnection;
  peer: ReturnType<typeof duplexPair>[1];
  fromClient: Record<string, unknown>[];
  notifications: [string, unknown][];
  clock: FakeClock;
} {
  const [a, b] = duplexPair();
  const notifications: [string, unknown][] = [];
  const conn = new JsonRpcConnection(
    a,
    { onNotification: (m, p) => notifications.push([m, p]) },
    { clock, requestTimeoutMs: 1000, endpoint: 'unix:/x' },
  );
  const fromClient: Record<string, unknown>[] = [];
  const parser = new JsonStreamParser();
  b.on('data', (c: Buffer) => fromClient.push(...(parser.push(c) as Record<string, unknown>[])));
  return { conn, peer: b, fromClient, notifications, clock };
}

t.test('requests get their replies by id, in any order', async (t) => {
  const { conn, peer, fromClient } = pair();
  const p1 = conn.request('get_schema', ['Open_vSwitch']);
  const p2 = conn.request('list_dbs', []);
  await settle();
  t.same(
    fromClient.map((m) => [m['method'], m['id']]),
    [
      ['get_schema', 1],
      ['list_dbs', 2],
    ],
  );
  peer.write(JSON.stringify({ id: 2, result: ['Open_vSwitch'], error: null }));
  peer.write(JSON.stringify({ id: 1, result: { name: 'Open_vSwitch' }, error: null }));
  t.same(await p2, ['Open_vSwitch']);
  t.same(await p1, { name: 'Open_vSwitch' });
  t.equal(conn.pendingCount, 0);
  conn.close();
});

t.test('a JSON-RPC error reply becomes OVSDB_RPC_ERROR with the server error', async (t) => {
  const { conn, peer } = pair();
  const p = conn.request('transact', ['Nodb']);
  await settle();
  peer.write(JSON.stringify({ id: 1, result: null, error: { error: 'unknown database', details: 'Nodb' } }));
  const err = await p.catch((e: unknown) => e);
  t.type(err, OvsdbError);
  t.match(err, { code: 'OVSDB_RPC_ERROR', ovsdbError: 'unknown database', ovsdbDetails: 'Nodb', kind: 'rpc' });
  conn.close();
});

t.test('the peer echo is answered, notifications are routed', async (t) => {
  const { conn, peer, fromClient, notifications } = pair();
  peer.write(JSON.stringify({ method: 'echo', params: ['hi'], id: 'echo' }));
  peer.write(JSON.stringify({ method: 'update2', params: ['m', {}], id: null }));
  peer.write(JSON.stringify({ method: 'steal', params: [], id: 7 }));
  await settle();
  t.same(fromClient, [
    { result: ['hi'], error: null, id: 'echo' },
    { result: null, error: { error: 'unknown method', details: 'steal' }, id: 7 },
  ]);
  t.same(notifications, [['update2', ['m', {}]]]);
  conn.close();
});

t.test('a request times out on the injected clock', async (t) => {
  const { conn, clock } = pair();
  const p = conn.request('transact', [], { timeoutMs: 500 });
  const caught = p.catch((e: unknown) => e);
  await clock.advance(499);
  t.equal(conn.pendingCount, 1);
  await clock.advance(1);
  t.match(await caught, { code: 'OVSDB_TIMEOUT', message: /transact: no reply after 500ms/ });
  conn.close();
});

t.test('open requests fail with OVSDB_DISCONNECTED when the stream closes', async (t) => {
  const { conn, peer } = pair();
  const p = conn.request('transact', []).catch((e: unknown) => e);
  await settle();
  peer.destroy();
  t.match(await p, { code: 'OVSDB_DISCONNECTED', kind: 'transport' });
  t.match(await conn.closed, { code: 'OVSDB_DISCONNECTED' });
  t.notOk(conn.isOpen);
  t.match(await conn.request('echo', []).catch((e: unknown) => e), { code: 'OVSDB_DISCONNECTED' });
});

t.test('garbage from the peer closes the session with a protocol error', async (t) => {
  const { conn, peer } = pair();
  const p = conn.request('echo', []).catch((e: unknown) => e);
  peer.write('not json');
  t.match(await p, { code: 'OVSDB_PROTOCOL_ERROR' });
  t.match(await conn.closed, { code: 'OVSDB_PROTOCOL_ERROR' });
});

t.test('endpoints parse and print; bad ones name the field', (t) => {
  t.same(parseEndpoint('unix:/run/ovs/db.sock'), { kind: 'unix', path: '/run/ovs/db.sock' });
  t.same(parseEndpoint('tcp:127.0.0.1:6640'), { kind: 'tcp', host: '127.0.0.1', port: 6640 });
  t.same(parseEndpoint('tcp:[::1]:6640'), { kind: 'tcp', host: '::1', port: 6640 });
  t.equal(formatEndpoint({ kind: 'tcp', host: '::1', port: 6640 }), 'tcp:[::1]:6640');
  for (const bad of ['unix:', 'tcp:host', 'tcp:h:0', 'tcp:h:70000', 'ssl:h:1', '/run/db.sock']) {
    t.throws(() => parseEndpoint(bad, 'ovsdbEndpoint'), ValidationError, bad);
    t.throws(() => parseEndpoint(bad, 'ovsdbEndpoint'), { name: 'ValidationError', field: 'ovsdbEndpoint' });
  }
  t.end();
});

async function listen(server: Server, ...args: unknown[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    (server.listen as (...a: unknown[]) => void)(...args, () => resolve());
  });
}

t.test('the net connector speaks JSON-RPC over real TCP and unix sockets', async (t) => {
  // a minimal peer that answers every request with its own params
  const server = createServer((sock) => {
    const parser = new JsonStreamParser();
    sock.on('data', (c: Buffer) => {
      for (const m of parser.push(c) as { params: unknown; id: unknown }[]) {
        sock.write(JSON.stringify({ id: m.id, result: m.params, error: null }));
      }
    });
  });
  t.teardown(() => new Promise((r) => server.close(r)));
  await listen(server, 0, '127.0.0.1');
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no TCP address');
  const tcp = new JsonRpcConnection(await netConnector(parseEndpoint(`tcp:127.0.0.1:${addr.port}`))(), {});
  t.same(await tcp.request('echo', ['over tcp']), ['over tcp']);
  tcp.close();

  const path = localEndpointPath(t, 'db.sock');
  const unixServer = createServer((sock) => sock.pipe(sock));
  t.teardown(() => new Promise((r) => unixServer.close(r)));
  await listen(unixServer, path);
  const unix = await netConnector(parseEndpoint(`unix:${path}`))();
  t.ok(unix.writable);
  unix.destroy();

  // nobody listening: a typed error naming the endpoint
  const err = await netConnector(parseEndpoint(`unix:${path}.absent`))().catch((e: unknown) => e);
  t.type(err, OvsdbError);
  t.match(err, { code: 'OVSDB_CONNECT_FAILED', message: /unix:.*absent: ENOENT \(is ovsdb-server running/ });
  const ac = new AbortController();
  ac.abort(new Error('stop'));
  t.match(await netConnector(parseEndpoint(`unix:${path}`))(ac.signal).catch((e: unknown) => e), { message: 'stop' });
});
