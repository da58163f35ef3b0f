/**
 * Smaller agent parts: the interface store and its OVSDB external_ids, IP helpers, locks, crash
 * points, the pending-ADD journal, host-local delegation (golden command line and stdin) and
 * reservation parsing, and host interface naming.
 */
import t, { type Test } from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseNetworkConfig } from '../../src/common/apis/cni/spec.ts';
import { PendingAddJournal } from '../../src/common/agent/cniserver/journal.ts';
import {
  containerExternalIds,
  type InterfaceConfig,
  interfaceFromPort,
  InterfaceStore,
} from '../../src/common/agent/interfacestore.ts';
import { HostLocalIpam, reservationIp } from '../../src/common/agent/ipam/host-local.ts';
import { podHostInterfaceName } from '../../src/common/host/pod-interfaces.ts';
import type { PortInfo } from '../../src/common/ovs/ovsdb/bridge.ts';
import { crashPointsFromEnv } from '../../src/common/util/crash.ts';
import {
  canonicalIp,
  cidrContains,
  firstHostIp,
  formatIp,
  ipBytes,
  parseCidr,
  randomMac,
} from '../../src/common/util/ip.ts';
import { KeyedMutex, RwLock } from '../../src/common/util/locks.ts';
import { RecordingRunner } from '../helpers/recording-runner.ts';

function tmp(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'ats-parts-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function port(name: string, externalIds: Record<string, string>, extra: Partial<PortInfo> = {}): PortInfo {
  return {
    name,
    uuid: `u-${name}`,
    interfaceUuid: `i-${name}`,
    type: 'system',
    ofport: 5,
    ofportRequest: undefined,
    options: {},
    externalIds,
    interfaceExternalIds: {},
    mac: '0a:00:00:00:00:09',
    mtu: 1450,
    error: undefined,
    ...extra,
  };
}

t.test('Pod interfaces round-trip through OVSDB external_ids', (t) => {
  const pod: InterfaceConfig & { container: NonNullable<InterfaceConfig['container']> } = {
    type: 'container',
    name: 'web-2f2276',
    ofport: 7,
    mac: '02:00:00:00:00:01',
    ips: ['10.10.1.2', 'fd00::2'],
    container: { containerId: 'c1', podName: 'web', podNamespace: 'default', ifDev: 'eth0', netns: '/run/netns/p1' },
  };
  const ids = containerExternalIds(pod);
  t.same(ids, {
    'antrea-type': 'container',
    'attached-mac': '02:00:00:00:00:01',
    'container-id': 'c1',
    'ip-address': '10.10.1.2,fd00::2',
    'pod-name': 'web',
    'pod-namespace': 'default',
    'net-ns': '/run/netns/p1',
  });
  t.notOk('if-dev' in ids, 'if-dev only for interfaces other than eth0');
  t.same(interfaceFromPort(port(pod.name, ids, { ofport: 7 })), pod);
  const eth1 = containerExternalIds({ ...pod, container: { ...pod.container, ifDev: 'eth1' } });
  t.equal(eth1['if-dev'], 'eth1');
  t.equal(interfaceFromPort(port('x', {})), undefined, 'ports without antrea-type are not ours');
  t.equal(interfaceFromPort(port('x', { 'antrea-type': 'container' })), undefined, 'a container port needs its id');
  t.same(interfaceFromPort(port('antrea-gw0', { 'antrea-type': 'gateway' })), {
    type: 'gateway',
    name: 'antrea-gw0',
    ofport: 5,
    ips: [],
    mac: '0a:00:00:00:00:09',
  });
  t.end();
});

t.test('the interface store indexes', (t) => {
  const s = new InterfaceStore();
  const n = s.initialize([
    port(
      'web-1',
      {
        'antrea-type': 'container',
        'container-id': 'c1',
        'ip-address': '10.0.0.2',
        'pod-name': 'web',
        'pod-namespace': 'ns',
      },
      { ofport: 3 },
    ),
    port('antrea-gw0', { 'antrea-type': 'gateway' }, { ofport: 32769 }),
    port('foreign', {}),
  ]);
  t.equal(n, 2);
  t.equal(s.byContainer('c1', 'eth0')?.name, 'web-1');
  t.equal(s.byIp('10.0.0.2')?.name, 'web-1');
  t.equal(s.byOfport(32769)?.name, 'antrea-gw0');
  t.equal(s.byName('web-1')?.container?.containerId, 'c1');
  t.same(
    s.byPod('ns', 'web').map((i) => i.name),
    ['web-1'],
  );
  t.same(
    s.containerInterfaces('c1').map((i) => i.name),
    ['web-1'],
  );
  t.same(
    s.list().map((i) => i.name),
    ['antrea-gw0', 'web-1'],
  );
  s.delete('c/c1/eth0');
  t.equal(s.size, 1);
  t.end();
});

t.test('host interface names follow Antrea', (t) => {
  t.equal(podHostInterfaceName('web-7975b8c6f-abcde', 'c1', 'eth0').length <= 15, true);
  t.match(podHostInterfaceName('web-7975b8c6f-abcde', 'c1', 'eth0'), /^web-7975-[0-9a-f]{6}$/);
  t.match(podHostInterfaceName('--ab', 'c1', 'eth0'), /^ab-[0-9a-f]{6}$/, 'leading hyphens dropped');
  t.match(podHostInterfaceName('', 'c1', 'eth0'), /^pod-[0-9a-f]{6}$/);
  t.not(
    podHostInterfaceName('web', 'c1', 'eth0'),
    podHostInterfaceName('web', 'c1', 'eth1'),
    'the ifname joins the hash',
  );
  t.equal(podHostInterfaceName('web', 'c1', 'eth0'), 'web-' + '2f2276', 'SHA-1 of the container id');
  t.end();
});

t.test('IP helpers', (t) => {
  t.equal(formatIp(ipBytes('fd00:0:0::1')!), 'fd00::1');
  t.equal(formatIp(ipBytes('::ffff:10.0.0.1')!), '::ffff:10.0.0.1');
  t.equal(formatIp(ipBytes('1:2:3:4:5:6:7:8')!), '1:2:3:4:5:6:7:8');
  t.equal(canonicalIp('FD00::0001'), 'fd00::1');
  t.equal(firstHostIp('10.10.1.0/24'), '10.10.1.1');
  t.equal(firstHostIp('10.10.1.77/24'), '10.10.1.1');
  t.equal(firstHostIp('fd00:10::/64'), 'fd00:10::1');
  t.ok(cidrContains('10.10.1.0/24', '10.10.1.200'));
  t.notOk(cidrContains('10.10.1.0/24', '10.10.2.1'));
  t.notOk(cidrContains('10.10.1.0/24', 'fd00::1'));
  t.throws(() => parseCidr('10.0.0.0/33', 'podCIDR'), { message: /podCIDR: not a CIDR/ });
  t.throws(() => parseCidr('10.0.0.0', 'podCIDR'), { message: /podCIDR: not a CIDR/ });
  t.equal(ipBytes('1::2::3'), undefined);
  const mac = randomMac(() => Uint8Array.from([0xff, 1, 2, 3, 4, 5]));
  t.equal(mac, 'fe:01:02:03:04:05', 'locally administered, unicast');
  t.end();
});

t.test('locks', async (t) => {
  const m = new KeyedMutex();
  const order: string[] = [];
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const a = m.run('k', async () => {
    order.push('a1');
    await held;
    order.push('a2');
  });
  const b = m.run('k', () => Promise.resolve(order.push('b')));
  const c = m.run('other', () => Promise.resolve(order.push('c')));
  await c;
  t.ok(m.busy('k'));
  release();
  await Promise.all([a, b]);
  t.same(order, ['a1', 'c', 'a2', 'b']);
  t.notOk(m.busy('k'));
  await t.rejects(m.run('k', () => Promise.reject(new Error('x'))));
  t.equal(await m.run('k', () => Promise.resolve(1)), 1, 'a failure does not wedge the key');

  const rw = new RwLock();
  const ev: string[] = [];
  let r1!: () => void;
  const s1 = rw.shared(() => new Promise<void>((r) => (r1 = () => (ev.push('s1 end'), r()))));
  const x = rw.exclusive(() => Promise.resolve(ev.push('x')));
  const s2 = rw.shared(() => Promise.resolve(ev.push('s2')));
  await Promise.resolve();
  t.same(ev, [], 'the writer waits for the reader; the later reader waits for the writer');
  r1();
  await Promise.all([s1, x, s2]);
  t.same(ev, ['s1 end', 'x', 's2']);
});

t.test('crash points fire only when armed', (t) => {
  const hits: string[] = [];
  const cp = crashPointsFromEnv({ ANTREA_CRASH_POINT: 'b, c' }, (n) => hits.push(n));
  cp.hit('a');
  cp.hit('b');
  cp.hit('c');
  t.same(hits, ['b', 'c']);
  const none = crashPointsFromEnv({}, () => hits.push('never'));
  none.hit('b');
  t.equal(hits.length, 2);
  t.end();
});

t.test('the pending-ADD journal', (t) => {
  const dir = tmp(t);
  const j = new PendingAddJournal(join(dir, 'pending'));
  t.same(j.list(), [], 'no directory yet: empty');
  const rec = {
    containerId: 'c1',
    ifname: 'eth/0',
    netns: '/n',
    hostInterfaceName: 'h',
    podName: 'p',
    podNamespace: 'ns',
    args: '',
    cniPath: '',
    networkConfig: '{}',
    startedAt: 1,
  };
  j.begin(rec);
  t.same(j.get('c1', 'eth/0'), rec);
  t.same(j.list(), [rec]);
  writeFileSync(join(dir, 'pending', 'x.json.tmp'), '{');
  writeFileSync(join(dir, 'pending', 'broken.json'), '{');
  t.same(j.list(), [rec], 'torn and unreadable records are dropped');
  j.commit('c1', 'eth/0');
  j.commit('c1', 'eth/0');
  t.same(j.list(), []);
  t.end();
});

t.test('host-local delegation: command line, environment and configuration', async (t) => {
  const dir = tmp(t);
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'host-local'), '#!/bin/sh\n', { mode: 0o755 });
  const runner = new RecordingRunner(true).on(/host-local$/, (line) => ({
    stdout: line.includes('VERSION')
      ? ''
      : '{"cniVersion":"1.0.0","ips":[{"address":"10.10.1.2/24","gateway":"10.10.1.1"}]}',
  }));
  const versions: string[] = [];
  const ipam = new HostLocalIpam({
    runner: {
      run: (cmd, args, opts) => {
        versions.push(opts?.env?.['CNI_COMMAND'] ?? '');
        if (opts?.env?.['CNI_COMMAND'] === 'VERSION') {
          return Promise.resolve({
            stdout: '{"supportedVersions":["0.3.1","0.4.0","1.0.0"]}',
            stderr: '',
            exitCode: 0,
          });
        }
        return runner.run(cmd, args, opts);
      },
    },
    pluginDirs: ['/nonexistent'],
    dataDir: join(dir, 'data'),
  });
  const network = parseNetworkConfig(
    JSON.stringify({
      cniVersion: '1.1.0',
      name: 'antrea',
      type: 'antrea',
      ipam: { type: 'host-local', subnet: '1.2.3.0/24', routes: [{ dst: '192.0.2.0/24' }] },
    }),
  );
  const res = await ipam.add({
    containerId: 'c1',
    ifname: 'eth0',
    netns: '/run/netns/p',
    args: 'K8S_POD_NAME=web',
    cniPath: `${join(dir, 'bin')}:/other`,
    network,
    podCIDRs: ['10.10.1.0/24'],
  });
  t.same(res.ips, [{ address: '10.10.1.2/24', gateway: '10.10.1.1' }]);
  t.same(versions, ['VERSION', 'ADD']);
  t.equal(runner.commands[0], join(dir, 'bin', 'host-local'), 'found through CNI_PATH');
  t.same(
    JSON.parse(runner.inputs[0]!),
    {
      cniVersion: '1.0.0',
      name: 'antrea',
      type: 'antrea',
      ipam: {
        type: 'host-local',
        routes: [{ dst: '192.0.2.0/24' }],
        ranges: [[{ subnet: '10.10.1.0/24', gateway: '10.10.1.1' }]],
        dataDir: join(dir, 'data'),
      },
    },
    'the Node Pod CIDR replaces any subnet; the version is the newest host-local speaks',
  );
  await t.rejects(
    new HostLocalIpam({ runner, pluginDirs: [], dataDir: dir }).add({
      containerId: 'c1',
      ifname: 'eth0',
      netns: '',
      args: '',
      cniPath: '/nowhere',
      network,
      podCIDRs: ['10.10.1.0/24'],
    }),
    { code: 'IPAM_FAILURE', message: /failed to find plugin "host-local" in path \[\/nowhere\]/ },
  );
});

t.test('STATUS and GC reach host-local only when it speaks 1.1.0', async (t) => {
  const dir = tmp(t);
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'host-local'), '#!/bin/sh\n', { mode: 0o755 });
  const network = parseNetworkConfig(
    JSON.stringify({
      cniVersion: '1.1.0',
      name: 'antrea',
      type: 'antrea',
      ipam: { type: 'host-local' },
      'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'eth0' }],
    }),
  );
  const req = {
    containerId: '',
    ifname: '',
    netns: '',
    args: '',
    cniPath: join(dir, 'bin'),
    network,
    podCIDRs: ['10.10.1.0/24'],
  };
  for (const [versions, forwarded] of [
    ['["0.4.0","1.0.0"]', false],
    ['["1.0.0","1.1.0"]', true],
  ] as const) {
    const runner = new RecordingRunner().on(/./, { stdout: `{"supportedVersions":${versions}}` });
    const ipam = new HostLocalIpam({ runner, pluginDirs: [], dataDir: dir });
    await ipam.status(req);
    t.equal(await ipam.gc(req), forwarded, `GC forwarded: ${forwarded}`);
    const cmds = runner.inputs.filter((i) => i !== '{}');
    t.equal(cmds.length, forwarded ? 2 : 0, forwarded ? 'STATUS and GC ran' : 'nothing ran but VERSION');
    if (forwarded) {
      t.same((JSON.parse(cmds[1]!) as Record<string, unknown>)['cni.dev/valid-attachments'], [
        { containerID: 'c1', ifname: 'eth0' },
      ]);
    }
  }
});

t.test('host-local reservations on disk', (t) => {
  const dir = tmp(t);
  const net = join(dir, 'antrea');
  mkdirSync(net);
  writeFileSync(join(net, '10.10.1.2'), 'c1\r\neth0');
  writeFileSync(join(net, 'fd00::3'.replaceAll(':', '_')), 'c2\neth1');
  writeFileSync(join(net, 'last_reserved_ip.0'), '10.10.1.2');
  writeFileSync(join(net, 'lock'), '');
  const ipam = new HostLocalIpam({ runner: new RecordingRunner(), pluginDirs: [], dataDir: dir });
  const rs = ipam.reservations().sort((a, b) => a.ip.localeCompare(b.ip));
  t.same(
    rs.map((r) => [r.network, r.ip, r.containerId, r.ifname]),
    [
      ['antrea', '10.10.1.2', 'c1', 'eth0'],
      ['antrea', 'fd00::3', 'c2', 'eth1'],
    ],
  );
  ipam.release(rs.filter((r) => r.ip === '10.10.1.2'));
  t.same(
    ipam.reservations().map((r) => r.ip),
    ['fd00::3'],
  );
  t.equal(reservationIp('last_reserved_ip.0'), undefined);
  t.equal(reservationIp('lock'), undefined);
  t.end();
});
