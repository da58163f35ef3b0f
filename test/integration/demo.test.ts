/**
 * `antrea-lab demo` (the README's main command until the lab exists), run as a child process: its
 * output, its cleanup on a normal exit and on Ctrl-C, and the cleanup of a demo killed outright.
 */
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoNames } from '../../src/lab/demo.ts';
import { integrationSkipReason, netns, runner } from '../helpers/env.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

const root = join(import.meta.dirname, '..', '..');
const cli = join(root, 'src', 'cmd', 'antrea-lab.ts');

/** Processes whose command line mentions `text` (other than this test process). */
function processesMentioning(text: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(text)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function assertNothingLeft(t: Test, pid: number): void {
  const n = demoNames(pid, tmpdir());
  t.notOk(netns.exists(n.nodeNs), `namespace ${n.nodeNs} is gone`);
  t.notOk(netns.exists(n.podNs), `namespace ${n.podNs} is gone`);
  t.notOk(existsSync(n.runDir), `run dir ${n.runDir} is gone`);
  t.same(processesMentioning(n.runDir), [], 'no process uses the run dir');
}

function demoPid(output: string): number {
  const m = /antrea-demo-(\d+)-node/.exec(output);
  if (m === null) throw new Error(`no namespace name in the output:\n${output}`);
  return Number(m[1]);
}

/** Starts the demo with --hold and resolves once its output shows `marker`. */
async function startDemo(
  t: Test,
  marker = 'holding the Node up',
): Promise<{ child: ChildProcess; output: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [cli, 'demo', '--hold'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const deadline = Date.now() + 60_000;
  while (!out.includes(marker)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`demo did not print ${marker}:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, output: () => out, exited };
}

t.test('the demo brings up one Node, lists its ports and leaves nothing behind', async (t) => {
  const r = await runner.run(process.execPath, [cli, 'demo'], { timeoutMs: 120_000 });
  const out = r.stdout;
  t.equal(r.exitCode, 0);
  t.match(out, /bridge br-int: datapath_type=netdev, protocols=OpenFlow10,OpenFlow15, datapath [0-9a-f]{16}/);
  t.match(
    out,
    /tunnel antrea-tun0 \(geneve, remote_ip=flow, key=flow\) ofport 32768; gateway antrea-gw0 10\.10\.0\.1\/24 ofport 32769/,
  );
  t.match(out, /ping from the Pod to the gateway through br-int: 3\/3 replies/);
  // the port listing: name, type, ofport, external_ids
  t.match(out, /^ {2}antrea-gw0 +internal +32769 +antrea-type=gateway$/m);
  t.match(out, /^ {2}antrea-tun0 +geneve +32768 +antrea-type=tunnel$/m);
  t.match(
    out,
    /^ {2}web-0-a1b2c3 +system +\d+ +antrea-type=container,container-id=a1b2c3d4e5f6,ip=10\.10\.0\.2,pod-name=web-0,pod-namespace=default$/m,
  );
  t.match(out, /cleaned up: no namespace, process or run directory left/);
  t.notMatch(out, /left behind|cleanup problem/);
  assertNothingLeft(t, demoPid(out));
});

t.test('Ctrl-C while the Node is up cleans everything up', async (t) => {
  const { child, output, exited } = await startDemo(t);
  const pid = demoPid(output());
  t.ok(netns.exists(demoNames(pid).nodeNs), 'the Node namespace exists while holding');
  t.ok(processesMentioning(demoNames(pid).runDir).length >= 2, 'both OVS daemons run while holding');
  child.kill('SIGINT');
  t.equal(await exited, 0, 'Ctrl-C is the normal end of --hold');
  t.match(output(), /SIGINT: stopping[\s\S]*cleaned up: no namespace, process or run directory left/);
  assertNothingLeft(t, pid);
});

t.test('Ctrl-C in the middle of bringing the Node up cleans up too', async (t) => {
  const { child, output, exited } = await startDemo(t, '[1/7]');
  child.kill('SIGINT');
  t.equal(await exited, 130, 'exit status 130 after an interrupt');
  t.notMatch(output(), /\[7\/7\]/, 'it stopped before finishing');
  t.match(output(), /SIGINT: stopping[\s\S]*cleaned up: no namespace, process or run directory left[\s\S]*stopped/);
  assertNothingLeft(t, demoPid(output()));
});

t.test('a demo killed outright is cleaned up by the next run', async (t) => {
  const { child, output, exited } = await startDemo(t);
  const pid = demoPid(output());
  child.kill('SIGKILL');
  await exited;
  t.ok(netns.exists(demoNames(pid).nodeNs), 'a SIGKILLed demo leaves its namespace behind');
  const r = await runner.run(process.execPath, [cli, 'demo'], { timeoutMs: 120_000 });
  t.match(r.stdout, new RegExp(`removed leftovers of earlier demos \\(pids ${pid}\\)`));
  assertNothingLeft(t, pid);
  assertNothingLeft(t, demoPid(r.stdout));
});

t.test('bad arguments print the usage', async (t) => {
  const r = await runner.run(process.execPath, [cli, 'demo', '--bogus'], { okExitCodes: [2] });
  t.equal(r.exitCode, 2);
  t.match(r.stderr, /unknown argument --bogus[\s\S]*usage: antrea-lab COMMAND[\s\S]*demo/);
  const r2 = await runner.run(process.execPath, [cli, 'nope'], { okExitCodes: [2] });
  t.match(r2.stderr, /unknown command nope/);
});
