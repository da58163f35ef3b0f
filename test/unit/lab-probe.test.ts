/**
 * The Pod program's servers and probes, and the prober's matrix, on loopback addresses of the test's
 * own namespace (no root needed: unprivileged ports on 127.0.0.2-4).
 */
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PodServer, runProbe } from '../../src/lab/pod-server.ts';
import {
  ContinuousProber,
  firstVerdict,
  holdsVerdict,
  outcomeMark,
  PodControlClient,
  probeMatrix,
  renderMatrix,
} from '../../src/lab/probe.ts';

const base = 20000 + Math.floor(Math.random() * 20000);

function dir(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'podsrv-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}
async function pod(t: Test, d: string, name: string, ip: string, tcp: number[], udp: number[]): Promise<PodServer> {
  const s = new PodServer({
    hostname: name,
    socketPath: join(d, `${name}.sock`),
    tcpPorts: tcp,
    udpPorts: udp,
    listenHost: ip,
  });
  await s.start();
  t.teardown(() => s.stop());
  return s;
}

t.test('probes: connected with the server hostname, refused, no answer, unsupported', async (t) => {
  const d = dir(t);
  await pod(t, d, 'a', '127.0.0.2', [base], [base]);
  const tcp = await runProbe({ host: '127.0.0.2', port: base, protocol: 'TCP' });
  t.match(tcp, { outcome: 'connected', reply: 'a' });
  const udp = await runProbe({ host: '127.0.0.2', port: base, protocol: 'UDP' });
  t.match(udp, { outcome: 'connected', reply: 'a' });
  t.match(await runProbe({ host: '127.0.0.2', port: base + 1, protocol: 'TCP' }), {
    outcome: 'refused',
    error: /ECONNREFUSED/,
  });
  t.match(await runProbe({ host: '127.0.0.2', port: base + 1, protocol: 'UDP' }), { outcome: 'refused' });
  t.match(await runProbe({ host: '127.0.0.2', port: base, protocol: 'SCTP' }), { outcome: 'unsupported' });

  // A UDP server that never answers, and a TCP listener whose backlog is full, look like drops.
  const mute = createSocket('udp4');
  await new Promise<void>((r) => mute.bind(base + 2, '127.0.0.2', () => r()));
  t.teardown(() => mute.close());
  const silent = await runProbe({ host: '127.0.0.2', port: base + 2, protocol: 'UDP', timeoutMs: 200 });
  t.match(silent, { outcome: 'timeout' });
  t.ok(silent.ms >= 190 && silent.ms < 1000, `the timeout is honoured (${silent.ms}ms)`);
});

t.test('the control socket answers status and probes, and rejects bad requests', async (t) => {
  const d = dir(t);
  const s = await pod(t, d, 'b', '127.0.0.3', [base + 10, base + 11], [base + 10]);
  t.same(s.status().tcp, [base + 10, base + 11]);
  const c = await PodControlClient.connect(join(d, 'b.sock'));
  t.teardown(() => c.close());
  t.match(await c.status(), { name: 'b', pid: process.pid, tcp: [base + 10, base + 11], udp: [base + 10] });
  const results = await Promise.all([
    c.probe({ host: '127.0.0.3', port: base + 10, protocol: 'TCP' }),
    c.probe({ host: '127.0.0.3', port: base + 11, protocol: 'TCP' }),
    c.probe({ host: '127.0.0.3', port: base + 12, protocol: 'TCP' }),
  ]);
  t.same(
    results.map((r) => outcomeMark(r)),
    ['.', '.', 'R'],
    'answers are matched to concurrent requests',
  );
  await t.rejects(c.probe({ host: '127.0.0.3', port: 0.5, protocol: 'TCP' }), {
    code: 'PROBE_FAILED',
    message: /needs host, port and protocol/,
  });
  const raw = await new Promise<string>((resolve) => {
    const sock = connect(join(d, 'b.sock'), () => sock.write('not json\n{"id":7,"op":"dance"}\n'));
    let buf = '';
    sock.on('data', (b: Buffer) => {
      buf += b.toString();
      if (buf.split('\n').length > 2) {
        sock.destroy();
        resolve(buf);
      }
    });
  });
  t.match(raw, /"id":-1,"error":"bad request/);
  t.match(raw, /"id":7,"error":"unknown op \\"dance\\""/);
  await t.rejects(PodControlClient.connect(join(d, 'absent.sock')), { code: 'PROBE_SOCKET' });
});

t.test('a Pod program whose port is taken fails to start and leaves nothing open', async (t) => {
  const d = dir(t);
  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(base + 20, '127.0.0.4', () => r()));
  t.teardown(() => squatter.close());
  const s = new PodServer({
    hostname: 'c',
    socketPath: join(d, 'c.sock'),
    tcpPorts: [base + 21, base + 20],
    udpPorts: [],
    listenHost: '127.0.0.4',
  });
  await t.rejects(s.start(), { code: 'EADDRINUSE' });
  t.match(
    await runProbe({ host: '127.0.0.4', port: base + 21, protocol: 'TCP' }),
    { outcome: 'refused' },
    'the first port was closed again',
  );
  // A stale socket file from a killed program is replaced.
  writeFileSync(join(d, 'c2.sock'), '');
  const s2 = new PodServer({
    hostname: 'c2',
    socketPath: join(d, 'c2.sock'),
    tcpPorts: [],
    udpPorts: [],
    listenHost: '127.0.0.4',
  });
  await s2.start();
  await s2.stop();
  await s2.stop();
});

t.test('the matrix probes every ordered pair in parallel and renders one row per source', async (t) => {
  const d = dir(t);
  await pod(t, d, 'xa', '127.0.0.2', [base + 30], [base + 30]);
  await pod(t, d, 'xb', '127.0.0.3', [base + 30], []);
  await pod(t, d, 'xc', '127.0.0.4', [], []);
  const pods = [
    { key: 'x/a', ip: '127.0.0.2', socket: join(d, 'xa.sock') },
    { key: 'x/b', ip: '127.0.0.3', socket: join(d, 'xb.sock') },
    { key: 'x/c', ip: '127.0.0.4', socket: join(d, 'xc.sock') },
    { key: 'x/gone', ip: '127.0.0.5', socket: join(d, 'gone.sock') },
  ];
  const tcp = await probeMatrix(pods, base + 30, 'TCP');
  t.same(renderMatrix(tcp), [
    'from\\to    x/a    x/b    x/c x/gone',
    'x/a          .      .      R      R',
    'x/b          .      .      R      R',
    'x/c          .      .      R      R',
    'x/gone       E      E      E      E',
  ]);
  t.equal(tcp.cells.get('x/a')?.get('x/b')?.reply, 'xb', 'the reply names the server that answered');
  const udp = await probeMatrix(pods.slice(0, 3), base + 30, 'UDP', { pairs: (f, to) => f !== to });
  t.same(renderMatrix(udp), ['from\\to xa xb xc', 'xa       -  R  R', 'xb       .  -  R', 'xc       .  R  -']);
});

t.test('the continuous prober keeps every sample per pair and tells when a verdict changed', async (t) => {
  const d = dir(t);
  await pod(t, d, 'ya', '127.0.0.2', [], []);
  await pod(t, d, 'yb', '127.0.0.3', [], []);
  const a = { key: 'y/a', ip: '127.0.0.2', socket: join(d, 'ya.sock') };
  const b = { key: 'y/b', ip: '127.0.0.3', socket: join(d, 'yb.sock') };
  const gone = { key: 'y/gone', ip: '127.0.0.5', socket: join(d, 'gone.sock') };
  const prober = new ContinuousProber({
    pairs: [
      { from: a, to: b },
      { from: gone, to: a },
    ],
    port: base + 40,
    protocol: 'TCP',
    intervalMs: 20,
    timeoutMs: 300,
  });
  const ac = new AbortController();
  const running = prober.run(ac.signal);
  const enough = async (key: string, since: number, n: number): Promise<void> => {
    while (prober.samples(key).filter((x) => x.at >= since).length < n) await new Promise((r) => setTimeout(r, 10));
  };
  await enough('y/a>y/b', 0, 3);
  t.ok(holdsVerdict(prober.samples('y/a>y/b'), 0, false, 3), 'nothing listens yet: not connected');
  t.match(prober.samples('y/a>y/b')[0], { outcome: 'refused' });
  // The server starts listening: the prober sees the new verdict.
  const changedAt = performance.now();
  const server = createServer((s) => s.end('yb'));
  await new Promise<void>((r) => server.listen(base + 40, '127.0.0.3', () => r()));
  t.teardown(() => server.close());
  await enough('y/a>y/b', changedAt, 3);
  const first = firstVerdict(prober.samples('y/a>y/b'), changedAt, true);
  t.ok(first !== undefined && first.end >= changedAt, 'the first connected sample answered after the change');
  t.ok(holdsVerdict(prober.samples('y/a>y/b'), changedAt + 1, true, 3), 'and stays connected');
  t.notOk(holdsVerdict(prober.samples('y/a>y/b'), changedAt + 1, true, 1000), 'too few samples hold nothing');
  await enough('y/gone>y/a', 0, 2);
  ac.abort();
  await running;
  t.ok(
    prober.samples('y/gone>y/a').every((x) => x.outcome === 'error'),
    'a source whose socket is gone records errors (and is tried again)',
  );
  t.same([...prober.all().keys()], ['y/a>y/b', 'y/gone>y/a']);
  const after = prober.samples('y/a>y/b').length;
  await new Promise((r) => setTimeout(r, 60));
  t.equal(prober.samples('y/a>y/b').length, after, 'nothing is probed after the signal aborted');
});
