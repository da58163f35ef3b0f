/**
 * The lab's container-runtime side of CNI, against recording plugins (small executables that log
 * their environment and stdin and answer like a plugin).
 */
import t, { type Test } from 'tap';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCommandRunner } from '../../src/common/util/exec.ts';
import {
  CniRuntime,
  CniRuntimeError,
  loadNetworkConfig,
  parseNetworkConfig,
  resultIPs,
  type CniAttachment,
} from '../../src/lab/cni-runtime.ts';

interface Call {
  cmd: string;
  type: string;
  env: Record<string, string | undefined>;
  conf: Record<string, unknown>;
}

function setup(t: Test): { dir: string; bin: string; conf: string; cache: string; calls: () => Call[] } {
  const dir = mkdtempSync(join(tmpdir(), 'cnirt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, 'bin');
  const conf = join(dir, 'net.d');
  mkdirSync(bin);
  mkdirSync(conf);
  const log = join(dir, 'calls.log');
  const plugin = `#!${process.execPath}
const fs = require('fs');
const conf = JSON.parse(fs.readFileSync(0, 'utf8'));
const e = process.env;
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ cmd: e.CNI_COMMAND, type: conf.type, conf,
  env: { CNI_CONTAINERID: e.CNI_CONTAINERID, CNI_NETNS: e.CNI_NETNS, CNI_IFNAME: e.CNI_IFNAME, CNI_ARGS: e.CNI_ARGS, CNI_PATH: e.CNI_PATH, HOME: e.HOME } }) + '\\n');
if (conf.fail === e.CNI_COMMAND) {
  process.stdout.write(JSON.stringify({ cniVersion: conf.cniVersion, code: conf.failCode, msg: 'boom', details: 'in ' + conf.type }));
  process.exit(1);
}
if (e.CNI_COMMAND === 'ADD') {
  const r = conf.prevResult || { cniVersion: conf.cniVersion,
    interfaces: [{ name: 'veth0' }, { name: e.CNI_IFNAME, sandbox: e.CNI_NETNS }],
    ips: [{ address: '10.1.0.99/24', interface: 0 }, { address: '10.1.0.5/24', interface: 1 }] };
  r.seenBy = (r.seenBy || []).concat(conf.type);
  process.stdout.write(JSON.stringify(r));
}
`;
  for (const name of ['first', 'second']) {
    writeFileSync(join(bin, name), plugin);
    chmodSync(join(bin, name), 0o755);
  }
  return {
    dir,
    bin,
    conf,
    cache: join(dir, 'results'),
    calls: () =>
      existsSync(log)
        ? readFileSync(log, 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as Call)
        : [],
  };
}

const pod: CniAttachment = {
  containerId: 'c0ffee',
  netnsPath: '/run/netns/pod-1',
  ifName: 'eth0',
  podNamespace: 'x',
  podName: 'a',
  podUid: 'uid-1',
};

function conflist(plugins: Record<string, unknown>[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ cniVersion: '1.0.0', name: 'labnet', plugins, ...extra });
}

t.test(
  'ADD runs the plugins in order, chaining prevResult; DEL runs them in reverse with the cached result',
  async (t) => {
    const s = setup(t);
    writeFileSync(
      join(s.conf, '10-lab.conflist'),
      conflist([{ type: 'first', ipam: { type: 'x' } }, { type: 'second' }]),
    );
    writeFileSync(join(s.conf, '20-other.conflist'), conflist([{ type: 'missing' }], { name: 'other' }));
    const rt = new CniRuntime({
      confDir: s.conf,
      binDirs: [s.bin, '/nonexistent'],
      cacheDir: s.cache,
      runner: createCommandRunner(),
    });
    t.ok(rt.networkReady());
    const result = await rt.add(pod);
    t.same(result['seenBy'], ['first', 'second']);
    t.same(resultIPs(result), ['10.1.0.5'], 'the host-side address is not the Pod IP');
    const add = s.calls();
    t.same(
      add.map((c) => [c.cmd, c.type]),
      [
        ['ADD', 'first'],
        ['ADD', 'second'],
      ],
      'the first configuration in lexical order is used',
    );
    const [first, second] = add;
    t.same(first?.env, {
      CNI_CONTAINERID: 'c0ffee',
      CNI_NETNS: '/run/netns/pod-1',
      CNI_IFNAME: 'eth0',
      CNI_ARGS:
        'IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=a;K8S_POD_INFRA_CONTAINER_ID=c0ffee;K8S_POD_UID=uid-1',
      CNI_PATH: `${s.bin}:/nonexistent`,
    });
    t.notOk('HOME' in (first?.env ?? {}), 'plugins get only the CNI environment (and PATH), as libcni passes');
    t.same(
      first?.conf,
      { type: 'first', ipam: { type: 'x' }, cniVersion: '1.0.0', name: 'labnet' },
      'name and version injected',
    );
    t.same(
      (second?.conf['prevResult'] as { seenBy?: string[] }).seenBy,
      ['first'],
      "the second plugin sees the first one's result",
    );
    t.same(rt.cachedResult('labnet', pod)?.result, result, 'the final result is cached');

    await rt.check(pod);
    const check = s.calls().slice(2);
    t.same(
      check.map((c) => [c.cmd, c.type]),
      [
        ['CHECK', 'first'],
        ['CHECK', 'second'],
      ],
    );
    t.same(check[0]?.conf['prevResult'], result, 'CHECK gets the cached result');

    await rt.del(pod);
    const del = s.calls().slice(4);
    t.same(
      del.map((c) => [c.cmd, c.type]),
      [
        ['DEL', 'second'],
        ['DEL', 'first'],
      ],
      'DEL runs in reverse order',
    );
    t.same(del[0]?.conf['prevResult'], result, 'DEL gets the cached result');
    t.equal(rt.cachedResult('labnet', pod), undefined, 'the cache entry is dropped');
    await rt.del(pod);
    t.notOk('prevResult' in (s.calls().at(-1)?.conf ?? {}), 'a second DEL has no prevResult');
    await rt.status();
    t.equal(s.calls().length, 8, 'STATUS is not sent below CNI 1.1.0');
  },
);

t.test('plugin errors carry the CNI code; 11 means try again later', async (t) => {
  const s = setup(t);
  writeFileSync(
    join(s.conf, '10-lab.conflist'),
    conflist([{ type: 'first' }, { type: 'second', fail: 'ADD', failCode: 11 }], {
      cniVersions: ['0.4.0', '1.1.0', '9.9.9'],
    }),
  );
  const rt = new CniRuntime({ confDir: s.conf, binDirs: [s.bin], cacheDir: s.cache, runner: createCommandRunner() });
  const err = await rt.add(pod).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof CniRuntimeError);
  const e = err as CniRuntimeError;
  t.equal(e.cniCode, 11);
  t.ok(e.tryAgainLater);
  t.equal(e.plugin, 'second');
  t.match(e.message, /second ADD for x\/a failed \(code 11\): boom: in second/);
  t.equal(s.calls()[0]?.conf['cniVersion'], '1.1.0', 'the newest shared version of cniVersions is used');
  t.equal(rt.cachedResult('labnet', pod), undefined, 'a failed ADD caches nothing');
  await rt.status();
  t.same(
    s
      .calls()
      .slice(2)
      .map((c) => [c.cmd, c.type]),
    [
      ['STATUS', 'first'],
      ['STATUS', 'second'],
    ],
  );
  t.equal(s.calls()[2]?.env.CNI_CONTAINERID, undefined, 'STATUS carries no attachment');

  writeFileSync(join(s.conf, '10-lab.conflist'), conflist([{ type: 'nope' }]));
  await t.rejects(rt.add(pod), { code: 'CNI_PLUGIN_NOT_FOUND', message: /plugin "nope" not found/ });
  writeFileSync(join(s.conf, '10-lab.conflist'), conflist([{ type: '../first' }]));
  await t.rejects(rt.add(pod), { code: 'CNI_BAD_CONFIG' });
});

t.test('configuration errors name the file and field', (t) => {
  t.throws(() => parseNetworkConfig('{', 'a.conflist'), { code: 'CNI_BAD_CONFIG', message: /^a\.conflist: not JSON/ });
  t.throws(() => parseNetworkConfig('[]', 'a.conflist'), { message: 'a.conflist: not a JSON object' });
  t.throws(() => parseNetworkConfig('{"cniVersion":"1.0.0","plugins":[]}', 'f'), {
    message: 'f: name: must be a non-empty string',
  });
  t.throws(() => parseNetworkConfig('{"cniVersion":"1.0.0","name":"n","plugins":[]}', 'f'), {
    message: 'f: plugins: must be a non-empty list',
  });
  t.throws(() => parseNetworkConfig('{"cniVersion":"1.0.0","name":"n","plugins":[{"x":1}]}', 'f'), {
    message: 'f: plugins[0].type: must be a string',
  });
  t.throws(() => parseNetworkConfig('{"cniVersion":"0.2.0","name":"n","plugins":[{"type":"a"}]}', 'f'), {
    message: /f: cniVersion: 0\.2\.0 is not supported/,
  });
  const single = parseNetworkConfig('{"cniVersion":"0.3.1","name":"n","type":"bridge","bridge":"cni0"}', 'f.conf');
  t.same(single.plugins, [{ cniVersion: '0.3.1', name: 'n', type: 'bridge', bridge: 'cni0' }], 'a .conf is one plugin');
  const dir = mkdtempSync(join(tmpdir(), 'cnirt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.throws(() => loadNetworkConfig(dir), { code: 'CNI_NO_CONFIG' });
  t.throws(() => loadNetworkConfig(join(dir, 'absent')), { code: 'CNI_NO_CONFIG' });
  t.end();
});
