/**
 * The OpenFlow connection and the reconnecting client against a scripted fake switch on a unix
 * socket: version negotiation, xid-matched replies and multipart aggregation, typed errors naming
 * the failing request, bundles that discard on failure, echo keepalive, request timeouts, and
 * reconnect with backoff (time driven by a FakeClock). The real ovs-vswitchd is exercised in
 * test/integration/openflow-*.test.ts.
 */
import t, { type Test } from 'tap';
import { type Server, type Socket, createServer } from 'node:net';
import { OpenFlowClient } from '../../src/common/ovs/openflow/client.ts';
import { OpenFlowConnection, trackedBytes } from '../../src/common/ovs/openflow/connection.ts';
import { OFPBCT, OFPT } from '../../src/common/ovs/openflow/consts.ts';
import { parseFlow } from '../../src/common/ovs/openflow/flow.ts';
import { decodeBundleControl, readHeader } from '../../src/common/ovs/openflow/messages.ts';
import { applyBundle, op } from '../../src/common/ovs/openflow/ops.ts';
import { localEndpointPath } from '../helpers/local-endpoint.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

type Msg = { type: number; xid: number; raw: Uint8Array };
/** Returns replies for a message (or undefined to stay silent). */
type Script = (m: Msg, sw: FakeSwitch) => Uint8Array[] | undefined;

function message(type: number, xid: number, body: number[] = []): Uint8Array {
  const b = new Uint8Array(8 + body.length);
  const v = new DataView(b.buffer);
  v.setUint8(0, 6);
  v.setUint8(1, type);
  v.setUint16(2, b.length);
  v.setUint32(4, xid);
  b.set(body, 8);
  return b;
}
const u16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff];
const u32 = (n: number): number[] => [...u16(n >>> 16), ...u16(n & 0xffff)];
const errorFor = (m: Msg, type: number, code: number): Uint8Array =>
  message(OFPT.ERROR, m.xid, [...u16(type), ...u16(code), ...m.raw.slice(0, 64)]);

class FakeSwitch {
  readonly path: string;
  readonly received: Msg[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  versions = 1 << 6;
  script: Script = () => undefined;

  constructor(path: string) {
    this.path = path;
    this.server = createServer((s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => undefined);
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 8) {
          const len = buf.readUInt16BE(2);
          if (buf.length < len) break;
          const raw = new Uint8Array(buf.subarray(0, len));
          buf = buf.subarray(len);
          const h = readHeader(raw);
          const m = { type: h.type, xid: h.xid, raw };
          this.received.push(m);
          for (const r of this.answer(m) ?? []) s.write(r);
        }
      });
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(this.path, resolve));
  }

  /** Drops every connection (like ovs-vswitchd going away) but keeps listening. */
  dropAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  close(): Promise<void> {
    this.dropAll();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private answer(m: Msg): Uint8Array[] | undefined {
    const custom = this.script(m, this);
    if (custom !== undefined) return custom;
    switch (m.type) {
      case OFPT.HELLO:
        return [message(OFPT.HELLO, m.xid, [...u16(1), ...u16(8), ...u32(this.versions)])];
      case OFPT.FEATURES_REQUEST:
        return [
          message(OFPT.FEATURES_REPLY, m.xid, [
            0,
            0,
            0,
            0,
            0,
            0,
            0x12,
            0x34,
            ...u32(0),
            254,
            0,
            0,
            0,
            ...u32(0),
            ...u32(0),
          ]),
        ];
      case OFPT.BARRIER_REQUEST:
        return [message(OFPT.BARRIER_REPLY, m.xid)];
      case OFPT.ECHO_REQUEST:
        return [message(OFPT.ECHO_REPLY, m.xid)];
      case OFPT.BUNDLE_CONTROL: {
        const c = decodeBundleControl(m.raw);
        return [message(OFPT.BUNDLE_CONTROL, m.xid, [...u32(c.bundleId), ...u16(c.type + 1), ...u16(c.flags)])];
      }
      default:
        return undefined;
    }
  }
}

async function fakeSwitch(t: Test): Promise<FakeSwitch> {
  const sw = new FakeSwitch(localEndpointPath(t, 'sw.mgmt'));
  await sw.listen();
  t.teardown(() => sw.close());
  return sw;
}

async function eventually(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!cond()) throw new Error(`never happened: ${what}`);
}

t.test('handshake: OpenFlow 1.5 HELLO, FEATURES, SET_CONFIG and packet-in format', async (t) => {
  const sw = await fakeSwitch(t);
  const conn = await OpenFlowConnection.connect({ endpoint: `unix:${sw.path}`, echoIntervalMs: 0 });
  t.teardown(() => conn.close());
  t.equal(conn.datapathId, 0x1234n);
  t.same(
    sw.received.map((m) => m.type),
    [OFPT.HELLO, OFPT.FEATURES_REQUEST, OFPT.SET_CONFIG, OFPT.EXPERIMENTER, OFPT.BARRIER_REQUEST],
  );
  t.equal(sw.received[0]?.raw[0], 6, 'HELLO is version 0x06');
});

t.test('a switch without OpenFlow 1.5 is refused with a handshake error', async (t) => {
  const sw = await fakeSwitch(t);
  sw.versions = (1 << 1) | (1 << 4);
  const err = await OpenFlowConnection.connect({ endpoint: `unix:${sw.path}` }).catch((e: unknown) => e);
  t.match(err, { code: 'OPENFLOW_HANDSHAKE' });
  t.match(String(err), /OpenFlow15/);
});

t.test('replies are matched by xid; multipart parts are aggregated; errors are typed', async (t) => {
  const sw = await fakeSwitch(t);
  sw.script = (m) => {
    if (m.type === OFPT.MULTIPART_REQUEST) {
      // Two parts with REPLY_MORE, one without, and an unrelated echo in between.
      const part = (more: boolean, b: number): Uint8Array =>
        message(OFPT.MULTIPART_REPLY, m.xid, [...u16(17), ...u16(more ? 1 : 0), 0, 0, 0, 0, b]);
      return [part(true, 1), message(OFPT.ECHO_REQUEST, 999), part(true, 2), part(false, 3)];
    }
    if (m.type === OFPT.FLOW_MOD && m.raw[25] === 0) return [errorFor(m, 2, 9)];
    if (m.type === OFPT.GROUP_MOD) return [message(OFPT.ERROR, m.xid, [...u16(0xffff), ...u16(37), ...u32(0x2320)])];
    return undefined;
  };
  const conn = await OpenFlowConnection.connect({ endpoint: `unix:${sw.path}`, echoIntervalMs: 0 });
  t.teardown(() => conn.close());
  const parts = await conn.multipart(17);
  t.same(
    parts.map((p) => [...p]),
    [[1], [2], [3]],
    'all three parts, in order',
  );
  await eventually(() => sw.received.some((m) => m.type === OFPT.ECHO_REPLY && m.xid === 999), 'our echo reply');
  t.pass('the echo request of the switch was answered with its xid');
  const flow = parseFlow('table=2, priority=5,ip actions=group:7');
  const e2 = await applyBundle(conn, [op.addFlow(flow)]).catch((e: unknown) => e);
  t.match(e2, {
    code: 'OPENFLOW_ERROR',
    info: { codeName: 'OFPBAC_BAD_OUT_GROUP', request: { text: flow.toString() } },
  });
  t.match(String(e2), /OFPBAC_BAD_OUT_GROUP for OFPT_FLOW_MOD ADD: table=2, priority=5,ip actions=group:7/);
  const e3 = await conn.request(message(OFPT.GROUP_MOD, 0), OFPT.BARRIER_REPLY).catch((e: unknown) => e);
  t.match(e3, { info: { codeName: 'NXFMFC_INVALID_TLV_FIELD', experimenter: 0x2320 } }, 'Nicira experimenter error');
});

t.test('sendAll reports the failing message among several; later ones still apply', async (t) => {
  const sw = await fakeSwitch(t);
  let n = 0;
  sw.script = (m) => (m.type === OFPT.PACKET_OUT && ++n === 2 ? [errorFor(m, 1, 12)] : undefined);
  const conn = await OpenFlowConnection.connect({ endpoint: `unix:${sw.path}`, echoIntervalMs: 0 });
  t.teardown(() => conn.close());
  const msgs = [0, 1, 2].map((i) => trackedBytes(message(OFPT.PACKET_OUT, 0), () => ({ message: `packet ${i}` })));
  const err = await conn.sendAll(msgs).catch((e: unknown) => e);
  t.match(err, { info: { codeName: 'OFPBRC_BAD_PACKET', request: { message: 'packet 1' } } });
  t.equal(sw.received.filter((m) => m.type === OFPT.PACKET_OUT).length, 3);
});

t.test('a bundle with a rejected message is discarded, never committed', async (t) => {
  const sw = await fakeSwitch(t);
  let adds = 0;
  sw.script = (m) => (m.type === OFPT.BUNDLE_ADD_MESSAGE && ++adds === 2 ? [errorFor(m, 2, 4)] : undefined);
  const conn = await OpenFlowConnection.connect({ endpoint: `unix:${sw.path}`, echoIntervalMs: 0 });
  t.teardown(() => conn.close());
  const flows = [
    'table=1,priority=1 actions=drop',
    'table=1,priority=2 actions=output:99',
    'table=1,priority=3 actions=drop',
  ].map(parseFlow);
  const err = await applyBundle(conn, flows.map(op.addFlow)).catch((e: unknown) => e);
  t.match(err, { info: { codeName: 'OFPBAC_BAD_OUT_PORT', request: { index: 1, text: flows[1]?.toString() } } });
  const controls = sw.received
    .filter((m) => m.type === OFPT.BUNDLE_CONTROL)
    .map((m) => decodeBundleControl(m.raw).type);
  t.same(controls, [OFPBCT.OPEN_REQUEST, OFPBCT.DISCARD_REQUEST], 'opened, then discarded: no commit');
  const adds2 = sw.received.filter((m) => m.type === OFPT.BUNDLE_ADD_MESSAGE);
  t.equal(adds2.length, 3);
  const inner = adds2[0]?.raw.subarray(16);
  t.equal(readHeader(inner ?? new Uint8Array(8)).xid, adds2[0]?.xid, 'the embedded message has the same xid');
});

t.test('echo keepalive closes a silent switch; requests time out', async (t) => {
  const sw = await fakeSwitch(t);
  const clock = new FakeClock();
  sw.script = (m) => (m.type === OFPT.ECHO_REQUEST || m.type === OFPT.MULTIPART_REQUEST ? [] : undefined);
  const conn = await OpenFlowConnection.connect({
    endpoint: `unix:${sw.path}`,
    clock,
    echoIntervalMs: 1000,
    echoTimeoutMs: 2000,
    requestTimeoutMs: 5000,
  });
  t.teardown(() => conn.close());
  const pending = conn.multipart(17).catch((e: unknown) => e);
  await clock.advance(1000);
  await eventually(() => sw.received.some((m) => m.type === OFPT.ECHO_REQUEST), 'an echo request');
  t.notOk(conn.isClosed, 'still up while the echo is outstanding');
  await clock.advance(2000);
  const reason = await conn.closed;
  t.match(reason, { code: 'OPENFLOW_TIMEOUT' }, 'the silent switch is declared dead');
  t.match(await pending, { code: 'OPENFLOW_TIMEOUT' }, 'pending requests fail with the reason');

  const conn2 = await OpenFlowConnection.connect({
    endpoint: `unix:${sw.path}`,
    clock,
    echoIntervalMs: 0,
    requestTimeoutMs: 5000,
  });
  t.teardown(() => conn2.close());
  const p2 = conn2.multipart(17).catch((e: unknown) => e);
  await clock.advance(5000);
  t.match(await p2, { code: 'OPENFLOW_TIMEOUT', message: /no reply within 5000ms/ });
  t.notOk(conn2.isClosed, 'a request timeout does not close the connection');
});

t.test('the client reconnects with backoff and reruns its connect handlers', async (t) => {
  const clock = new FakeClock();
  const sw = new FakeSwitch(localEndpointPath(t, 'sw.mgmt'));
  const client = new OpenFlowClient({
    endpoint: `unix:${sw.path}`,
    clock,
    echoIntervalMs: 0,
    backoff: { initialMs: 100, maxMs: 400, jitter: 0 },
  });
  const seen: boolean[] = [];
  client.onConnect((_conn, info) => {
    seen.push(info.reconnect);
    return Promise.resolve();
  });
  const ac = new AbortController();
  const running = client.run(ac.signal);
  t.teardown(async () => {
    ac.abort();
    await running;
    await sw.close();
  });
  // Drives fake time in small steps while real I/O happens, until `cond` holds.
  const drive = async (cond: () => boolean, what: string): Promise<void> => {
    for (let i = 0; i < 500 && !cond(); i++) {
      await new Promise((r) => setTimeout(r, 5));
      await clock.advance(50);
    }
    if (!cond()) throw new Error(`never happened: ${what}`);
  };
  // Nothing listens yet: the client keeps retrying (100, 200, 400, 400 ms apart).
  let attempts = 0;
  const origConnect = OpenFlowConnection.connect.bind(OpenFlowConnection);
  OpenFlowConnection.connect = (o) => {
    attempts++;
    return origConnect(o);
  };
  t.teardown(() => {
    OpenFlowConnection.connect = origConnect;
  });
  await drive(() => attempts >= 4, 'four connect attempts');
  t.throws(() => client.connection(), { code: 'OPENFLOW_DISCONNECTED' }, 'not connected yet');
  await sw.listen();
  await drive(() => client.connectCount === 1, 'the first connection');
  const conn = await client.ready(AbortSignal.timeout(5000));
  t.same(seen, [false]);
  t.equal(client.connection(), conn);
  sw.dropAll();
  await conn.closed;
  await drive(() => client.connectCount === 2 && seen.length === 2, 'the reconnection');
  await client.ready(AbortSignal.timeout(5000));
  t.same(seen, [false, true], 'handlers rerun with reconnect=true');
});
