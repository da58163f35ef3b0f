/**
 * The README's main command (`antrea-lab demo`, what scripts/demo.sh runs) and the lab's safety
 * against interruptions: the demo left running then its supervisor killed with SIGKILL (`down`
 * must still remove every namespace, veth, process, mount and file), `--once`, and Ctrl-C in the
 * middle of a demo.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { LabPaths, readState } from '../../src/lab/state.ts';
import { processesInNetns } from '../../src/lab/processes.ts';
import { labNamespaces } from '../../src/lab/fabric.ts';
import { integrationSkipReason, netns } from '../helpers/env.ts';
import { eventually, LAB_CLI, labCli, labDataDir, labInventory, labRoutes } from '../helpers/lab.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

const SECTIONS = [
  /\[1\/5\] bringing up a lab with 2 Node\(s\)/,
  /\[2\/5\] creating Namespaces x, y, z with Pods a, b, c\n {2}9 Pods Running in [\d.]+m?s:\n(?: {4}[xyz]\/[abc] +node-[12] +10\.10\.\d+\.\d+\n){9}/,
  /\[3\/5\] probing TCP port 80[^\n]*\n {4}from\\to xa xb xc ya yb yc za zb zc\n(?: {4}[xyz][abc] +(?:[.XRES]!? +){8}[.XRES]!?\n){9} {2}\d+ of 81 pairs connected/,
  /\[4\/5\] applying NetworkPolicy x\/allow-from-same-namespace:/,
  /\[5\/5\] probing again[^\n]*\n {4}from\\to xa xb xc ya yb yc za zb zc\n(?: {4}[xyz][abc] +(?:[.XRES]!? +){8}[.XRES]!?\n){9} {2}\d+ of 81 pairs connected/,
  /demo done in /,
];

t.test('the demo leaves a lab running; a SIGKILLed supervisor is cleaned up by down', async (t) => {
  const routesBefore = await labRoutes();
  const dataDir = labDataDir('demo');
  t.teardown(async () => {
    await labCli(['down', '--data-dir', dataDir]);
  });
  const r = await labCli(['demo', '--data-dir', dataDir]);
  t.equal(r.exitCode, 0, 'exit status 0', { output: r.stdout + r.stderr });
  for (const re of SECTIONS) t.match(r.stdout, re);
  // The agents enforce the policy: after it, the probed matrix is exactly what the policy asks for.
  t.match(r.stdout, /the matrix is what the policy asks for/, 'the policy is enforced', { output: r.stdout });
  t.match(
    r.stdout,
    /The lab keeps running\. Try:\n {2}export KUBECONFIG=\/tmp\/alab-demo-[0-9a-f]+\/admin\.kubeconfig /,
  );
  t.match(r.stdout, new RegExp(`antrea-lab\\.ts down --data-dir ${dataDir}`));

  const status = await labCli(['status', '--data-dir', dataDir]);
  t.equal(status.exitCode, 0, 'the lab is still running after the demo returned');
  t.match(status.stdout, /9 Pod\(s\)/);
  const entered = await labCli(['exec', '--data-dir', dataDir, 'y/a', '--', 'true']);
  t.equal(entered.exitCode, 0, 'its Pods can be entered');

  const state = readState(new LabPaths(dataDir));
  if (state === undefined) throw new Error('no state');
  const names = labNamespaces(netns, state.prefix);
  const before = processesInNetns(names);
  t.ok(before.length >= 2 * 2 + 9, `OVS daemons and Pod programs run in the lab's namespaces (${before.length})`);
  process.kill(state.pid, 'SIGKILL');
  await eventually('the supervisor is gone', () => {
    try {
      process.kill(state.pid, 0);
      return false;
    } catch {
      return true;
    }
  });
  t.ok(processesInNetns(names).length > 0, 'its children outlive it (down must find them)');
  const st = await labCli(['status', '--data-dir', dataDir]);
  t.equal(st.exitCode, 3);
  t.match(st.stdout, /supervisor not running \(antrea-lab down cleans up\)/);

  const down = await labCli(['down', '--data-dir', dataDir]);
  t.equal(down.exitCode, 0, 'exit status 0', { output: down.stdout + down.stderr });
  t.match(down.stdout, /leftover process\(es\) stopped/);
  t.same(await labInventory(dataDir), [], 'no namespace, link, process, mount or file is left');
  t.same(await labRoutes(state.prefix), routesBefore, "the root namespace's routes are as before");
});

t.test('demo --once removes the lab at the end', async (t) => {
  const dataDir = labDataDir('once');
  t.teardown(async () => {
    await labCli(['down', '--data-dir', dataDir]);
  });
  const r = await labCli(['demo', '--once', '--data-dir', dataDir]);
  t.equal(r.exitCode, 0, 'exit status 0', { output: r.stdout + r.stderr });
  for (const re of SECTIONS) t.match(r.stdout, re);
  t.match(r.stdout, new RegExp(`lab removed \\(${dataDir}\\)\n$`));
  t.notMatch(r.stdout, /keeps running/);
  t.same(await labInventory(dataDir), []);
});

t.test('Ctrl-C during the demo removes the lab', async (t) => {
  const dataDir = labDataDir('intr');
  t.teardown(async () => {
    await labCli(['down', '--data-dir', dataDir]);
  });
  const child = spawn(process.execPath, [LAB_CLI, 'demo', '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  await eventually('the demo probes', () => out.includes('[3/5]'), 240_000);
  child.kill('SIGINT');
  const code = await exited;
  t.equal(code, 130, out);
  t.match(out, /SIGINT: stopping[\s\S]*stopping: removing the lab\nlab removed[\s\S]*stopped\n$/);
  t.same(await labInventory(dataDir), [], 'nothing is left');
});
