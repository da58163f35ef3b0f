/**
 * The helper-process command runner behaves as the direct one: output, stdin, environment,
 * accepted exit codes, failures with their codes, timeouts and aborts; a helper that dies fails
 * the calls in flight and is restarted on the next call.
 */
import t from 'tap';
import { createCommandRunner, createHelperRunner, ExecError } from '../../src/common/util/exec.ts';

t.test('the helper runner matches the direct runner', async (t) => {
  const helper = createHelperRunner();
  t.teardown(() => helper.close());
  const direct = createCommandRunner();
  for (const r of [direct, helper]) {
    const out = await r.run('sh', ['-c', 'read x; echo "$x-$FOO"; echo err >&2'], {
      input: 'in\n',
      env: { FOO: 'bar' },
    });
    t.same(out, { stdout: 'in-bar\n', stderr: 'err\n', exitCode: 0 });
    const only = await r.run('sh', ['-c', 'echo "${HOME:-none}"'], { env: { A: '1' }, replaceEnv: true });
    t.equal(only.stdout, 'none\n', 'replaceEnv drops the inherited environment');
    t.equal((await r.run('sh', ['-c', 'exit 3'], { okExitCodes: [3] })).exitCode, 3);
    const bytes = await r.run('cat', [], { input: Uint8Array.from([104, 105]) });
    t.equal(bytes.stdout, 'hi');
  }
  const failed = await helper.run('sh', ['-c', 'echo oops >&2; exit 2']).catch((e: unknown) => e);
  t.ok(failed instanceof ExecError);
  t.match(failed, { code: 'EXEC_FAILED', exitCode: 2, stderr: 'oops\n', message: /exit status 2: oops/ });
  await t.rejects(helper.run('/no/such/command', []), { code: 'EXEC_NOT_FOUND' });
  await t.rejects(helper.run('sleep', ['5'], { timeoutMs: 100 }), { code: 'EXEC_TIMEOUT' });
  const ac = new AbortController();
  const slow = helper.run('sleep', ['5'], { signal: ac.signal });
  setTimeout(() => ac.abort(), 100);
  await t.rejects(slow, { code: 'EXEC_ABORTED' });
  await t.rejects(helper.run('true', [], { signal: AbortSignal.abort() }), { code: 'EXEC_ABORTED' });
  const parallel = await Promise.all([1, 2, 3].map((n) => helper.run('sh', ['-c', `sleep 0.0${n}; echo ${n}`])));
  t.same(
    parallel.map((p) => p.stdout),
    ['1\n', '2\n', '3\n'],
    'concurrent calls are matched to their answers',
  );
});

t.test('a helper that dies fails the calls in flight and comes back', async (t) => {
  const helper = createHelperRunner();
  t.teardown(() => helper.close());
  const pid = Number((await helper.run('sh', ['-c', 'echo $PPID'])).stdout);
  const inFlight = helper.run('sleep', ['5']);
  process.kill(pid, 'SIGKILL');
  await t.rejects(inFlight, { code: 'EXEC_FAILED', message: /the exec helper exited/ });
  t.equal((await helper.run('echo', ['again'])).stdout, 'again\n', 'the next call starts a new helper');
});
