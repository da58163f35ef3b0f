import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { OvsDaemons, OvsDaemonError } from '../../src/platform/linux/ovs-daemons.ts';
import { integrationSkipReason, launcher, runner, shortTempDir, tempNetns, tempOvs } from '../helpers/env.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

function alive(pid: number): boolean {
  try {
    return !/^\d+ \([^)]*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
function pidOf(ovs: OvsDaemons, d: 'ovsdb-server' | 'ovs-vswitchd'): number {
  return Number(readFileSync(ovs.pidPath(d), 'utf8').trim());
}

t.test('starts both daemons in a namespace with a private run directory', async (t) => {
  const ovs = await tempOvs(t);
  t.ok(existsSync(ovs.dbSocketPath), 'db socket exists');
  t.ok(existsSync(ovs.ctlSocketPath('ovs-vswitchd')), 'vswitchd unixctl socket exists');
  const r = await runner.run('ovs-vsctl', [
    `--db=${ovs.dbEndpoint}`,
    'add-br',
    'br-t',
    '--',
    'set',
    'bridge',
    'br-t',
    'datapath_type=netdev',
  ]);
  t.equal(r.exitCode, 0);
  t.ok(existsSync(ovs.bridgeMgmtSocketPath('br-t')), 'bridge management socket is in the private run dir');
  // the bridge's internal port lives in the namespace, not in the root namespace
  const links = await runner.run('ip', ['-n', ovs.netns!, '-o', 'link', 'show', 'br-t']);
  t.match(links.stdout, /br-t/);
  t.notOk(existsSync('/sys/class/net/br-t'), 'nothing appears in the root namespace');
  const installed = /\(Open vSwitch\)\s+(\S+)/.exec((await runner.run('ovs-vswitchd', ['--version'])).stdout)?.[1];
  const recorded = await runner.run('ovs-vsctl', [`--db=${ovs.dbEndpoint}`, 'get', 'Open_vSwitch', '.', 'ovs_version']);
  t.equal(recorded.stdout.trim().replace(/^"|"$/g, ''), installed, 'ovs_version is recorded as ovs-ctl does');
  const vsPid = pidOf(ovs, 'ovs-vswitchd');
  const dbPid = pidOf(ovs, 'ovsdb-server');
  await ovs.stop();
  t.notOk(alive(vsPid), 'vswitchd is gone after stop');
  t.notOk(alive(dbPid), 'ovsdb-server is gone after stop');
});

t.test('restart keeps the database; kill is abrupt', async (t) => {
  const ovs = await tempOvs(t);
  await runner.run('ovs-vsctl', [
    `--db=${ovs.dbEndpoint}`,
    'add-br',
    'br-r',
    '--',
    'set',
    'bridge',
    'br-r',
    'datapath_type=netdev',
  ]);
  const before = pidOf(ovs, 'ovsdb-server');
  await ovs.restart('ovsdb-server');
  t.not(pidOf(ovs, 'ovsdb-server'), before, 'ovsdb-server has a new pid');
  t.notOk(alive(before));
  const r = await runner.run('ovs-vsctl', [`--db=${ovs.dbEndpoint}`, 'list-br']);
  t.equal(r.stdout.trim(), 'br-r', 'bridge survives the restart');
  await ovs.kill('ovs-vswitchd');
  t.notOk(ovs.running('ovs-vswitchd'));
  await ovs.start();
  t.ok(ovs.running('ovs-vswitchd'), 'start brings back only the missing daemon');
});

t.test('a failed start leaves no process behind', async (t) => {
  const ns = await tempNetns(t);
  const dir = shortTempDir(t, 'ovsbad');
  const ovs = new OvsDaemons({ runDir: dir, netns: ns, runner, launcher, schemaPath: '/nonexistent.ovsschema' });
  await t.rejects(ovs.start(), { code: 'OVS_NOT_INSTALLED' });
  t.notOk(ovs.running('ovsdb-server'));
  t.notOk(existsSync(ovs.pidPath('ovsdb-server')));

  const ovs2 = new OvsDaemons({ runDir: dir, netns: 'no-such-ns-x', runner, launcher, readyTimeoutMs: 3000 });
  const err = await ovs2.start().catch((e: unknown) => e);
  t.type(err, OvsDaemonError);
  t.notOk(ovs2.running('ovsdb-server'));
});

t.test('killStale removes daemons orphaned by a dead supervisor', async (t) => {
  const ovs = await tempOvs(t);
  const pids = [pidOf(ovs, 'ovsdb-server'), pidOf(ovs, 'ovs-vswitchd')];
  const n = await OvsDaemons.killStale(ovs.runDir);
  t.equal(n, 2);
  for (const p of pids) t.notOk(alive(p));
});
