/**
 * The Linux PodInterfaceConfigurator and NodeNetwork against the real kernel (no OVS): a veth made
 * straight into a Pod namespace with MAC, MTU, IPv4 and IPv6 addresses, routes and TX checksum
 * offload off; CHECK finds damage; gratuitous ARPs leave the Pod; an existing interface, a taken
 * host name and a missing namespace are refused without leftovers; removal is idempotent. The
 * agent process runs the same code inside a Node namespace; here this test process enters one
 * with setns for the host side, as the agent does for Pods.
 */
import t, { type Test } from 'tap';
import { inNetns, txChecksumEnabled } from '../../src/platform/linux/libc.ts';
import { LinuxNodeNetwork } from '../../src/platform/linux/node-network.ts';
import { Netlink } from '../../src/platform/linux/netlink.ts';
import { LinuxPodInterfaces } from '../../src/platform/linux/pod-interfaces.ts';
import { integrationSkipReason, runner, shortTempDir, tempNetns } from '../helpers/env.ts';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

/** Host-side netlink in a private "Node" namespace, so host veths do not land in the test's own. */
async function rig(t: Test): Promise<{ node: string; pods: LinuxPodInterfaces; host: Netlink }> {
  const node = await tempNetns(t, 'node-');
  const host = inNetns(`/run/netns/${node}`, () => Netlink.open());
  t.teardown(() => host.close());
  return { node, pods: new LinuxPodInterfaces({ host, hostNetns: `/run/netns/${node}` }), host };
}

const ips = [
  { address: '10.20.0.5/24', gateway: '10.20.0.1' },
  { address: 'fd00:20::5/64', gateway: 'fd00:20::1' },
];
const routes = [
  { dst: '0.0.0.0/0', gw: '10.20.0.1' },
  { dst: '192.0.2.0/24', gw: '10.20.0.1' },
];

t.test('configure, check, announce, remove', async (t) => {
  const { node, pods } = await rig(t);
  const podNs = await tempNetns(t, 'pod-');
  const netns = `/run/netns/${podNs}`;
  const made = await pods.configure({
    containerId: 'c1',
    ifname: 'eth0',
    netns,
    podName: 'web',
    podNamespace: 'default',
    hostInterfaceName: 'web-abcdef',
    mtu: 1400,
    disableTxChecksumOffload: true,
    // Still pending when configure starts, as while host-local runs.
    addressing: new Promise((resolve) => setTimeout(() => resolve({ ips, routes, dns: {} }), 50)),
    containerMac: '0a:00:00:00:00:05',
  });
  t.equal(made.containerInterface.mac, '0a:00:00:00:00:05', 'the MAC the caller chose');
  const inside = (await runner.run('ip', ['-n', podNs, '-o', 'addr', 'show', 'eth0'])).stdout;
  t.match(inside, /inet 10\.20\.0\.5\/24/);
  t.match(inside, /inet6 fd00:20::5\/64/);
  const link = (await runner.run('ip', ['-n', podNs, 'link', 'show', 'eth0'])).stdout;
  t.match(link, /mtu 1400.*state UP/s);
  t.match(link, new RegExp(made.containerInterface.mac));
  const route = (await runner.run('ip', ['-n', podNs, 'route'])).stdout;
  t.match(route, /default via 10\.20\.0\.1 dev eth0/);
  t.match(route, /192\.0\.2\.0\/24 via 10\.20\.0\.1 dev eth0/);
  t.match((await runner.run('ip', ['-n', node, 'link', 'show', 'web-abcdef'])).stdout, /mtu 1400.*state UP/s);
  t.equal(
    (
      await runner.run('ip', ['netns', 'exec', node, 'cat', '/proc/sys/net/ipv4/conf/web-abcdef/arp_ignore'])
    ).stdout.trim(),
    '8',
    'the host side never answers ARP',
  );
  const hostLink = (await runner.run('ip', ['-n', node, 'link', 'show', 'web-abcdef'])).stdout;
  t.match(hostLink, /<[^>]*PROMISC[^>]*>/, 'the host end is promiscuous already (no later link event from OVS)');
  t.equal(
    (await runner.run('ip', ['-n', node, '-6', '-o', 'addr', 'show', 'dev', 'web-abcdef'])).stdout.trim(),
    '',
    'the host end has no IPv6 address',
  );
  t.match(
    (await runner.run('ip', ['-n', podNs, '-6', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout,
    /inet6 fe80::/,
    "the Pod's end keeps its IPv6 link-local address",
  );
  t.equal(
    inNetns(netns, () => txChecksumEnabled('eth0')),
    false,
    'TX checksum offload is off inside the Pod',
  );
  t.equal(
    inNetns(`/run/netns/${node}`, () => txChecksumEnabled('web-abcdef')),
    true,
    'and untouched on the host end',
  );
  t.same(await pods.hostInterface('web-abcdef'), { name: 'web-abcdef', mac: made.hostInterface.mac });

  const expect = {
    containerId: 'c1',
    ifname: 'eth0',
    hostInterfaceName: 'web-abcdef',
    netns,
    mac: made.containerInterface.mac,
    ips,
    routes,
  };
  t.same(await pods.check(expect), [], 'CHECK passes');
  await runner.run('ip', ['-n', podNs, 'route', 'del', '192.0.2.0/24']);
  t.match((await pods.check(expect)).join(), /route to 192\.0\.2\.0\/24 via 10\.20\.0\.1 is missing/);
  t.match((await pods.check({ ...expect, mac: '02:00:00:00:00:99' })).join(), /has MAC/);

  // Gratuitous ARP: capture ARP on the host end while the Pod announces itself.
  const capture = runner.run(
    'ip',
    ['netns', 'exec', node, 'tcpdump', '-l', '-n', '-c', '3', '-i', 'web-abcdef', 'arp'],
    { timeoutMs: 10_000 },
  );
  await new Promise((r) => setTimeout(r, 700)); // tcpdump attaches
  await pods.advertise({ netns, ifname: 'eth0', ips });
  const arps = (await capture).stdout.split('\n').filter((l) => l.includes('ARP'));
  t.equal(arps.length, 3, 'three ARP announcements');
  t.ok(
    arps.every((l) => /Request who-has 10\.20\.0\.5 tell 10\.20\.0\.5/.test(l)),
    'sender = target = the Pod IP',
  );

  await pods.remove({ containerId: 'c1', ifname: 'eth0', hostInterfaceName: 'web-abcdef', netns });
  t.equal(await pods.hostInterface('web-abcdef'), undefined, 'the host end is gone');
  t.notMatch((await runner.run('ip', ['-n', podNs, '-o', 'link'])).stdout, /eth0/, 'and the Pod end with it');
  await pods.remove({ containerId: 'c1', ifname: 'eth0', hostInterfaceName: 'web-abcdef' });
  t.pass('removing again is fine');
});

t.test('refusals leave nothing behind', async (t) => {
  const { node, pods } = await rig(t);
  const podNs = await tempNetns(t, 'pod-');
  const netns = `/run/netns/${podNs}`;
  const req = {
    containerId: 'c2',
    ifname: 'eth0',
    netns,
    podName: 'db',
    podNamespace: 'default',
    hostInterfaceName: 'db-abcdef',
    mtu: 1500,
    disableTxChecksumOffload: false,
    addressing: Promise.resolve({ ips: [{ address: '10.20.0.6/24', gateway: '10.20.0.1' }], routes: [], dns: {} }),
  };
  await t.rejects(pods.configure({ ...req, netns: '/run/netns/nope-nope' }), { code: 'POD_NETNS_NOT_FOUND' });
  const notNs = join(shortTempDir(t), 'file');
  mkdirSync(join(notNs, '..'), { recursive: true });
  writeFileSync(notNs, 'x');
  await t.rejects(pods.configure({ ...req, netns: notNs }), { code: 'POD_NETNS_NOT_FOUND' });

  await runner.run('ip', ['-n', podNs, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'other']);
  await t.rejects(pods.configure(req), { code: 'POD_INTERFACE_EXISTS', message: /eth0 already exists/ });
  await runner.run('ip', ['-n', podNs, 'link', 'del', 'eth0']);

  await runner.run('ip', ['-n', node, 'link', 'add', 'db-abcdef', 'type', 'veth', 'peer', 'name', 'x-peer']);
  await t.rejects(pods.configure(req), { code: 'POD_INTERFACE_EXISTS', message: /db-abcdef already exists/ });
  t.notMatch((await runner.run('ip', ['-n', podNs, '-o', 'link'])).stdout, /eth0/, 'nothing was made in the Pod');
  await runner.run('ip', ['-n', node, 'link', 'del', 'db-abcdef']);

  await t.rejects(
    pods.configure({
      ...req,
      addressing: Promise.resolve({ ips: [], routes: [{ dst: '198.51.100.0/24', gw: '203.0.113.1' }], dns: {} }),
    }),
    { code: 'POD_INTERFACE_FAILED' },
    'an unreachable gateway fails the route',
  );
  t.equal(await pods.hostInterface('db-abcdef'), undefined, 'and the failed veth was removed');
  const ipamError = new Error('no addresses left');
  await t.rejects(
    pods.configure({ ...req, addressing: Promise.reject(ipamError) }),
    ipamError,
    'a failed addressing is rethrown as is',
  );
  t.equal(await pods.hostInterface('db-abcdef'), undefined, 'and the veth made meanwhile was removed');
  t.notMatch((await runner.run('ip', ['-n', podNs, '-o', 'link'])).stdout, /eth0/);
  const made = await pods.configure(req);
  t.match(
    made.containerInterface.mac,
    /^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/,
    'once nothing is in the way it works; without a chosen MAC, a random locally administered one',
  );
  await pods.remove({ containerId: 'c2', ifname: 'eth0', hostInterfaceName: 'db-abcdef' });
});

t.test('the Node network: forwarding, transport interface, gateway', async (t) => {
  const node = await tempNetns(t, 'node-');
  const host = inNetns(`/run/netns/${node}`, () => Netlink.open());
  t.teardown(() => host.close());
  // Sysctls go to a stand-in tree here (the agent test checks the real ones inside its Node).
  const sys = shortTempDir(t, 'sys');
  mkdirSync(join(sys, 'net/ipv4/conf/gw0'), { recursive: true });
  writeFileSync(join(sys, 'net/ipv4/conf/gw0/arp_announce'), '0\n');
  writeFileSync(join(sys, 'net/ipv4/ip_forward'), '0\n');
  const net = new LinuxNodeNetwork({ host, procSys: sys });
  await net.prepareHost({ ipv4: true, ipv6: false });
  t.equal(readFileSync(join(sys, 'net/ipv4/ip_forward'), 'utf8'), '1', 'IPv4 forwarding on');
  await runner.run('ip', ['-n', node, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1']);
  await runner.run('ip', ['-n', node, 'addr', 'add', '192.0.2.7/24', 'dev', 'up0']);
  await runner.run('ip', ['-n', node, 'link', 'set', 'up0', 'mtu', '9000']);
  const transport = await net.transportInterface({ name: '', nodeIPs: ['192.0.2.7'] });
  t.match(transport, { name: 'up0', mtu: 9000, addresses: ['192.0.2.7/24'] });
  t.equal((await net.transportInterface({ name: 'up1', nodeIPs: [] })).name, 'up1');
  await t.rejects(net.transportInterface({ name: '', nodeIPs: ['198.51.100.1'] }), {
    code: 'HOST_INTERFACE_NOT_FOUND',
  });
  await t.rejects(net.transportInterface({ name: 'nope', nodeIPs: [] }), { code: 'HOST_INTERFACE_NOT_FOUND' });

  // A stand-in for OVS's internal port: a veth end named like the gateway.
  await runner.run('ip', ['-n', node, 'link', 'add', 'gw0', 'type', 'veth', 'peer', 'name', 'gw0-peer']);
  await runner.run('ip', ['-n', node, 'addr', 'add', '10.99.0.1/24', 'dev', 'gw0']);
  const gw = await net.configureGateway({ name: 'gw0', addresses: ['10.20.0.1/24'], mtu: 1450 });
  t.same(gw.addresses, ['10.20.0.1/24'], 'exactly the wanted address (a stale one removed)');
  t.equal(gw.mtu, 1450);
  const again = await net.configureGateway({ name: 'gw0', addresses: ['10.20.0.1/24'], mtu: 1450 });
  t.same(again, gw, 'configuring again changes nothing');
  t.equal(readFileSync(join(sys, 'net/ipv4/conf/gw0/arp_announce'), 'utf8'), '1', 'arp_announce=1 on the gateway');
  await t.rejects(net.configureGateway({ name: 'absent0', addresses: [], mtu: 1450, appearTimeoutMs: 100 }), {
    code: 'HOST_INTERFACE_NOT_FOUND',
  });
});
