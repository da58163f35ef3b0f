/**
 * The hand-written cni.proto codec: golden bytes for each message (field numbers and wire types of
 * Antrea's cni.proto), round trips, unknown-field skipping and malformed input; and wire
 * compatibility with @grpc/grpc-js in both directions over a unix socket (our HTTP/2 client against
 * a grpc-js server, a grpc-js client against our CNI gRPC service).
 */
import t, { type Test } from 'tap';
import { createServer } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  cniMethodPath,
  type CniCmdRequest,
  type CniCmdResponse,
  decodeCniCmdRequest,
  decodeCniCmdResponse,
  encodeCniCmdRequest,
  encodeCniCmdResponse,
  ErrorCode,
} from '../../src/common/apis/cni/proto.ts';
import { cniServiceDefinition, CniGrpcService } from '../../src/common/agent/cniserver/grpc.ts';
import { GrpcCallError, GrpcStatus, grpcUnaryCall } from '../../src/common/cni/grpc-client.ts';
import { connectNodeStream } from '../../src/common/cni/node-stream.ts';
import { createCommandRunner } from '../../src/common/util/exec.ts';
import { BUN, NO_BUN } from '../helpers/bun.ts';
import { encodeHeaders, HpackDecoder, huffmanCode, huffmanDecode } from '../../src/common/cni/hpack.ts';
import { absentEndpointPath, localEndpointPath, WINDOWS } from '../helpers/local-endpoint.ts';

const args = {
  containerId: 'abc',
  netns: '/n',
  ifname: 'eth0',
  args: 'K=V',
  path: '/p',
  networkConfiguration: Buffer.from('{}'),
};

t.test('CniCmdRequest encodes with cni.proto field numbers', (t) => {
  const bytes = encodeCniCmdRequest({ cniArgs: args });
  // 0a = field 1 (cni_args), length-delimited; inside: 0a container_id, 12 netns, 1a ifname,
  // 22 args, 2a path, 32 network_configuration.
  t.equal(
    bytes.toString('hex'),
    '0a1c' + '0a03616263' + '12022f6e' + '1a0465746830' + '22034b3d56' + '2a022f70' + '32027b7d',
  );
  t.same(decodeCniCmdRequest(bytes), { cniArgs: { ...args, networkConfiguration: Buffer.from('{}') } });
  t.end();
});

t.test('empty fields are not written, and an empty request decodes to empty arguments', (t) => {
  const empty = { containerId: '', netns: '', ifname: '', args: '', path: '', networkConfiguration: new Uint8Array() };
  t.equal(encodeCniCmdRequest({ cniArgs: empty }).toString('hex'), '0a00');
  const d = decodeCniCmdRequest(new Uint8Array());
  t.equal(d.cniArgs.containerId, '');
  t.equal(d.cniArgs.networkConfiguration.length, 0);
  t.end();
});

t.test('CniCmdResponse and Error encode with cni.proto field numbers', (t) => {
  const ok: CniCmdResponse = { cniResult: Buffer.from('{"a":1}'), error: undefined };
  t.equal(encodeCniCmdResponse(ok).toString('hex'), '0a07' + Buffer.from('{"a":1}').toString('hex'));
  const err: CniCmdResponse = {
    cniResult: new Uint8Array(),
    error: { code: ErrorCode.IPAM_FAILURE, message: 'no', details: [{ typeUrl: 't', value: Buffer.from([1]) }] },
  };
  // 12 = field 2 (error); inside 08 65 = code 101, 12 02 "no", 1a 06 Any{0a 01 "t", 12 01 01}
  t.equal(encodeCniCmdResponse(err).toString('hex'), '120e' + '0865' + '12026e6f' + '1a06' + '0a0174' + '120101');
  const back = decodeCniCmdResponse(encodeCniCmdResponse(err));
  t.equal(back.error?.code, 101);
  t.equal(back.error?.message, 'no');
  t.same(
    back.error?.details.map((d) => [d.typeUrl, Buffer.from(d.value).toString('hex')]),
    [['t', '01']],
  );
  t.end();
});

t.test('large codes and long fields use multi-byte varints', (t) => {
  const long = 'x'.repeat(300);
  const back = decodeCniCmdRequest(encodeCniCmdRequest({ cniArgs: { ...args, args: long } }));
  t.equal(back.cniArgs.args, long);
  const r = decodeCniCmdResponse(
    encodeCniCmdResponse({ cniResult: new Uint8Array(), error: { code: 202, message: '', details: [] } }),
  );
  t.equal(r.error?.code, 202);
  t.end();
});

t.test('unknown fields of every wire type are skipped', (t) => {
  const known = encodeCniCmdResponse({ cniResult: Buffer.from('r'), error: undefined });
  const extra = Buffer.from([
    0x18,
    0x96,
    0x01, // field 3 varint 150
    0x21,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8, // field 4 fixed64
    0x2a,
    0x01,
    0x00, // field 5 bytes
    0x35,
    1,
    2,
    3,
    4, // field 6 fixed32
  ]);
  const d = decodeCniCmdResponse(Buffer.concat([extra, known]));
  t.equal(Buffer.from(d.cniResult).toString(), 'r');
  t.end();
});

t.test('malformed input is a ProtoDecodeError', (t) => {
  for (const bad of [
    [0x0a, 0x05, 0x01], // length past the end
    [0x0a], // missing length
    [0x08, 0xff], // truncated varint
    [0x0b], // wire type 3 (groups)
    [0x02, 0x00], // field number 0
    [0x08, 0x01], // field 1 with the wrong wire type
  ]) {
    t.throws(
      () => decodeCniCmdRequest(Buffer.from(bad)),
      { name: 'ProtoDecodeError', code: 'PROTO_DECODE_FAILED' },
      `rejects ${Buffer.from(bad).toString('hex')}`,
    );
  }
  t.end();
});

function tmpSocket(t: Test): string {
  return localEndpointPath(t, 'cni.sock');
}

/**
 * Serves a plain grpc-js server at `path`: bound by grpc-js itself on a unix socket; on Windows,
 * where grpc-js cannot listen on a named pipe, through a net.Server injecting its connections.
 */
async function serveGrpc(t: Test, server: grpc.Server, path: string): Promise<void> {
  t.teardown(() => server.forceShutdown());
  if (!WINDOWS) {
    await new Promise<void>((res, rej) =>
      server.bindAsync(`unix:${path}`, grpc.ServerCredentials.createInsecure(), (e) => (e === null ? res() : rej(e))),
    );
    return;
  }
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const listener = createServer((socket) => injector.injectConnection(socket));
  await new Promise<void>((res, rej) => {
    listener.once('error', rej);
    listener.listen(path, res);
  });
  t.teardown(() => new Promise<void>((res) => listener.close(() => res())));
}

/** One unary call with the plugin's HTTP/2 client; rejects with GrpcCallError. */
type UnaryCall = (endpoint: string, path: string, request: Uint8Array) => Promise<Buffer>;

const BUN_CALL = join(import.meta.dirname, '..', 'helpers', 'bun-grpc-call.ts');
const runner = createCommandRunner();

/** The client's two transports: node:net in this process, and Bun's sockets in a Bun process. */
const TRANSPORTS: readonly { name: string; skip: string | false; call: UnaryCall }[] = [
  { name: 'node:net', skip: false, call: (e, p, r) => grpcUnaryCall(connectNodeStream, e, p, r) },
  {
    name: "Bun's sockets (the standalone plugin's)",
    skip: WINDOWS ? 'the standalone plugin is built for Linux' : NO_BUN,
    call: async (e, p, r) => {
      const out = await runner.run(BUN ?? 'bun', [BUN_CALL, e, p], { input: r, timeoutMs: 30_000 });
      const res = JSON.parse(out.stdout) as { ok: boolean; response?: string; status?: number; message?: string };
      if (res.ok) return Buffer.from(res.response ?? '', 'base64');
      throw new GrpcCallError(res.status ?? -1, res.message ?? '');
    },
  },
];

for (const { name, skip, call: grpcCall } of TRANSPORTS) {
  t.test(`our HTTP/2 client over ${name} talks to a @grpc/grpc-js server`, { skip }, async (t) => {
    const sock = tmpSocket(t);
    const server = new grpc.Server();
    let seen: CniCmdRequest | undefined;
    server.addService(cniServiceDefinition(), {
      CmdAdd: (call: grpc.ServerUnaryCall<CniCmdRequest, CniCmdResponse>, cb: grpc.sendUnaryData<CniCmdResponse>) => {
        seen = call.request;
        cb(null, { cniResult: Buffer.from('{"ok":true}'), error: undefined });
      },
      CmdDel: (_call: unknown, cb: grpc.sendUnaryData<CniCmdResponse>) =>
        cb({ code: grpc.status.INTERNAL, details: 'boom: 100% broken' }),
    });
    await serveGrpc(t, server, sock);

    const resp = decodeCniCmdResponse(
      await grpcCall(sock, cniMethodPath('CmdAdd'), encodeCniCmdRequest({ cniArgs: args })),
    );
    t.equal(Buffer.from(resp.cniResult).toString(), '{"ok":true}');
    t.equal(seen?.cniArgs.containerId, 'abc');
    t.equal(Buffer.from(seen?.cniArgs.networkConfiguration ?? []).toString(), '{}');

    const del = await grpcCall(sock, cniMethodPath('CmdDel'), new Uint8Array()).catch((e: unknown) => e);
    t.ok(del instanceof GrpcCallError);
    t.equal((del as GrpcCallError).status, GrpcStatus.INTERNAL);
    t.equal((del as GrpcCallError).message, 'boom: 100% broken', 'grpc-message is percent-decoded');

    const unimpl = await grpcCall(sock, cniMethodPath('CmdGC'), new Uint8Array()).catch((e: unknown) => e);
    t.equal((unimpl as GrpcCallError).status, GrpcStatus.UNIMPLEMENTED);

    const missing = await grpcCall(absentEndpointPath(), cniMethodPath('CmdAdd'), new Uint8Array()).catch(
      (e: unknown) => e,
    );
    t.equal((missing as GrpcCallError).status, GrpcStatus.UNAVAILABLE);
    t.match((missing as GrpcCallError).message, /ENOENT/); // also what Windows says for a missing pipe
  });

  t.test(`large requests and answers flow through HTTP/2 flow control, over ${name}`, { skip }, async (t) => {
    const sock = tmpSocket(t);
    const server = new grpc.Server();
    server.addService(cniServiceDefinition(), {
      CmdAdd: (call: grpc.ServerUnaryCall<CniCmdRequest, CniCmdResponse>, cb: grpc.sendUnaryData<CniCmdResponse>) =>
        cb(null, { cniResult: Buffer.alloc(call.request.cniArgs.networkConfiguration.length, 0x62), error: undefined }),
    });
    await serveGrpc(t, server, sock);
    for (const size of [0, 16_000, 70_000, 300_000, 3_000_000]) {
      const req = encodeCniCmdRequest({ cniArgs: { ...args, networkConfiguration: Buffer.alloc(size, 0x61) } });
      const resp = decodeCniCmdResponse(await grpcCall(sock, cniMethodPath('CmdAdd'), req));
      t.equal(resp.cniResult.length, size, `${size} bytes each way`);
      t.ok(
        resp.cniResult.every((b) => b === 0x62),
        'the answer arrives intact',
      );
    }
  });
}

t.test('a @grpc/grpc-js client talks to our CNI gRPC service', async (t) => {
  const sock = tmpSocket(t);
  const ac = new AbortController();
  const svc = new CniGrpcService({
    socketPath: sock,
    handler: {
      handle: (method, req) =>
        Promise.resolve({
          cniResult: Buffer.from(`${method}:${req.cniArgs.containerId}`),
          error: method === 'CmdDel' ? { code: ErrorCode.TRY_AGAIN_LATER, message: 'later', details: [] } : undefined,
        }),
    },
  });
  const running = svc.run(ac.signal);
  await svc.ready;
  const Client = grpc.makeGenericClientConstructor(cniServiceDefinition(), 'Cni');
  const client = new Client(`unix:${sock}`, grpc.credentials.createInsecure()) as unknown as Record<
    string,
    (req: CniCmdRequest, cb: (e: grpc.ServiceError | null, r?: CniCmdResponse) => void) => void
  >;
  const call = (m: string): Promise<CniCmdResponse> =>
    new Promise((res, rej) => client[m]!({ cniArgs: args }, (e, r) => (e !== null ? rej(e) : res(r!))));
  t.equal(Buffer.from((await call('CmdAdd')).cniResult).toString(), 'CmdAdd:abc');
  t.equal((await call('CmdDel')).error?.code, ErrorCode.TRY_AGAIN_LATER);
  t.equal(Buffer.from((await call('CmdStatus')).cniResult).toString(), 'CmdStatus:abc');
  (client as unknown as grpc.Client).close();
  ac.abort();
  await running;
});

t.test('HPACK: the Huffman table and RFC 7541 Appendix C examples', (t) => {
  t.same(huffmanCode(0), { code: 0x1ff8, bits: 13 });
  t.same(huffmanCode(48), { code: 0x0, bits: 5 }, "'0'");
  t.same(huffmanCode(32), { code: 0x14, bits: 6 }, "' '");
  t.same(huffmanCode(256), { code: 0x3fffffff, bits: 30 }, 'EOS');
  const d = new HpackDecoder();
  // C.4.1 and C.4.2: requests with Huffman-coded strings and the dynamic table.
  t.same(d.decode(Buffer.from('828684418cf1e3c2e5f23a6ba0ab90f4ff', 'hex')), [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
  ]);
  t.same(d.decode(Buffer.from('828684be5886a8eb10649cbf', 'hex')), [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
    ['cache-control', 'no-cache'],
  ]);
  t.same(
    new HpackDecoder().decode(
      encodeHeaders([
        ['te', 'trailers'],
        ['x', 'y'.repeat(200)],
      ]),
    ),
    [
      ['te', 'trailers'],
      ['x', 'y'.repeat(200)],
    ],
  );
  t.throws(() => huffmanDecode(Buffer.from([0x00])), { name: 'HpackError' }, 'padding that is not all ones');
  t.throws(() => new HpackDecoder().decode(Buffer.from([0xff, 0x00])), { name: 'HpackError' }, 'index out of range');
  t.end();
});
