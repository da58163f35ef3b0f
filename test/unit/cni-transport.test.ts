/**
 * The CNI server's transport: a `node:net` listener on a path whose connections are injected into
 * the grpc-js server (Server.createConnectionInjector). On Windows the path is a named pipe
 * (\\.\pipe\...), which grpc-js cannot bind itself; here on Linux the same code runs over a unix
 * socket, driven by the real antrea-cni plugin (on Node, and as the standalone executable built with
 * Bun), by the plugin's HTTP/2 client, and by a real @grpc/grpc-js client. The test picks a named pipe when it runs on Windows.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { cniMethodPath, type CniCmdRequest, type CniCmdResponse, ErrorCode } from '../../src/common/apis/cni/proto.ts';
import {
  cniServiceDefinition,
  CniGrpcService,
  isNamedPipePath,
  listenPath,
} from '../../src/common/agent/cniserver/grpc.ts';
import { grpcUnaryCall } from '../../src/common/cni/grpc-client.ts';
import { buildStandalonePlugin } from '../../src/common/cni/compile.ts';
import { connectNodeStream } from '../../src/common/cni/node-stream.ts';
import { createCommandRunner } from '../../src/common/util/exec.ts';
import { NO_BUN, STANDALONE } from '../helpers/bun.ts';
import { encodeCniCmdRequest, decodeCniCmdResponse } from '../../src/common/apis/cni/proto.ts';
import { localEndpointPath, WINDOWS } from '../helpers/local-endpoint.ts';

const ROOT = join(import.meta.dirname, '..', '..');

function endpointPath(t: Test): string {
  return localEndpointPath(t, 'cni.sock');
}

function runPlugin(
  argv: readonly string[],
  endpoint: string,
  command: string,
  stdin: string,
): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const [cmd = '', ...args] = argv;
    const child = spawn(cmd, args, {
      env: {
        ...process.env,
        ANTREA_CNI_SOCKET: endpoint,
        CNI_COMMAND: command,
        CNI_CONTAINERID: 'c0ffee',
        CNI_NETNS: WINDOWS ? 'c0ffee00-0000-4000-8000-000000000001' : '/var/run/netns/p1',
        CNI_IFNAME: 'eth0',
        CNI_PATH: ROOT,
        CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=web',
      },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout }));
    child.stdin.end(stdin);
  });
}

t.test('isNamedPipePath', (t) => {
  t.ok(isNamedPipePath('\\\\.\\pipe\\cnisock'));
  t.ok(isNamedPipePath('//./pipe/containerd-containerd'));
  t.ok(isNamedPipePath('\\\\?\\pipe\\x'));
  t.notOk(isNamedPipePath('/var/run/antrea/cni.sock'));
  t.notOk(isNamedPipePath('C:\\var\\run\\antrea\\cni.sock'));
  t.end();
});

t.test('the injected-connection listener serves the plugin, our client and grpc-js', async (t) => {
  const path = endpointPath(t);
  const seen: string[] = [];
  const ac = new AbortController();
  const svc = new CniGrpcService({
    socketPath: path,
    handler: {
      handle(method, req) {
        seen.push(`${method} ${req.cniArgs.containerId} ${req.cniArgs.ifname}`);
        if (method === 'CmdAdd') {
          const result = {
            cniVersion: '1.0.0',
            interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:05', sandbox: req.cniArgs.netns }],
            ips: [{ address: '10.10.1.5/24', gateway: '10.10.1.1', interface: 0 }],
          };
          return Promise.resolve({ cniResult: Buffer.from(JSON.stringify(result)), error: undefined });
        }
        if (method === 'CmdDel') {
          return Promise.resolve({
            cniResult: new Uint8Array(),
            error: { code: ErrorCode.TRY_AGAIN_LATER, message: 'agent not ready', details: [] },
          });
        }
        return Promise.resolve({ cniResult: new Uint8Array(), error: undefined });
      },
    },
  });
  const running = svc.run(ac.signal);
  await svc.ready;
  if (!WINDOWS) t.equal(statSync(path).mode & 0o777, 0o600, 'the socket is owner-only');

  const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'antrea', type: 'antrea', ipam: { type: 'host-local' } });
  const plugins: readonly { form: string; skip: string | false; argv: () => Promise<string[]> }[] = [
    {
      form: 'on Node',
      skip: false,
      argv: () => Promise.resolve([process.execPath, join(ROOT, 'src', 'cmd', 'antrea-cni.ts')]),
    },
    {
      form: 'standalone executable',
      skip: WINDOWS ? 'the standalone plugin is built for Linux' : NO_BUN,
      argv: async () => {
        const dir = mkdtempSync(join(tmpdir(), 'ats-cni-exe-'));
        t.teardown(() => rmSync(dir, { recursive: true, force: true }));
        const build = STANDALONE ?? { bunPath: 'bun', entry: '' };
        return [
          await buildStandalonePlugin(createCommandRunner(), build.bunPath, build.entry, join(dir, 'antrea-cni')),
        ];
      },
    },
  ];
  let ran = 0;
  for (const plugin of plugins) {
    await t.test(`the real plugin, ${plugin.form}`, { skip: plugin.skip }, async (t) => {
      const argv = await plugin.argv();
      const add = await runPlugin(argv, path, 'ADD', conf);
      t.equal(add.code, 0, 'ADD succeeds');
      t.match(JSON.parse(add.stdout), { cniVersion: '1.0.0', ips: [{ address: '10.10.1.5/24' }] });
      const del = await runPlugin(argv, path, 'DEL', conf);
      t.equal(del.code, 1, 'an error answer is a failed plugin run');
      t.match(JSON.parse(del.stdout), { code: ErrorCode.TRY_AGAIN_LATER, msg: /agent not ready/ });
      ran++;
    });
  }

  const req: CniCmdRequest = {
    cniArgs: {
      containerId: 'c1',
      netns: 'n',
      ifname: 'eth1',
      args: '',
      path: '',
      networkConfiguration: Buffer.from(conf),
    },
  };
  const viaClient = decodeCniCmdResponse(
    await grpcUnaryCall(connectNodeStream, path, cniMethodPath('CmdCheck'), encodeCniCmdRequest(req)),
  );
  t.equal(viaClient.error, undefined, "the plugin's HTTP/2 client");

  if (WINDOWS) {
    t.comment('grpc-js clients cannot dial a named pipe: that part runs on Linux and macOS');
  } else {
    const Client = grpc.makeGenericClientConstructor(cniServiceDefinition(), 'Cni');
    const client = new Client(`unix:${path}`, grpc.credentials.createInsecure()) as unknown as Record<
      string,
      (r: CniCmdRequest, cb: (e: grpc.ServiceError | null, r?: CniCmdResponse) => void) => void
    >;
    const resp = await new Promise<CniCmdResponse>((res, rej) =>
      client['CmdStatus']!(req, (e, r) => (e !== null || r === undefined ? rej(e ?? new Error('no answer')) : res(r))),
    );
    t.equal(resp.error, undefined, 'a real grpc-js client');
    (client as unknown as grpc.Client).close();
  }
  t.same(seen, [
    ...Array.from({ length: ran }, () => ['CmdAdd c0ffee eth0', 'CmdDel c0ffee eth0']).flat(),
    'CmdCheck c1 eth1',
    ...(WINDOWS ? [] : ['CmdStatus c1 eth1']),
  ]);

  ac.abort();
  await running;
  const after = await grpcUnaryCall(connectNodeStream, path, cniMethodPath('CmdAdd'), encodeCniCmdRequest(req)).catch(
    (e: unknown) => e,
  );
  t.match(after, { status: 14 }, 'stopped: nothing listens any more');
});

t.test('a path in use is a typed error naming it', async (t) => {
  const path = endpointPath(t);
  // Windows: another server holds the pipe. Elsewhere a stale socket is replaced by design, so the
  // failure is a directory that cannot be made (a regular file is in the way).
  const other = createServer();
  if (WINDOWS) await listenPath(other, path);
  else writeFileSync(path, 'not a directory');
  t.teardown(() => other.close());
  const svc = new CniGrpcService({
    socketPath: WINDOWS ? path : join(path, 'x.sock'),
    handler: { handle: () => Promise.reject(new Error('unused')) },
  });
  await t.rejects(svc.run(new AbortController().signal), { code: 'CNI_SOCKET_FAILED', message: /cannot listen on/ });
});
