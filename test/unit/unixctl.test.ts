/**
 * The unixctl client against a fake daemon on a Unix socket: the request ovs-appctl would send,
 * the text result, a command error, a missing socket; and how the vswitchd socket is found.
 */
import t, { type Test } from 'tap';
import { createServer, type Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unixctl, vswitchdControlSocket } from '../../src/common/ovs/unixctl.ts';
import { isOvsdbError } from '../../src/common/ovs/ovsdb/errors.ts';

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'unixctl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A daemon answering each request with `answer(method, params)`. */
async function fakeDaemon(
  t: Test,
  path: string,
  answer: (method: string, params: unknown) => { result?: string; error?: string },
): Promise<unknown[]> {
  const seen: unknown[] = [];
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('data', (b) => {
      const req = JSON.parse(b.toString()) as { method: string; params: unknown; id: number };
      seen.push(req);
      const a = answer(req.method, req.params);
      s.write(JSON.stringify({ id: req.id, result: a.result ?? null, error: a.error ?? null }));
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return seen;
}

t.test('a command is one JSON-RPC request with string params; its text output is the result', async (t) => {
  const dir = tempDir(t);
  const sock = join(dir, 'd.ctl');
  const seen = await fakeDaemon(t, sock, (m) =>
    m === 'dpctl/ct-get-tcp-seq-chk'
      ? { result: 'TCP sequence checking: enabled\n' }
      : { error: `"${m}" is not a valid command` },
  );
  t.equal(await unixctl(sock, 'dpctl/ct-get-tcp-seq-chk'), 'TCP sequence checking: enabled\n');
  t.match(seen[0], { method: 'dpctl/ct-get-tcp-seq-chk', params: [] });
  const err = await unixctl(sock, 'nope', ['a', 'b']).catch((e: unknown) => e);
  t.ok(isOvsdbError(err) && err.code === 'OVSDB_RPC_ERROR', 'a failed command is OVSDB_RPC_ERROR');
  t.match(String(err), /not a valid command/, "with the daemon's message");
  t.match(seen[1], { method: 'nope', params: ['a', 'b'] });
});

t.test('a missing socket is OVSDB_CONNECT_FAILED', async (t) => {
  const err = await unixctl(join(tempDir(t), 'absent.ctl'), 'version').catch((e: unknown) => e);
  t.ok(isOvsdbError(err) && err.code === 'OVSDB_CONNECT_FAILED');
});

t.test("ovs-vswitchd's socket: the fixed name, else the one its pidfile names, else an error", (t) => {
  const dir = tempDir(t);
  const err = (() => {
    try {
      return vswitchdControlSocket(dir);
    } catch (e) {
      return e;
    }
  })();
  t.ok(isOvsdbError(err) && err.code === 'OVSDB_CONNECT_FAILED', 'nothing there');
  t.match(String(err), dir);
  writeFileSync(join(dir, 'ovs-vswitchd.pid'), '4242\n');
  t.throws(() => vswitchdControlSocket(dir), /no ovs-vswitchd control socket/, 'a pidfile without its socket');
  writeFileSync(join(dir, 'ovs-vswitchd.4242.ctl'), '');
  t.equal(vswitchdControlSocket(dir), join(dir, 'ovs-vswitchd.4242.ctl'), 'named by the pidfile (ovs-ctl)');
  writeFileSync(join(dir, 'ovs-vswitchd.ctl'), '');
  t.equal(vswitchdControlSocket(dir), join(dir, 'ovs-vswitchd.ctl'), 'the fixed name first (--unixctl)');
  t.end();
});
