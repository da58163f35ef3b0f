/**
 * The antrea-cni plugin's logic (runPlugin) with a fake agent: what each command requires from the
 * environment, VERSION, per-version command gates, the CNI bad-input suite (reliability.md §6.4)
 * for every supported cniVersion, how agent answers and RPC failures map to CNI error codes, and
 * what reaches the agent. One test runs the real executable for VERSION and an unreachable agent.
 */
import t from 'tap';
import { join } from 'node:path';
import {
  type CniMethod,
  decodeCniCmdRequest,
  encodeCniCmdResponse,
  ErrorCode,
} from '../../src/common/apis/cni/proto.ts';
import { SUPPORTED_CNI_VERSIONS } from '../../src/common/apis/cni/spec.ts';
import { GrpcCallError, GrpcStatus } from '../../src/common/cni/grpc-client.ts';
import { type CniRpc, type PluginOutput, runPlugin } from '../../src/common/cni/plugin.ts';
import { createCommandRunner } from '../../src/common/util/exec.ts';
import { absentEndpointPath } from '../helpers/local-endpoint.ts';

const conf = (version = '1.1.0', extra: Record<string, unknown> = {}): Buffer =>
  Buffer.from(
    JSON.stringify({ cniVersion: version, name: 'antrea', type: 'antrea', ipam: { type: 'host-local' }, ...extra }),
  );

const baseEnv = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'c0ffee',
  CNI_NETNS: '/run/netns/pod',
  CNI_IFNAME: 'eth0',
  CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web',
  CNI_PATH: '/opt/cni/bin',
};

/** A fake agent: records calls, answers with `answer`. */
function fakeAgent(
  answer: (method: CniMethod) => Uint8Array | Error = () =>
    encodeCniCmdResponse({ cniResult: Buffer.from('{"cniVersion":"1.1.0"}'), error: undefined }),
): CniRpc & { calls: { method: CniMethod; req: Uint8Array }[] } {
  const calls: { method: CniMethod; req: Uint8Array }[] = [];
  const rpc = (method: CniMethod, req: Uint8Array): Promise<Uint8Array> => {
    calls.push({ method, req });
    const a = answer(method);
    return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
  };
  return Object.assign(rpc, { calls });
}

function errorOf(out: PluginOutput): { code: number; msg: string; cniVersion: string } {
  return JSON.parse(out.stdout) as { code: number; msg: string; cniVersion: string };
}

t.test('VERSION answers locally with the supported versions', async (t) => {
  const agent = fakeAgent();
  const out = await runPlugin({ env: { CNI_COMMAND: 'VERSION' }, stdin: Buffer.alloc(0) }, agent);
  t.equal(out.exitCode, 0);
  t.same(JSON.parse(out.stdout), { cniVersion: '1.1.0', supportedVersions: [...SUPPORTED_CNI_VERSIONS] });
  t.equal(agent.calls.length, 0);
});

t.test('no CNI_COMMAND prints the about text; an unknown one is code 4', async (t) => {
  const none = await runPlugin({ env: {}, stdin: Buffer.alloc(0) }, fakeAgent());
  t.equal(none.exitCode, 0);
  t.match(none.stderr, /Antrea CNI.*\nCNI protocol versions supported: 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0/);
  const bad = await runPlugin({ env: { CNI_COMMAND: 'FROB' }, stdin: conf() }, fakeAgent());
  t.equal(bad.exitCode, 1);
  t.same(errorOf(bad), { cniVersion: '1.1.0', code: 4, msg: 'unknown CNI_COMMAND: FROB' });
});

t.test('required environment variables per command', async (t) => {
  const cases: [string, string[]][] = [
    ['ADD', ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH']],
    ['CHECK', ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH']],
    ['DEL', ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH']],
    ['GC', ['CNI_PATH']],
  ];
  for (const [cmd, required] of cases) {
    const out = await runPlugin({ env: { CNI_COMMAND: cmd }, stdin: conf() }, fakeAgent());
    t.equal(out.exitCode, 1, cmd);
    t.same(errorOf(out), {
      cniVersion: '1.1.0',
      code: 4,
      msg: `required env variables [${required.join(',')}] missing`,
    });
  }
  // DEL without CNI_NETNS is fine (the namespace may be gone).
  const del = await runPlugin({ env: { ...baseEnv, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, stdin: conf() }, fakeAgent());
  t.equal(del.exitCode, 0);
  const status = await runPlugin({ env: { CNI_COMMAND: 'STATUS' }, stdin: conf() }, fakeAgent());
  t.equal(status.exitCode, 0, 'STATUS needs nothing else');
});

t.test('the bad-input suite, for every supported cniVersion', async (t) => {
  for (const version of SUPPORTED_CNI_VERSIONS) {
    const cases: [string, Record<string, string>, Buffer, number][] = [
      ['empty stdin', {}, Buffer.alloc(0), 6],
      ['malformed stdin', {}, Buffer.from('{"cniVersion":'), 6],
      ['a JSON array', {}, Buffer.from('[]'), 6],
      ['10 MB of garbage', {}, Buffer.alloc(10 * 1024 * 1024, 0x61), 6],
      ['unknown cniVersion', {}, Buffer.from('{"cniVersion":"9.9.9","name":"antrea","type":"antrea"}'), 1],
      ['no network name', {}, Buffer.from(`{"cniVersion":"${version}","type":"antrea"}`), 7],
      ['container id with a slash', { CNI_CONTAINERID: 'a/b' }, conf(version), 4],
      ['container id starting with -', { CNI_CONTAINERID: '-ab' }, conf(version), 4],
      ['ifname "."', { CNI_IFNAME: '.' }, conf(version), 4],
      ['ifname ".."', { CNI_IFNAME: '..' }, conf(version), 4],
      ['ifname with /', { CNI_IFNAME: 'a/b' }, conf(version), 4],
      ['ifname with :', { CNI_IFNAME: 'a:b' }, conf(version), 4],
      ['ifname with a space', { CNI_IFNAME: 'a b' }, conf(version), 4],
      ['ifname of 16 characters', { CNI_IFNAME: 'abcdefghijklmnop' }, conf(version), 4],
      ['CNI_ARGS without =', { CNI_ARGS: 'K8S_POD_NAME' }, conf(version), 4],
    ];
    for (const [name, env, stdin, code] of cases) {
      const agent = fakeAgent();
      const out = await runPlugin({ env: { ...baseEnv, ...env }, stdin }, agent);
      t.equal(out.exitCode, 1, `${version}: ${name} fails`);
      t.equal(errorOf(out).code, code, `${version}: ${name} → code ${code}`);
      t.equal(agent.calls.length, 0, `${version}: ${name} never reaches the agent`);
    }
  }
});

t.test('commands a config version does not allow', async (t) => {
  for (const [cmd, version] of [
    ['CHECK', '0.3.1'],
    ['GC', '1.0.0'],
    ['STATUS', '0.4.0'],
  ] as const) {
    const agent = fakeAgent();
    const out = await runPlugin({ env: { ...baseEnv, CNI_COMMAND: cmd }, stdin: conf(version) }, agent);
    t.same(errorOf(out), { cniVersion: version, code: 1, msg: `config version does not allow ${cmd}` });
    t.equal(agent.calls.length, 0);
  }
});

t.test('what reaches the agent, and what the runtime gets back', async (t) => {
  const stdin = conf('1.0.0', { prevResult: { cniVersion: '1.0.0' } });
  for (const [cmd, method] of [
    ['ADD', 'CmdAdd'],
    ['DEL', 'CmdDel'],
    ['CHECK', 'CmdCheck'],
    ['GC', 'CmdGC'],
    ['STATUS', 'CmdStatus'],
  ] as const) {
    const version = cmd === 'GC' || cmd === 'STATUS' ? '1.1.0' : '1.0.0';
    const body = cmd === 'GC' || cmd === 'STATUS' ? conf(version) : stdin;
    const agent = fakeAgent();
    const out = await runPlugin({ env: { ...baseEnv, CNI_COMMAND: cmd }, stdin: body }, agent);
    t.equal(out.exitCode, 0, cmd);
    t.equal(agent.calls[0]?.method, method);
    const req = decodeCniCmdRequest(agent.calls[0]!.req);
    t.same(
      { ...req.cniArgs, networkConfiguration: Buffer.from(req.cniArgs.networkConfiguration).toString() },
      {
        containerId: 'c0ffee',
        netns: '/run/netns/pod',
        ifname: 'eth0',
        args: baseEnv.CNI_ARGS,
        path: '/opt/cni/bin',
        networkConfiguration: body.toString(),
      },
      `${cmd}: arguments and the raw stdin are forwarded`,
    );
    t.equal(out.stdout, cmd === 'ADD' ? '{"cniVersion":"1.1.0"}\n' : '', `${cmd}: only ADD prints a result`);
  }
});

t.test('agent errors and RPC failures map to CNI codes', async (t) => {
  const agentError = fakeAgent(() =>
    encodeCniCmdResponse({
      cniResult: new Uint8Array(),
      error: { code: ErrorCode.IPAM_FAILURE, message: 'range full', details: [] },
    }),
  );
  const e1 = await runPlugin({ env: baseEnv, stdin: conf('0.4.0') }, agentError);
  t.same(errorOf(e1), { cniVersion: '0.4.0', code: 101, msg: 'range full' });
  const e2 = await runPlugin(
    { env: baseEnv, stdin: conf() },
    fakeAgent(() =>
      encodeCniCmdResponse({ cniResult: new Uint8Array(), error: { code: 77, message: 'x', details: [] } }),
    ),
  );
  t.equal(errorOf(e2).code, 77, 'codes cni.proto does not name pass through');
  const rpcCases: [string, number, number][] = [
    ['ADD', GrpcStatus.UNAVAILABLE, 11],
    ['DEL', GrpcStatus.UNAVAILABLE, 11],
    ['ADD', GrpcStatus.DEADLINE_EXCEEDED, 11],
    ['STATUS', GrpcStatus.UNAVAILABLE, 50],
    ['GC', GrpcStatus.UNIMPLEMENTED, 202],
    ['ADD', GrpcStatus.INTERNAL, 201],
  ];
  for (const [cmd, status, code] of rpcCases) {
    const out = await runPlugin(
      { env: { ...baseEnv, CNI_COMMAND: cmd }, stdin: conf() },
      fakeAgent(() => new GrpcCallError(status, 'nope')),
    );
    t.equal(errorOf(out).code, code, `${cmd} with gRPC status ${status} → ${code}`);
  }
  const garbage = await runPlugin(
    { env: baseEnv, stdin: conf() },
    fakeAgent(() => Buffer.from([0x0a, 0x09])),
  );
  t.equal(errorOf(garbage).code, 201, 'an undecodable answer is UNKNOWN_RPC_ERROR');
});

t.test('the real executable: VERSION, and ADD with no agent listening', async (t) => {
  const runner = createCommandRunner();
  const entry = join(import.meta.dirname, '..', '..', 'src', 'cmd', 'antrea-cni.ts');
  const v = await runner.run(process.execPath, [entry], { env: { CNI_COMMAND: 'VERSION' }, replaceEnv: true });
  t.same(JSON.parse(v.stdout), { cniVersion: '1.1.0', supportedVersions: [...SUPPORTED_CNI_VERSIONS] });
  const add = await runner.run(process.execPath, [entry], {
    env: { ...baseEnv, ANTREA_CNI_SOCKET: absentEndpointPath('cni.sock') },
    replaceEnv: true,
    input: conf('1.0.0'),
    okExitCodes: [1],
  });
  t.equal(add.exitCode, 1);
  const err = JSON.parse(add.stdout) as { code: number; msg: string };
  t.equal(err.code, 11, 'an agent that is not there means try again later');
  t.match(err.msg, /ENOENT/);
});
