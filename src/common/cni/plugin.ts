/**
 * The antrea-cni plugin's logic (what libcni's skel plus Antrea's `pkg/cni` client do): read the
 * CNI environment and stdin, validate them as the spec requires, answer VERSION locally, forward
 * ADD, DEL, CHECK, GC and STATUS to the agent over gRPC, and turn the answer into the spec's stdout
 * and exit code. It holds no state; the agent does the work.
 *
 * Error mapping (one place): agent errors are printed with their code; gRPC UNIMPLEMENTED becomes
 * INCOMPATIBLE_API_VERSION (202); UNAVAILABLE and DEADLINE_EXCEEDED become TRY_AGAIN_LATER (11), or
 * PLUGIN_NOT_AVAILABLE (50) for STATUS; any other RPC failure becomes UNKNOWN_RPC_ERROR (201).
 */
import {
  type CniCmdArgs,
  type CniMethod,
  cniMethodPath,
  decodeCniCmdResponse,
  encodeCniCmdRequest,
} from '../apis/cni/proto.ts';
import {
  CniError,
  compareCniVersions,
  CURRENT_CNI_VERSION,
  formatCniError,
  parseCniArgs,
  parseNetworkConfig,
  SUPPORTED_CNI_VERSIONS,
  validateContainerId,
  validateIfName,
} from '../apis/cni/spec.ts';
import { GrpcCallError, GrpcStatus, grpcUnaryCall, type StreamConnector } from './grpc-client.ts';

export const CNI_COMMANDS = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'] as const;
export type CniCommand = (typeof CNI_COMMANDS)[number];

/** Environment variables each command requires (skel's table; GC needs CNI_PATH, STATUS nothing). */
const REQUIRED_ENV: Record<CniCommand, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  GC: ['CNI_PATH'],
  STATUS: [],
  VERSION: [],
};

const RPC: Record<Exclude<CniCommand, 'VERSION'>, CniMethod> = {
  ADD: 'CmdAdd',
  DEL: 'CmdDel',
  CHECK: 'CmdCheck',
  GC: 'CmdGC',
  STATUS: 'CmdStatus',
};

/** The lowest config version that allows a command (skel: CHECK 0.4.0; GC and STATUS 1.1.0). */
const MIN_VERSION: Partial<Record<CniCommand, string>> = { CHECK: '0.4.0', GC: '1.1.0', STATUS: '1.1.0' };

/** Sends one request to the agent and resolves with the response bytes (throws GrpcCallError). */
export type CniRpc = (method: CniMethod, request: Uint8Array) => Promise<Uint8Array>;

export interface PluginInput {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: Uint8Array;
}

export interface PluginOutput {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/** What `antrea-cni` prints on stderr when run without CNI_COMMAND. */
export const PLUGIN_ABOUT = 'Antrea CNI (antrea-ts)';

function errorOutput(err: CniError, version: string): PluginOutput {
  return { stdout: JSON.stringify(formatCniError(err, version)) + '\n', stderr: '', exitCode: 1 };
}

/** Maps a failed call to the agent to the CNI error the runtime sees. */
export function rpcFailureToCniError(err: unknown, command: CniCommand): CniError {
  if (err instanceof GrpcCallError) {
    if (err.status === GrpcStatus.UNIMPLEMENTED) {
      return new CniError(
        'INCOMPATIBLE_API_VERSION',
        `the agent does not implement ${command} (incompatible Antrea CNI API version): ${err.message}`,
      );
    }
    if (err.status === GrpcStatus.UNAVAILABLE || err.status === GrpcStatus.DEADLINE_EXCEEDED) {
      if (command === 'STATUS')
        return new CniError('PLUGIN_NOT_AVAILABLE', `the agent is not reachable: ${err.message}`);
      return new CniError('TRY_AGAIN_LATER', `the agent is not reachable, try again later: ${err.message}`);
    }
    return new CniError('UNKNOWN_RPC_ERROR', `gRPC error ${err.status} from the agent: ${err.message}`);
  }
  return new CniError('UNKNOWN_RPC_ERROR', `calling the agent failed: ${String(err)}`);
}

/** Runs one plugin invocation. Never throws: every failure becomes the spec's error output. */
export async function runPlugin(input: PluginInput, rpc: CniRpc): Promise<PluginOutput> {
  const env = (k: string): string => input.env[k] ?? '';
  const cmd = env('CNI_COMMAND');
  if (cmd === '') {
    return {
      stdout: '',
      stderr: `${PLUGIN_ABOUT}\nCNI protocol versions supported: ${SUPPORTED_CNI_VERSIONS.join(', ')}\n`,
      exitCode: 0,
    };
  }
  if (!(CNI_COMMANDS as readonly string[]).includes(cmd)) {
    return errorOutput(
      new CniError('INVALID_ENVIRONMENT_VARIABLES', `unknown CNI_COMMAND: ${cmd}`),
      CURRENT_CNI_VERSION,
    );
  }
  const command = cmd as CniCommand;
  const missing = REQUIRED_ENV[command].filter((k) => env(k) === '');
  if (missing.length > 0) {
    return errorOutput(
      new CniError('INVALID_ENVIRONMENT_VARIABLES', `required env variables [${missing.join(',')}] missing`),
      CURRENT_CNI_VERSION,
    );
  }
  if (command === 'VERSION') {
    const out = { cniVersion: CURRENT_CNI_VERSION, supportedVersions: SUPPORTED_CNI_VERSIONS };
    return { stdout: JSON.stringify(out) + '\n', stderr: '', exitCode: 0 };
  }

  let version: string = CURRENT_CNI_VERSION;
  try {
    const conf = parseNetworkConfig(input.stdin);
    version = conf.cniVersion;
    if (command === 'ADD' || command === 'DEL' || command === 'CHECK') {
      validateContainerId(env('CNI_CONTAINERID'));
      validateIfName(env('CNI_IFNAME'));
      parseCniArgs(env('CNI_ARGS'));
    }
    const min = MIN_VERSION[command];
    if (min !== undefined && compareCniVersions(conf.cniVersion, min) < 0) {
      throw new CniError('INCOMPATIBLE_CNI_VERSION', `config version does not allow ${command}`);
    }
  } catch (err) {
    if (err instanceof CniError) return errorOutput(err, version);
    return errorOutput(new CniError('UNKNOWN', String(err)), version);
  }

  const args: CniCmdArgs = {
    containerId: env('CNI_CONTAINERID'),
    netns: env('CNI_NETNS'),
    ifname: env('CNI_IFNAME'),
    args: env('CNI_ARGS'),
    path: env('CNI_PATH'),
    networkConfiguration: input.stdin,
  };
  let responseBytes: Uint8Array;
  try {
    responseBytes = await rpc(RPC[command], encodeCniCmdRequest({ cniArgs: args }));
  } catch (err) {
    return errorOutput(rpcFailureToCniError(err, command), version);
  }
  let response;
  try {
    response = decodeCniCmdResponse(responseBytes);
  } catch (err) {
    return errorOutput(new CniError('UNKNOWN_RPC_ERROR', `undecodable answer from the agent: ${String(err)}`), version);
  }
  if (response.error !== undefined) {
    // Printed with the agent's number, also when cni.proto does not name it.
    const e = { cniCode: response.error.code, message: response.error.message };
    return { stdout: JSON.stringify(formatCniError(e, version)) + '\n', stderr: '', exitCode: 1 };
  }
  if (command === 'ADD') {
    const text = Buffer.from(response.cniResult).toString('utf8');
    return { stdout: text.endsWith('\n') ? text : text + '\n', stderr: '', exitCode: 0 };
  }
  return { stdout: '', stderr: '', exitCode: 0 };
}

/**
 * What a plugin process takes from the runtime it runs on: Node (src/cmd/antrea-cni.ts) or the
 * standalone executable (src/cmd/antrea-cni-standalone.ts).
 */
export interface PluginProcessIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads all of stdin; a closed or empty stdin gives no bytes. Rejects on an I/O failure. */
  readStdin(): Promise<Uint8Array>;
  /** How the gRPC call reaches the agent. */
  readonly connect: StreamConnector;
  /** Prints stderr, then stdout, and ends the process with the exit code once both are out. */
  exit(out: PluginOutput): void;
}

/**
 * One run of the plugin process: reads the request (stdin only for commands that take a
 * configuration), forwards it to the agent at $ANTREA_CNI_SOCKET or `defaultEndpoint`, and exits
 * with the spec's output. Never rejects: an unreadable stdin is the spec's IO_FAILURE (code 5).
 */
export async function runPluginProcess(io: PluginProcessIo, defaultEndpoint: string): Promise<void> {
  const endpoint = io.env['ANTREA_CNI_SOCKET'] ?? defaultEndpoint;
  const command = io.env['CNI_COMMAND'];
  let stdin: Uint8Array;
  try {
    stdin = command === undefined || command === '' || command === 'VERSION' ? new Uint8Array() : await io.readStdin();
  } catch (err) {
    io.exit(errorOutput(new CniError('IO_FAILURE', `antrea-cni: reading stdin: ${String(err)}`), CURRENT_CNI_VERSION));
    return;
  }
  io.exit(
    await runPlugin({ env: io.env, stdin }, (method, request) =>
      grpcUnaryCall(io.connect, endpoint, cniMethodPath(method), request),
    ),
  );
}
