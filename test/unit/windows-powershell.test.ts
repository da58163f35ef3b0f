/**
 * The PowerShell port of the Windows strategy, on Linux: quoting of interpolated values (including
 * hostile input), the one-line wrapper, the JSON envelope (results, typed errors, CRLF output, noise
 * lines), and the session runner over a fake PowerShell process: serialized calls, the prelude once
 * per session, restart after the process died or printed garbage.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  asList,
  parseEnvelope,
  psArray,
  psBool,
  psInt,
  psQuote,
  PowerShellError,
  wrapScript,
} from '../../src/platform/windows/powershell.ts';
import { type ShellSession, SessionPowerShellRunner } from '../../src/platform/windows/session.ts';
import { unquote } from '../helpers/fake-windows-host.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'windows');
const MARKER = 'ANTREA-PS-0123456789abcdef';

t.test('psQuote makes single-quoted literals that hold exactly the value', (t) => {
  t.equal(psQuote('br-int'), "'br-int'");
  t.equal(psQuote(''), "''");
  t.equal(psQuote("O'Brien"), "'O''Brien'");
  // Nothing expands inside single quotes: $, backtick, double quotes, subexpressions stay literal.
  t.equal(psQuote('$(Remove-Item C:\\ -Recurse)'), "'$(Remove-Item C:\\ -Recurse)'");
  t.equal(psQuote('a`nb"c'), "'a`nb\"c'");
  // PowerShell also ends a string at the typographic single quotes: they are doubled as well.
  t.equal(psQuote('x\u2019; Stop-Computer; \u2018'), "'x\u2019\u2019; Stop-Computer; \u2018\u2018'");
  t.equal(psQuote('a\r\nb'), "'a\r\nb'", 'newlines are literal inside quotes (the wrapper is base64)');
  t.throws(() => psQuote('a\0b', 'adapter'), { code: 'INVALID_ARGUMENT', message: /^adapter: .*NUL/ });

  // Hostile values round-trip: unquoting the literal gives the value back and the literal has no
  // unescaped quote inside (a PowerShell tokenizer would read one string token).
  const hostile = ["'; Stop-Computer; '", "''", "\u2018'\u2019\u201a\u201b", "x' + (Get-Process) + '", '\'"`$'];
  for (const v of hostile) {
    const lit = psQuote(v);
    t.equal(unquote(lit), v, `round trip ${JSON.stringify(v)}`);
    const inner = lit.slice(1, -1).replace(/(['\u2018\u2019\u201a\u201b])\1/g, '');
    t.notMatch(inner, /['\u2018\u2019\u201a\u201b]/, `no lone quote in ${JSON.stringify(lit)}`);
  }
  t.equal(psArray(['a', "b'c"]), "@('a','b''c')");
  t.throws(() => psArray(['ok', 'bad\0'], 'dns'), { message: /^dns\[1\]: / });
  t.equal(psInt(1450, 'mtu'), '1450');
  t.throws(() => psInt(1.5, 'mtu'), { message: /^mtu: / });
  t.throws(() => psInt(-1, 'ifIndex', 1), { message: /^ifIndex: / });
  t.equal(psBool(true), '$True');
  t.end();
});

t.test('wrapScript is one line that runs the script from base64 and prints the envelope', (t) => {
  const script = "Get-NetNat | Where-Object Name -EQ 'antrea-nat'\nWrite-Output 'two'";
  const line = wrapScript(script, MARKER);
  t.notMatch(line, /[\r\n]/, 'one line, whatever the script holds');
  t.match(line, /^\$ErrorActionPreference='Stop';/, 'every error stops the script');
  t.match(line, /\$ProgressPreference='SilentlyContinue'/);
  t.match(line, /@\(& \(\[scriptblock\]::Create/, 'runs in its own scope');
  t.match(wrapScript(script, MARKER, true), /@\(\. \(\[scriptblock\]::Create/, 'the prelude is dot-sourced');
  t.match(line, /ConvertTo-Json -InputObject \$__antrea_o -Depth 10 -Compress/);
  const b64 = /FromBase64String\('([A-Za-z0-9+/=]+)'\)/.exec(line)?.[1] ?? '';
  t.equal(Buffer.from(b64, 'base64').toString('utf8'), script, 'the script travels unchanged');
  t.throws(() => wrapScript('x', "bad'marker"), { message: /^marker: / });
  t.end();
});

t.test('the envelope: values, typed errors, CRLF and noise lines', (t) => {
  const ok = parseEnvelope(readFileSync(join(FIXTURES, 'envelope-ok-crlf.txt'), 'utf8'), MARKER, 's');
  t.same(ok, [{ Name: 'antrea-nat', InternalIPInterfaceAddressPrefix: '10.10.2.0/24', Active: true }]);
  t.same(parseEnvelope(`${MARKER}{"ok":true,"value":[]}`, MARKER, 's'), []);
  t.same(parseEnvelope(`${MARKER}{"ok":true,"value":null}`, MARKER, 's'), []);

  const err = (() => {
    try {
      parseEnvelope(readFileSync(join(FIXTURES, 'envelope-error-netroute.txt'), 'utf8'), MARKER, 'New-NetRoute ...');
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  t.ok(err instanceof PowerShellError);
  const pe = err as PowerShellError;
  t.equal(pe.code, 'POWERSHELL_COMMAND_FAILED');
  t.equal(pe.message, 'New-NetRoute: Instance MSFT_NetRoute already exists');
  t.ok(pe.alreadyExists);
  t.notOk(pe.notFound);
  t.match(pe.info, {
    category: 'ResourceExists',
    errorId: 'Windows System Error 5010,New-NetRoute',
    hresult: -2146233088,
  });
  t.equal(pe.details['script'], 'New-NetRoute ...', 'the script is kept for the log');

  t.throws(() => parseEnvelope('PS C:\\> \r\n', MARKER, 's'), { code: 'POWERSHELL_BAD_OUTPUT' });
  t.throws(() => parseEnvelope(`${MARKER}{"ok":tru`, MARKER, 's'), { code: 'POWERSHELL_BAD_OUTPUT' });
  t.throws(() => parseEnvelope(`${MARKER}[1]`, MARKER, 's'), { code: 'POWERSHELL_BAD_OUTPUT' });
  t.same(asList({ a: 1 }), [{ a: 1 }], 'ConvertTo-Json prints one object without brackets');
  t.same(asList([{ a: 1 }, { a: 2 }]), [{ a: 1 }, { a: 2 }]);
  t.same(asList(null), []);
  t.end();
});

/** A fake PowerShell process: decodes the wrapped script and answers through `answer`. */
class FakeShell implements ShellSession {
  static started: FakeShell[] = [];
  readonly seen: string[] = [];
  disposed = false;
  dead = false;
  inFlight = 0;
  maxInFlight = 0;
  private readonly answer: (script: string, shell: FakeShell) => string;

  constructor(answer: (script: string, shell: FakeShell) => string) {
    this.answer = answer;
    FakeShell.started.push(this);
  }

  async invoke(command: string): Promise<{ stdout: string; stderr: string }> {
    if (this.dead) throw new Error('process exited with code 1');
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((r) => setImmediate(r));
    this.inFlight--;
    const b64 = /FromBase64String\('([A-Za-z0-9+/=]+)'\)/.exec(command)?.[1] ?? '';
    const marker = /WriteLine\('([A-Za-z0-9-]+)'/.exec(command)?.[1] ?? '';
    const script = Buffer.from(b64, 'base64').toString('utf8');
    this.seen.push(script);
    const out = this.answer(script, this);
    return { stdout: out.replaceAll('MARKER', marker), stderr: '' };
  }

  dispose(): Promise<void> {
    this.disposed = true;
    return Promise.resolve();
  }
}

t.test('the session runner: serialized calls, prelude once per session, restart after failures', async (t) => {
  FakeShell.started = [];
  const answer = (script: string, shell: FakeShell): string => {
    if (script === 'die') {
      shell.dead = true;
      throw new Error('process exited with code 1');
    }
    if (script === 'garbage') return 'PS> something else\r\n';
    if (script === 'fail') {
      return 'MARKER{"ok":false,"error":{"message":"Cannot find path","exceptionType":"System.Management.Automation.ItemNotFoundException","category":"ObjectNotFound","errorId":"PathNotFound","hresult":-2146233087,"command":"Get-Item"}}\r\n';
    }
    return `MARKER${JSON.stringify({ ok: true, value: [script] })}\r\n`;
  };
  const runner = new SessionPowerShellRunner({ start: () => new FakeShell(answer), prelude: 'PRELUDE' });
  const results = await Promise.all([runner.invoke('a'), runner.invoke('b'), runner.invoke('c')]);
  t.same(results, [['a'], ['b'], ['c']], 'answers in call order');
  t.equal(FakeShell.started.length, 1, 'one long-lived session');
  const first = FakeShell.started[0]!;
  t.same(first.seen, ['PRELUDE', 'a', 'b', 'c'], 'the prelude runs first, once');
  t.equal(first.maxInFlight, 1, 'never two scripts at once');

  const failed = await runner.invoke('fail').catch((e: unknown) => e);
  t.ok(failed instanceof PowerShellError && failed.code === 'POWERSHELL_COMMAND_FAILED' && failed.notFound);
  t.same(await runner.invoke('d'), ['d'], 'a failed command keeps the session');
  t.equal(FakeShell.started.length, 1);

  const died = await runner.invoke('die').catch((e: unknown) => e);
  t.match(died, { code: 'POWERSHELL_SESSION_FAILED', message: /process exited/ });
  t.ok(first.disposed, 'the dead session is disposed');
  t.same(await runner.invoke('e'), ['e'], 'the next call starts a new session');
  t.equal(FakeShell.started.length, 2);
  t.same(FakeShell.started[1]!.seen, ['PRELUDE', 'e'], 'with the prelude again');

  const bad = await runner.invoke('garbage').catch((e: unknown) => e);
  t.match(bad, { code: 'POWERSHELL_BAD_OUTPUT' });
  t.ok(FakeShell.started[1]!.disposed, 'a session that printed garbage is not trusted again');
  t.same(await runner.invoke('f'), ['f']);
  t.equal(runner.sessionsStarted, 3);

  await runner.close();
  t.ok(FakeShell.started[2]!.disposed, 'close ends the session');
  await runner.close();

  const broken = new SessionPowerShellRunner({
    start: () => {
      throw new Error('spawn powershell ENOENT');
    },
  });
  await t.rejects(broken.invoke('x'), { code: 'POWERSHELL_SESSION_FAILED', message: /ENOENT/ });
});
