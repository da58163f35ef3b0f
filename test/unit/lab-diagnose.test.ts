/**
 * The wrong-pair diagnosis (src/lab/diagnose.ts) over a fake command runner: which flows count as
 * hit (counters that grew; ages and durations ignored), what the summary and the files hold, and
 * that an unreachable ovs-vswitchd is recorded rather than thrown.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diagnoseWrongPairs, flowsHit, traceableFlow } from '../../src/lab/diagnose.ts';
import type { CommandRunner, ExecResult } from '../../src/common/util/exec.ts';

const BEFORE = [
  'OFPST_FLOW reply (OF1.5) (xid=0x2):',
  ' cookie=0x1, duration=10.1s, table=0, n_packets=5, n_bytes=300, idle_age=1, priority=200,in_port=2 actions=goto_table:1',
  ' cookie=0x2, duration=10.1s, table=30, n_packets=0, n_bytes=0, priority=200,ip,reg1=0x8020,nw_src=10.10.1.3 actions=conjunction(7,1/2)',
  ' cookie=0x2, duration=10.1s, table=31, n_packets=7, n_bytes=420, priority=200,ip,reg1=0x8020 actions=drop',
].join('\n');
const AFTER = [
  'OFPST_FLOW reply (OF1.5) (xid=0x2):',
  ' cookie=0x1, duration=12.9s, table=0, n_packets=5, n_bytes=300, idle_age=3, priority=200,in_port=2 actions=goto_table:1',
  ' cookie=0x2, duration=12.9s, table=30, n_packets=0, n_bytes=0, priority=200,ip,reg1=0x8020,nw_src=10.10.1.3 actions=conjunction(7,1/2)',
  ' cookie=0x2, duration=12.9s, table=31, n_packets=10, n_bytes=600, priority=200,ip,reg1=0x8020 actions=drop',
  ' cookie=0x3, duration=0.5s, table=32, n_packets=2, n_bytes=120, priority=100 actions=goto_table:33',
].join('\n');

t.test('flowsHit: counters that grew, new flows with packets; durations and ages ignored', (t) => {
  t.same(flowsHit(BEFORE, AFTER), [
    '+3 cookie=0x2, table=31, priority=200,ip,reg1=0x8020 actions=drop',
    '+2 cookie=0x3, table=32, priority=100 actions=goto_table:33',
  ]);
  t.same(flowsHit(AFTER, AFTER), [], 'nothing moved');
  t.end();
});

t.test('diagnoseWrongPairs: probes each pair, dumps per Node, survives a missing ovs-vswitchd', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'diagnose-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const dumps = [BEFORE, AFTER];
  const calls: string[] = [];
  const runner: CommandRunner = {
    run: (cmd, args): Promise<ExecResult> => {
      calls.push([cmd, ...args].join(' '));
      return Promise.resolve({ stdout: dumps.shift() ?? '', stderr: '', exitCode: 0 });
    },
  };
  const probes: string[] = [];
  const lines = await diagnoseWrongPairs({
    runner,
    dir,
    nodes: [{ name: 'node-1', bridgeMgmtSocket: '/nonexistent/br-int.mgmt', vswitchdSocket: join(dir, 'no.ctl') }],
    pairs: [{ from: 'y/a', to: 'x/c', fromIp: '10.10.1.3', toIp: '10.10.0.4' }],
    reprobe: (p, i) => {
      probes.push(`${p.from}>${p.to}#${i}`);
      return Promise.resolve(i === 0 ? 'timeout' : 'connected');
    },
  });
  t.same(probes, ['y/a>x/c#0', 'y/a>x/c#1', 'y/a>x/c#2', 'y/a>x/c#0'], 'three probes of the pair, one after the purge');
  t.same(calls, [
    'ovs-ofctl -O OpenFlow15 dump-flows unix:/nonexistent/br-int.mgmt',
    'ovs-ofctl -O OpenFlow15 dump-flows unix:/nonexistent/br-int.mgmt',
  ]);
  t.equal(lines[0], 'y/a → x/c again: timeout; connected; connected');
  t.match(lines[1], /^node-1: 2 flow\(s\) hit while probing again, 0 conntrack entries of the pairs$/);
  t.ok(lines.includes('  hit +3 cookie=0x2, table=31, priority=200,ip,reg1=0x8020 actions=drop'));
  t.equal(lines.at(-2), 'y/a → x/c after revalidator/purge: timeout');
  t.equal(lines.at(-1), `dumps in ${dir}`);
  t.match(readFileSync(join(dir, 'node-1-conntrack.txt'), 'utf8'), /^\(failed: /, 'the unreachable daemon is recorded');
  t.equal(readFileSync(join(dir, 'node-1-flows-after.txt'), 'utf8'), AFTER);
  t.equal(readFileSync(join(dir, 'summary.txt'), 'utf8'), `${lines.join('\n')}\n`);
});

t.test('traceableFlow: counters and actions dropped, a tunnel TTL added when missing', (t) => {
  t.equal(
    traceableFlow(
      'recirc_id(0x9),in_port(3),eth_type(0x0800),ipv4(frag=no), packets:3, bytes:222, used:0.5s, actions:drop',
    ),
    'recirc_id(0x9),in_port(3),eth_type(0x0800),ipv4(frag=no)',
  );
  t.equal(
    traceableFlow(
      'tunnel(tun_id=0x0,src=192.0.2.12,dst=192.0.2.11,geneve(),flags(-df-csum+key)),recirc_id(0x9),in_port(4), packets:15, bytes:1110, used:1.075s, flags:S, actions:drop',
    ),
    'tunnel(ttl=64,tun_id=0x0,src=192.0.2.12,dst=192.0.2.11,geneve(),flags(-df-csum+key)),recirc_id(0x9),in_port(4)',
  );
  t.equal(traceableFlow('tunnel(ttl=5,src=1.1.1.1),in_port(4), packets:1'), 'tunnel(ttl=5,src=1.1.1.1),in_port(4)');
  t.end();
});
