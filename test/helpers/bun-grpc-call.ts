/**
 * Run by Bun, not Node: one unary call with the plugin's gRPC client over Bun's sockets
 * (standalone-io.ts), so tests can drive the standalone plugin's transport against real servers.
 *
 *   bun test/helpers/bun-grpc-call.ts ENDPOINT METHOD_PATH < request bytes
 *
 * Prints one JSON line: {"ok":true,"response":BASE64} or {"ok":false,"status":N,"message":"..."}.
 */
import { GrpcCallError, grpcUnaryCall } from '../../src/common/cni/grpc-client.ts';
import { connectBunStream, standaloneIo } from '../../src/common/cni/standalone-io.ts';

const io = standaloneIo();
const [endpoint, path] = process.argv.slice(2);
if (endpoint === undefined || path === undefined) {
  io.exit({ stdout: '', stderr: 'usage: bun-grpc-call.ts ENDPOINT METHOD_PATH < request\n', exitCode: 2 });
} else {
  const request = await io.readStdin();
  let line: unknown;
  try {
    line = {
      ok: true,
      response: Buffer.from(await grpcUnaryCall(connectBunStream, endpoint, path, request)).toString('base64'),
    };
  } catch (err) {
    line =
      err instanceof GrpcCallError
        ? { ok: false, status: err.status, message: err.message }
        : { ok: false, status: -1, message: String(err) };
  }
  io.exit({ stdout: JSON.stringify(line) + '\n', stderr: '', exitCode: 0 });
}
