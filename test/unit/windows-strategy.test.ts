/**
 * The Windows strategy on Linux: captured cmdlet output (test/unit/fixtures/windows) parsed into
 * typed results; every PowerShell script the strategy sends compared as golden text
 * (test/unit/golden/windows, regenerate with UPDATE_GOLDEN=1 and review the diff); the HNS network,
 * uplink and gateway set-up, Pod endpoints and routes against the fake Windows host, including
 * idempotent repeats, PowerShell errors turned into typed errors and rollback.
 */
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAgentConfig } from '../../src/common/agent/config.ts';
import { ovsSocketEndpoint } from '../../src/common/host/platform.ts';
import {
  checkGuid,
  hnsMac,
  normalizeMac,
  parseHnsEndpoints,
  parseHnsNetworks,
} from '../../src/platform/windows/hns.ts';
import {
  parseNetAdapters,
  parseNetIPAddresses,
  parseNetIPInterfaces,
  parseNetNats,
  parseNetRoutes,
} from '../../src/platform/windows/net.ts';
import { datapathIdFromMac, WindowsNodeNetwork } from '../../src/platform/windows/node-network.ts';
import { namespaceGuid, WindowsPodInterfaces } from '../../src/platform/windows/pod-interfaces.ts';
import { WINDOWS_CAPABILITIES, createWindowsPlatform } from '../../src/platform/windows/platform.ts';
import { WindowsRouteClient } from '../../src/platform/windows/routes.ts';
import { type PeerRoute, peerRouteKind, type RouteConfig } from '../../src/common/host/routes.ts';
import type { TrafficEncapMode } from '../../src/common/agent/config.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { FakeOvs } from '../helpers/fake-ovs-bridge.ts';
import { cmdletError, FakeWindowsHost } from '../helpers/fake-windows-host.ts';
import { matchesGolden } from '../helpers/golden.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'windows');
const GOLDEN = join(import.meta.dirname, 'golden', 'windows');
const fixture = (name: string): unknown => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8'));

function golden(t: Test, name: string, text: string): void {
  matchesGolden(t, join(GOLDEN, name), text);
}

const NODE = { podCIDRs: ['10.10.2.0/24'], nodeIPs: ['192.0.2.11'], transportInterface: '', bridgeName: 'br-int' };

const TRANSPORT = ['192.0.2.0/24'];

function routeCfg(trafficEncapMode: TrafficEncapMode, noSNAT: boolean): RouteConfig {
  return {
    trafficEncapMode,
    noSNAT,
    snatFullyRandomPorts: false,
    gatewayName: 'antrea-gw0',
    localPodCIDRs: ['10.10.2.0/24'],
    tunnelType: 'geneve',
    tunnelPort: 6081,
  };
}

/** A peer route as the NodeRoute controller decides it (peerRouteKind). */
function peer(
  podCIDR: string,
  nodeName: string,
  nodeIP: string,
  peerGatewayIP: string,
  mode: TrafficEncapMode,
): PeerRoute {
  return { podCIDR, nodeName, nodeIP, peerGatewayIP, via: peerRouteKind(mode, nodeIP, TRANSPORT) };
}

function host(): FakeWindowsHost {
  const h = new FakeWindowsHost();
  h.addUplink('Ethernet0', '00-15-5D-0A-0B-0C', '192.0.2.11', 24, '192.0.2.1');
  return h;
}

t.test('captured cmdlet output parses into typed results', (t) => {
  const nets = parseHnsNetworks(fixture('get-hnsnetwork.json'));
  t.equal(nets.length, 2);
  t.same(nets[1], {
    id: 'f3e9a0c1-5b2d-4e6f-8a7b-9c0d1e2f3a4b',
    name: 'antrea-hnsnetwork',
    type: 'Transparent',
    networkAdapterName: 'Ethernet0',
    sourceMac: '00:15:5d:0a:0b:0c',
    managementIp: '192.0.2.11',
    subnets: [{ addressPrefix: '10.10.2.0/24', gatewayAddress: '10.10.2.1' }],
    extensions: [
      { id: 'E7C3B2F0-F3C5-48DF-AF2B-10FED6D72E7A', name: 'Microsoft Windows Filtering Platform', isEnabled: false },
      { id: '583CC151-73EC-4A6A-8B47-578297AD7623', name: 'Open vSwitch Extension', isEnabled: true },
    ],
  });
  t.match(
    nets[0],
    { name: 'nat', type: 'NAT', networkAdapterName: '', sourceMac: '', managementIp: '' },
    'absent keys',
  );
  const single = parseHnsNetworks(fixture('get-hnsnetwork-single.json'));
  t.equal(single.length, 1, 'one network prints as an object, not an array');
  t.same(single[0]?.subnets, [{ addressPrefix: '10.10.2.0/24', gatewayAddress: '10.10.2.1' }], 'one subnet too');
  t.equal(single[0]?.extensions[0]?.isEnabled, false);
  t.same(parseHnsNetworks(null), [], 'no network prints nothing');

  const eps = parseHnsEndpoints(fixture('get-hnsendpoint.json'));
  t.same(eps[0], {
    id: '9d8c7b6a-5f4e-4d3c-8b2a-190817263544',
    name: 'web-2f2276',
    virtualNetwork: 'f3e9a0c1-5b2d-4e6f-8a7b-9c0d1e2f3a4b',
    virtualNetworkName: 'antrea-hnsnetwork',
    ipAddress: '10.10.2.5',
    prefixLength: 24,
    macAddress: '00:15:5d:0a:20:05',
    gatewayAddress: '10.10.2.1',
    dnsServerList: ['10.96.0.10'],
    dnsSuffix: 'default.svc.cluster.local,svc.cluster.local,cluster.local',
  });
  t.same(eps[1]?.dnsServerList, ['10.96.0.10', '10.96.0.11']);

  const adapters = parseNetAdapters(fixture('get-netadapter.json'));
  t.same(
    adapters.map((a) => [a.name, a.ifIndex, a.status, a.macAddress, a.virtual]),
    [
      ['br-int', 14, 'Up', '00:15:5d:0a:0b:0c', true],
      ['Ethernet0', 6, 'Up', '00:15:5d:0a:0b:0c', false],
      ['antrea-gw0', 19, 'Disabled', 'e6:3a:91:4c:0d:77', true],
    ],
  );
  const addrs = parseNetIPAddresses(fixture('get-netipaddress.json'));
  t.same(
    addrs.map((a) => [a.ipAddress, a.family, a.prefixLength, a.interfaceIndex]),
    [
      ['192.0.2.11', 4, 24, 14],
      ['fe80::9d1c:2a4b:5e6f:7081%14', 6, 64, 14],
      ['10.10.2.1', 4, 24, 19],
    ],
  );
  t.same(parseNetIPInterfaces(fixture('get-netipinterface.json')), [
    { ifIndex: 19, interfaceAlias: 'antrea-gw0', family: 4, nlMtu: 1450, forwarding: true },
  ]);
  const routes = parseNetRoutes(fixture('get-netroute.json'));
  t.same(routes[1], {
    destinationPrefix: '10.10.1.0/24',
    nextHop: '10.10.1.1',
    interfaceIndex: 19,
    interfaceAlias: 'antrea-gw0',
    routeMetric: 256,
    family: 4,
  });
  t.same(parseNetNats(fixture('get-netnat.json')), [
    { name: 'antrea-nat', internalIPInterfaceAddressPrefix: '10.10.2.0/24', active: true },
  ]);

  // Wrong shapes are ValidationErrors naming the cmdlet, the index and the property.
  t.throws(() => parseNetAdapters([{ Name: 'x', ifIndex: '6' }]), { message: /^Get-NetAdapter\[0\]\.ifIndex: / });
  const rawRoute = (fixture('get-netroute.json') as Record<string, unknown>[])[0];
  t.throws(() => parseNetRoutes([{ ...rawRoute, AddressFamily: 99 }]), { message: /Get-NetRoute\[0\]\.AddressFamily/ });
  t.throws(() => parseHnsNetworks(['x']), { message: /^Get-HnsNetwork\[0\]: / });
  t.throws(() => normalizeMac('00-15-5D'), { message: /^mac: / });
  t.equal(hnsMac('00:15:5d:0a:0b:0c'), '00-15-5D-0A-0B-0C');
  t.throws(() => checkGuid("x'; Stop-Computer", 'netns'), { message: /^netns: / });
  t.equal(namespaceGuid('{C0FFEE00-0000-4000-8000-000000000001}'), 'c0ffee00-0000-4000-8000-000000000001');
  t.equal(namespaceGuid('/var/run/netns/x'), undefined);
  t.end();
});

t.test('Windows capabilities and paths', (t) => {
  t.same(WINDOWS_CAPABILITIES.validate(parseAgentConfig('')), [], "Antrea's defaults are valid on Windows");
  const bad = WINDOWS_CAPABILITIES.validate(
    parseAgentConfig(
      'ovsDatapathType: netdev\ntunnelType: gre\ntrafficEncryptionMode: ipsec\nsnatFullyRandomPorts: true\nfeatureGates:\n  FlowExporter: true\n  NodeNetworkPolicy: true',
    ),
  );
  t.same(
    bad.map((e) => e.field),
    [
      'ovsDatapathType',
      'tunnelType',
      'trafficEncryptionMode',
      'featureGates.NodeNetworkPolicy',
      'featureGates.FlowExporter',
      'snatFullyRandomPorts',
    ],
    'every unsupported item at once, each naming its field',
  );
  t.same(
    WINDOWS_CAPABILITIES.validate(parseAgentConfig('trafficEncapMode: networkPolicyOnly')).map((e) => e.field),
    ['trafficEncapMode'],
  );
  t.ok(WINDOWS_CAPABILITIES.tunnelNeedsLocalIp);
  const p = createWindowsPlatform({ ps: host().ps });
  t.equal(p.os, 'windows');
  t.equal(p.paths.cniSocket, '\\\\.\\pipe\\cnisock');
  t.equal(p.podInterfaces.ofportAssignment, 'async');
  t.equal(p.podInterfaces.ovsPortType, 'internal');
  t.notOk('advertise' in p.podInterfaces, 'no gratuitous ARP on Windows');
  t.ok(p.routes !== undefined);
  t.equal(
    ovsSocketEndpoint('windows', p.paths.ovsRunDir, 'db.sock'),
    'unix:\\\\.\\pipe\\C:openvswitchvarrunopenvswitchdb.sock',
  );
  t.equal(
    ovsSocketEndpoint('windows', p.paths.ovsRunDir, 'br-int.mgmt'),
    'unix:\\\\.\\pipe\\C:openvswitchvarrunopenvswitchbr-int.mgmt',
  );
  t.equal(ovsSocketEndpoint('linux', '/var/run/openvswitch/', 'db.sock'), 'unix:/var/run/openvswitch/db.sock');
  t.end();
});

t.test('prepareHost creates the HNS network, moves the IP, renames the vNIC, enables OVS', async (t) => {
  const h = host();
  const net = new WindowsNodeNetwork({ ps: h.ps, clock: new FakeClock() });
  await net.prepareHost({ ipv4: true, ipv6: false, node: NODE });
  golden(t, 'prepare-host.txt', h.ps.transcript);
  const n = h.networks[0];
  t.match(n, {
    Name: 'antrea-hnsnetwork',
    Type: 'Transparent',
    NetworkAdapterName: 'Ethernet0',
    ManagementIP: '192.0.2.11',
    SourceMac: '00-15-5D-0A-0B-0C',
    Subnets: [{ AddressPrefix: '10.10.2.0/24', GatewayAddress: '10.10.2.1' }],
  });
  t.equal(n?.Extensions.find((e) => e.Name === 'Open vSwitch Extension')?.IsEnabled, true);
  t.ok(
    h.adapters.some((a) => a.Name === 'br-int' && a.MacAddress === '00-15-5D-0A-0B-0C'),
    'the vNIC is br-int',
  );

  h.ps.clear();
  await net.prepareHost({ ipv4: true, ipv6: false, node: NODE });
  t.same(h.ps.scripts, ["Get-HnsNetwork | Where-Object Name -EQ 'antrea-hnsnetwork'"], 'a repeat only looks');
  t.equal(h.networks.length, 1);

  // The OVS extension was turned off (e.g. after a reboot): only that is repaired.
  n!.Extensions[1]!.IsEnabled = false;
  h.ps.clear();
  await net.prepareHost({ ipv4: true, ipv6: false, node: NODE });
  t.equal(h.ps.scripts.length, 2);
  t.equal(n?.Extensions[1]?.IsEnabled, true);

  const up = await net.transportInterface({ name: '', nodeIPs: ['192.0.2.11'] });
  t.same(up, { name: 'Ethernet0', index: 4, mtu: 1500, mac: '00:15:5d:0a:0b:0c', addresses: ['192.0.2.11/24'] });
  await t.rejects(net.transportInterface({ name: 'Ethernet9', nodeIPs: [] }), { code: 'HOST_INTERFACE_NOT_FOUND' });
  await t.rejects(net.prepareHost({ ipv4: true, ipv6: false }), { code: 'INVALID_ARGUMENT', message: /^node: / });
});

t.test('prepareHost copies the Node IP when HNS did not move it, and refuses virtual or foreign setups', async (t) => {
  const h = host();
  h.hnsMovesIp = false;
  const clock = new FakeClock();
  const net = new WindowsNodeNetwork({ ps: h.ps, clock });
  const done = net.prepareHost({ ipv4: true, ipv6: false, node: NODE });
  for (let i = 0; i < 20; i++) await clock.advance(500);
  await done;
  const vnic = h.adapters.find((a) => a.Name === 'br-int');
  t.ok(
    h.addresses.some((a) => a.InterfaceIndex === vnic?.ifIndex && a.IPAddress === '192.0.2.11'),
    'copied',
  );
  t.ok(
    h.routes.some((r) => r.InterfaceIndex === vnic?.ifIndex && r.NextHop === '192.0.2.1'),
    'with the gateway',
  );

  const v = new FakeWindowsHost();
  v.addAdapter('vEthernet (nat)', '00-15-5D-00-00-01');
  v.addresses.push({ IPAddress: '192.0.2.11', InterfaceIndex: v.adapters[0]!.ifIndex, PrefixLength: 24 });
  await t.rejects(new WindowsNodeNetwork({ ps: v.ps }).prepareHost({ ipv4: true, ipv6: false, node: NODE }), {
    code: 'HOST_OPERATION_FAILED',
    message: /virtual/,
  });

  const other = host();
  other.networks.push({
    ID: 'AAAAAAAA-0000-4000-8000-000000000099',
    Name: 'antrea-hnsnetwork',
    Type: 'L2Bridge',
    NetworkAdapterName: '',
    SourceMac: '',
    ManagementIP: '',
    Subnets: [],
    Extensions: [],
  });
  await t.rejects(new WindowsNodeNetwork({ ps: other.ps }).prepareHost({ ipv4: true, ipv6: false, node: NODE }), {
    code: 'HOST_OPERATION_FAILED',
    message: /Clean-AntreaNetwork/,
  });
});

t.test('configureGateway and prepareBridge', async (t) => {
  const h = host();
  const net = new WindowsNodeNetwork({ ps: h.ps, clock: new FakeClock() });
  await net.prepareHost({ ipv4: true, ipv6: false, node: NODE });
  const gw = h.addAdapter('antrea-gw0', 'E6-3A-91-4C-0D-77');
  gw.Status = 'Disabled';
  h.addresses.push({ IPAddress: '10.99.0.1', InterfaceIndex: gw.ifIndex, PrefixLength: 24 });
  h.addresses.push({ IPAddress: '169.254.10.20', InterfaceIndex: gw.ifIndex, PrefixLength: 16 });
  h.ps.clear();
  const got = await net.configureGateway({ name: 'antrea-gw0', addresses: ['10.10.2.1/24'], mtu: 1450 });
  golden(t, 'configure-gateway.txt', h.ps.transcript);
  t.same(got, {
    name: 'antrea-gw0',
    index: gw.ifIndex,
    mtu: 1450,
    mac: 'e6:3a:91:4c:0d:77',
    addresses: ['10.10.2.1/24'],
  });
  t.match(gw, { Status: 'Up', NlMtu: 1450, Forwarding: 1 });
  t.same(
    h.addresses.filter((a) => a.InterfaceIndex === gw.ifIndex).map((a) => a.IPAddress),
    ['169.254.10.20', '10.10.2.1'],
    'stale address removed, link-local kept',
  );
  h.ps.clear();
  await net.configureGateway({ name: 'antrea-gw0', addresses: ['10.10.2.1/24'], mtu: 1450 });
  t.notOk(
    h.ps.scripts.some((s) => /^(Set|New|Remove)-|Enable-NetAdapter/.test(s)),
    'a repeat changes nothing',
  );

  const clock = new FakeClock();
  const slow = new WindowsNodeNetwork({ ps: host().ps, clock });
  const waiting = slow.configureGateway({ name: 'antrea-gw0', addresses: [], mtu: 1450, appearTimeoutMs: 1000 });
  const rejected = t.rejects(waiting, { code: 'HOST_INTERFACE_NOT_FOUND', message: /did not appear within 1000ms/ });
  for (let i = 0; i < 10; i++) await clock.advance(200);
  await rejected;

  const ovs = new FakeOvs();
  const bridge = ovs.bridge('br-int');
  await bridge.create({ datapathType: 'system' });
  const uplink = await net.transportInterface({ name: '', nodeIPs: ['192.0.2.11'] });
  await net.prepareBridge(bridge, uplink);
  await net.prepareBridge(bridge, uplink);
  t.equal(bridge.get()?.otherConfig['datapath-id'], '0000' + '00155d0a0b0c');
  t.equal(datapathIdFromMac('00:15:5d:0a:0b:0c'), '000000155d0a0b0c');
  t.match(bridge.getPort('Ethernet0'), { type: 'system', ofport: 32770, externalIds: { 'antrea-type': 'uplink' } });
  t.match(bridge.getPort('br-int'), { type: 'internal', externalIds: { 'antrea-type': 'host' } });
  t.equal(bridge.listPorts().filter((p) => p.name === 'Ethernet0').length, 1, 'repeating adds nothing');
  await t.rejects(net.prepareBridge(bridge, { ...uplink, name: 'Ethernet 2' }), {
    code: 'HOST_OPERATION_FAILED',
    message: /Rename-NetAdapter/,
  });
});

t.test('Pod endpoints: create, attach, check, remove, rollback and typed errors', async (t) => {
  const h = host();
  await new WindowsNodeNetwork({ ps: h.ps, clock: new FakeClock() }).prepareHost({
    ipv4: true,
    ipv6: false,
    node: NODE,
  });
  const ns = h.addNamespace();
  const pods = new WindowsPodInterfaces({ ps: h.ps });
  const addressing = Promise.resolve({
    ips: [{ address: '10.10.2.5/24', gateway: '10.10.2.1' }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.10.2.1' }],
    dns: { nameservers: ['10.96.0.10'], search: ['default.svc.cluster.local', 'cluster.local'] },
  });
  const req = {
    containerId: 'c1',
    ifname: 'eth0',
    netns: ns,
    podName: 'web',
    podNamespace: 'default',
    hostInterfaceName: 'web-2f2276',
    mtu: 1450,
    disableTxChecksumOffload: false,
    addressing,
  };
  h.ps.clear();
  const made = await pods.configure(req);
  golden(t, 'pod-add.txt', h.ps.transcript);
  const ep = h.endpoints[0];
  t.same(made.hostInterface, { name: 'web-2f2276', mac: normalizeMac(ep!.MacAddress) });
  t.match(ep, {
    Name: 'web-2f2276',
    IPAddress: '10.10.2.5',
    PrefixLength: 24,
    GatewayAddress: '10.10.2.1',
    DNSServerList: '10.96.0.10',
    DNSSuffix: 'default.svc.cluster.local,cluster.local',
    namespaces: [ns],
  });
  t.same(
    await pods.check({ ...req, mac: made.containerInterface.mac, ips: [{ address: '10.10.2.5/24' }], routes: [] }),
    [],
  );
  t.match(await pods.check({ ...req, mac: '02:00:00:00:00:01', ips: [{ address: '10.10.2.9/24' }], routes: [] }), [
    /MAC/,
    /IP 10\.10\.2\.5, expected 10\.10\.2\.9/,
  ]);
  t.same(await pods.hostInterface('web-2f2276'), { name: 'web-2f2276', mac: made.hostInterface.mac });
  t.ok(await pods.netnsExists(ns));
  t.notOk(await pods.netnsExists('c0ffee00-0000-4000-8000-00000000ffff'));
  t.notOk(await pods.netnsExists('/var/run/netns/x'));

  await t.rejects(pods.configure(req), { code: 'POD_INTERFACE_EXISTS' });
  await t.rejects(pods.configure({ ...req, netns: 'not-a-guid', hostInterfaceName: 'x-1' }), {
    code: 'POD_NETNS_NOT_FOUND',
  });
  await t.rejects(pods.configure({ ...req, netns: 'c0ffee00-0000-4000-8000-00000000ffff', hostInterfaceName: 'x-1' }), {
    code: 'POD_NETNS_NOT_FOUND',
  });

  // IPAM's own error comes back unchanged, and nothing is left behind.
  const ipamErr = new Error('host-local: no IP addresses available');
  await t.rejects(pods.configure({ ...req, hostInterfaceName: 'x-2', addressing: Promise.reject(ipamErr) }), ipamErr);
  // Attaching fails after the endpoint exists: it is deleted again, the error is typed.
  h.failNext = {
    re: /^Set-AntreaNamespaceEndpoint/,
    error: cmdletError('Set-AntreaNamespaceEndpoint', 'InvalidOperation', 'HCN 0x80070005 Access is denied.'),
  };
  await t.rejects(pods.configure({ ...req, hostInterfaceName: 'x-3' }), {
    code: 'POD_INTERFACE_FAILED',
    message: /Access is denied/,
  });
  t.same(
    h.endpoints.map((e) => e.Name),
    ['web-2f2276'],
    'rolled back',
  );
  h.failNext = {
    re: /^Set-AntreaNamespaceEndpoint/,
    error: cmdletError('Set-AntreaNamespaceEndpoint', 'ObjectNotFound', 'HCN namespace gone'),
  };
  await t.rejects(pods.configure({ ...req, hostInterfaceName: 'x-4' }), { code: 'POD_NETNS_NOT_FOUND' });

  h.ps.clear();
  await pods.remove({ containerId: 'c1', ifname: 'eth0', hostInterfaceName: 'web-2f2276', netns: ns });
  golden(t, 'pod-del.txt', h.ps.transcript);
  t.same(h.endpoints, []);
  await pods.remove({ containerId: 'c1', ifname: 'eth0', hostInterfaceName: 'web-2f2276' });
  t.equal(await pods.hostInterface('web-2f2276'), undefined);
});

t.test('routes: firewall, NetNat, per-mode routes, replace, delete, reconcile', async (t) => {
  const h = host();
  await new WindowsNodeNetwork({ ps: h.ps, clock: new FakeClock() }).prepareHost({
    ipv4: true,
    ipv6: false,
    node: NODE,
  });
  const gw = h.addAdapter('antrea-gw0', 'E6-3A-91-4C-0D-77');
  const rc = new WindowsRouteClient({
    ps: h.ps,
    gatewayName: 'antrea-gw0',
    bridgeName: 'br-int',
    trafficEncapMode: 'hybrid',
    noSNAT: false,
    transportCIDRs: ['192.0.2.0/24'],
  });
  h.ps.clear();
  await rc.initialize(routeCfg('hybrid', false));
  await rc.addRoutes(peer('10.10.1.0/24', 'node-1', '198.51.100.10', '10.10.1.1', 'hybrid'));
  await rc.addRoutes(peer('10.10.3.0/24', 'node-3', '192.0.2.13', '10.10.3.1', 'hybrid'));
  golden(t, 'routes.txt', h.ps.transcript);
  t.same(
    [...h.firewallRules],
    [
      ['Antrea: accept packets from local Pods', '10.10.2.0/24'],
      ['Antrea: accept packets to local Pods', '10.10.2.0/24'],
    ],
  );
  t.same(h.nats, [{ Name: 'antrea-nat', InternalIPInterfaceAddressPrefix: '10.10.2.0/24', Active: true }]);
  t.equal(gw.Forwarding, 1);
  const brInt = h.adapters.find((a) => a.Name === 'br-int')!;
  t.match(
    h.routes.find((r) => r.DestinationPrefix === '10.10.1.0/24'),
    {
      NextHop: '10.10.1.1',
      InterfaceIndex: gw.ifIndex,
      RouteMetric: 256,
    },
    'another subnet: through the tunnel via the peer gateway',
  );
  t.match(
    h.routes.find((r) => r.DestinationPrefix === '10.10.3.0/24'),
    {
      NextHop: '192.0.2.13',
      InterfaceIndex: brInt.ifIndex,
    },
    'same subnet in hybrid: directly via the peer Node',
  );

  h.ps.clear();
  await rc.initialize(routeCfg('hybrid', false));
  await rc.addRoutes(peer('10.10.1.0/24', 'node-1', '198.51.100.10', '10.10.1.1', 'hybrid'));
  t.notOk(
    h.ps.scripts.some((s) => /^(New|Remove)-|Set-NetIPInterface|Remove-NetNat/.test(s)),
    'repeats change nothing',
  );

  // The peer's gateway changed: the route is replaced.
  await rc.addRoutes(peer('10.10.1.0/24', 'node-1', '198.51.100.10', '10.10.1.254', 'hybrid'));
  t.same(
    h.routes.filter((r) => r.DestinationPrefix === '10.10.1.0/24').map((r) => r.NextHop),
    ['10.10.1.254'],
  );

  // A NetNat on another prefix is replaced.
  h.nats[0]!.InternalIPInterfaceAddressPrefix = '10.99.0.0/24';
  await rc.initialize(routeCfg('hybrid', false));
  t.same(
    h.nats.map((n) => n.InternalIPInterfaceAddressPrefix),
    ['10.10.2.0/24'],
  );

  // Reconcile keeps desired, local and OS routes, removes the rest.
  h.routes.push({
    DestinationPrefix: '10.10.9.0/24',
    NextHop: '10.10.9.1',
    InterfaceIndex: gw.ifIndex,
    RouteMetric: 256,
  });
  h.routes.push({
    DestinationPrefix: '10.10.2.0/24',
    NextHop: '0.0.0.0',
    InterfaceIndex: gw.ifIndex,
    RouteMetric: 256,
  });
  h.routes.push({
    DestinationPrefix: '10.10.2.255/32',
    NextHop: '0.0.0.0',
    InterfaceIndex: gw.ifIndex,
    RouteMetric: 256,
  });
  h.routes.push({ DestinationPrefix: '224.0.0.0/4', NextHop: '0.0.0.0', InterfaceIndex: gw.ifIndex, RouteMetric: 256 });
  await rc.reconcile(['10.10.1.0/24', '10.10.3.0/24']);
  t.same(
    h.routes
      .filter((r) => r.InterfaceIndex === gw.ifIndex)
      .map((r) => r.DestinationPrefix)
      .sort(),
    ['10.10.1.0/24', '10.10.2.0/24', '10.10.2.255/32', '224.0.0.0/4'],
  );
  await rc.deleteRoutes('10.10.3.0/24');
  await rc.deleteRoutes('10.10.3.0/24');
  t.notOk(h.routes.some((r) => r.DestinationPrefix === '10.10.3.0/24'));
  await t.rejects(rc.addRoutes(peer("10.0.0.0/8'; Stop-Computer; '", 'n', '192.0.2.9', '10.0.0.1', 'hybrid')), {
    code: 'INVALID_ARGUMENT',
    message: /^podCIDR: /,
  });

  const noSnat = new WindowsRouteClient({
    ps: h.ps,
    gatewayName: 'antrea-gw0',
    bridgeName: 'br-int',
    trafficEncapMode: 'noEncap',
    noSNAT: true,
  });
  await noSnat.initialize(routeCfg('noEncap', true));
  t.same(h.nats, [], 'noSNAT removes antrea-nat');
  await noSnat.addRoutes(peer('10.10.7.0/24', 'node-7', '192.0.2.77', '10.10.7.1', 'noEncap'));
  t.match(
    h.routes.find((r) => r.DestinationPrefix === '10.10.7.0/24'),
    { NextHop: '192.0.2.77', InterfaceIndex: brInt.ifIndex },
  );

  // sync restores what was removed behind the client's back; 'none' removes our route.
  h.routes.splice(
    h.routes.findIndex((r) => r.DestinationPrefix === '10.10.7.0/24'),
    1,
  );
  h.nats.length = 0;
  await noSnat.sync();
  t.ok(
    h.routes.some((r) => r.DestinationPrefix === '10.10.7.0/24'),
    'sync restores the route',
  );
  t.same(h.nats, [], 'and keeps noSNAT');
  await noSnat.addRoutes(peer('10.10.7.0/24', 'node-7', '198.51.100.77', '10.10.7.1', 'noEncap'));
  t.notOk(
    h.routes.some((r) => r.DestinationPrefix === '10.10.7.0/24'),
    "via 'none': no route",
  );
});
