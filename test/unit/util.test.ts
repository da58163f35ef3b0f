import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  AntreaError,
  ValidationError,
  errorMessage,
  isAntreaError,
  serializeError,
} from '../../src/common/util/errors.ts';
import { Backoff, retry } from '../../src/common/util/backoff.ts';
import { formatDuration } from '../../src/common/util/clock.ts';
import { createLogger, memoryLogger, parseLogLevel } from '../../src/common/util/log.ts';
import { createCommandRunner, createProcessLauncher, ExecError, formatCommand } from '../../src/common/util/exec.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

t.test('errors carry codes, details and causes', (t) => {
  const cause = new Error('socket closed');
  const e = new AntreaError('OVSDB_DISCONNECTED', 'lost connection', { cause, details: { endpoint: 'unix:/x' } });
  t.equal(e.name, 'AntreaError');
  t.ok(isAntreaError(e, 'OVSDB_DISCONNECTED'));
  t.notOk(isAntreaError(e, 'OTHER'));
  t.same(e.toJSON(), {
    name: 'AntreaError',
    code: 'OVSDB_DISCONNECTED',
    message: 'lost connection',
    details: { endpoint: 'unix:/x' },
    cause: { name: 'Error', message: 'socket closed' },
  });
  const v = new ValidationError('spec.ports[0].port', 'must be 1-65535');
  t.equal(v.message, 'spec.ports[0].port: must be 1-65535');
  t.equal(v.field, 'spec.ports[0].port');
  t.equal(v.code, 'INVALID_ARGUMENT');
  t.equal(errorMessage('x'), 'x');
  t.equal(errorMessage({ a: 1 }), '{"a":1}');
  t.same(serializeError(42), 42);
  t.end();
});

t.test('backoff grows, caps and resets', (t) => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0, random: () => 0.5 });
  t.same([b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 800, 1000]);
  b.reset();
  t.equal(b.next(), 100);
  const j = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.5, random: () => 1 });
  t.equal(j.next(), 150);
  t.throws(() => new Backoff({ initialMs: 0, maxMs: 1 }), RangeError);
  t.throws(() => new Backoff({ initialMs: 10, maxMs: 1 }), RangeError);
  t.end();
});

t.test('retry waits between attempts on the injected clock and gives up', async (t) => {
  const clock = new FakeClock();
  let calls = 0;
  const p = retry(
    () => {
      calls++;
      return calls < 3 ? Promise.reject(new Error(`fail ${calls}`)) : Promise.resolve('ok');
    },
    { backoff: new Backoff({ initialMs: 1000, maxMs: 5000, jitter: 0 }), clock },
  );
  await clock.advance(999);
  t.equal(calls, 1, 'no retry before the delay');
  await clock.advance(1);
  t.equal(calls, 2);
  await clock.advance(2000);
  t.equal(await p, 'ok');

  const gaveUp = retry(() => Promise.reject(new Error('always')), {
    backoff: new Backoff({ initialMs: 10, maxMs: 10, jitter: 0 }),
    clock,
    maxAttempts: 2,
  });
  const assertion = t.rejects(gaveUp, /always/);
  await clock.advance(10);
  await assertion;

  const notRetryable = retry(() => Promise.reject(new Error('fatal')), {
    backoff: new Backoff({ initialMs: 10, maxMs: 10 }),
    clock,
    shouldRetry: () => false,
  });
  await t.rejects(notRetryable, /fatal/);

  const ac = new AbortController();
  const aborted = retry(() => Promise.reject(new Error('x')), {
    backoff: new Backoff({ initialMs: 10, maxMs: 10 }),
    clock,
    signal: ac.signal,
  });
  const a2 = t.rejects(aborted);
  await clock.advance(0);
  ac.abort(new Error('stop'));
  await a2;
});

t.test('logger writes structured lines, filters by level, children share level', (t) => {
  const lines: string[] = [];
  const clock = new FakeClock(Date.UTC(2026, 10, 21, 12, 0, 0));
  const log = createLogger({ level: 'info', sink: { write: (l) => lines.push(l) }, clock, fields: { component: 'x' } });
  log.debug('hidden');
  log.info('hello', { n: 1 });
  const child = log.child({ pod: 'a/b' });
  child.warn('careful', { err: new AntreaError('E', 'bad') });
  log.setLevel('debug');
  child.debug('now visible');
  t.equal(lines.length, 3);
  t.same(JSON.parse(lines[0]!), { ts: '2026-11-21T12:00:00.000Z', level: 'info', msg: 'hello', component: 'x', n: 1 });
  t.same((JSON.parse(lines[1]!) as Record<string, unknown>)['err'], { name: 'AntreaError', code: 'E', message: 'bad' });
  t.equal((JSON.parse(lines[2]!) as Record<string, unknown>)['pod'], 'a/b');
  const text: string[] = [];
  createLogger({ format: 'text', clock, sink: { write: (l) => text.push(l) } }).error('boom', { a: 'b c', d: 'e' });
  t.equal(text[0], '2026-11-21T12:00:00.000Z ERROR boom a="b c" d=e\n');
  t.equal(parseLogLevel('4'), 'trace');
  t.equal(parseLogLevel('0'), 'info');
  t.equal(parseLogLevel('DEBUG'), 'debug');
  t.throws(() => parseLogLevel('loud'), /unknown log level/);
  const mem = memoryLogger();
  mem.child({ a: 1 }).info('x');
  t.equal(mem.lines[0]?.['a'], 1);
  t.end();
});

t.test('formatting helpers', (t) => {
  t.equal(formatCommand('ip', ['link', 'add', 'a b', '', "it's"]), `ip link add 'a b' '' 'it'\\''s'`);
  t.equal(formatDuration(850), '850ms');
  t.equal(formatDuration(2500), '2.50s');
  t.equal(formatDuration(185_000), '3m5s');
  t.end();
});

t.test('command runner: output, input, failures, timeouts', async (t) => {
  const r = createCommandRunner();
  t.same(await r.run('sh', ['-c', 'echo out; echo err >&2']), { stdout: 'out\n', stderr: 'err\n', exitCode: 0 });
  t.equal((await r.run('cat', [], { input: 'piped' })).stdout, 'piped');
  t.equal((await r.run('sh', ['-c', 'exit 3'], { okExitCodes: [3] })).exitCode, 3);
  const failed = await r.run('sh', ['-c', 'echo nope >&2; exit 2']).catch((e: unknown) => e);
  t.type(failed, ExecError);
  t.match(failed, { code: 'EXEC_FAILED', exitCode: 2, stderr: 'nope\n', message: /exit status 2: nope/ });
  await t.rejects(r.run('/nonexistent/cmd', []), { code: 'EXEC_NOT_FOUND' });
  await t.rejects(r.run('sleep', ['5'], { timeoutMs: 50 }), { code: 'EXEC_TIMEOUT' });
  const ac = new AbortController();
  const p = r.run('sleep', ['5'], { signal: ac.signal });
  ac.abort();
  await t.rejects(p, { code: 'EXEC_ABORTED' });
  t.equal((await r.run('sh', ['-c', 'echo $FOO'], { env: { FOO: 'bar' } })).stdout, 'bar\n');
});

t.test('process launcher: start, stop with grace, report exit', async (t) => {
  const l = createProcessLauncher();
  const p = await l.launch('sleep', ['30']);
  t.ok(p.running());
  const info = await p.stop(2000);
  t.equal(info.signal, 'SIGTERM');
  t.notOk(p.running());
  t.same(await p.stop(), info, 'stop is idempotent');
  const marker = join(t.testdir(), 'trapped');
  const stubborn = await l.launch('sh', ['-c', `trap "" TERM; touch ${marker}; sleep 30 & wait`], {
    newProcessGroup: true,
  });
  while (!existsSync(marker)) await new Promise((r) => setTimeout(r, 10));
  const info2 = await stubborn.stop(100);
  t.equal(info2.signal, 'SIGKILL', 'SIGKILL after the grace period');
  await t.rejects(l.launch('/nonexistent/daemon', []), { code: 'EXEC_NOT_FOUND' });
  const quick = await l.launch('sh', ['-c', 'exit 4']);
  t.same(await quick.exited, { code: 4, signal: null });
});
