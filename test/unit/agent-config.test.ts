/**
 * antrea-agent.conf: Antrea's defaults, parsing of its keys, every problem reported at once with its
 * field, unknown keys, feature gates, and the platform capability check.
 */
import t from 'tap';
import {
  ConfigError,
  defaultAgentConfig,
  FEATURE_GATES,
  hostLocalDataDir,
  parseAgentConfig,
} from '../../src/common/agent/config.ts';
import { LINUX_CAPABILITIES } from '../../src/platform/linux/capabilities.ts';

t.test("defaults are Antrea's", (t) => {
  const d = defaultAgentConfig();
  t.match(d, {
    cniSocket: '/var/run/antrea/cni.sock',
    ovsBridge: 'br-int',
    ovsDatapathType: 'system',
    ovsRunDir: '/var/run/openvswitch',
    hostGateway: 'antrea-gw0',
    trafficEncapMode: 'encap',
    tunnelType: 'geneve',
    tunnelPort: 0,
    tunnelCsum: false,
    defaultMTU: 0,
    packetInRate: 5000,
    serviceCIDR: '10.96.0.0/12',
    apiPort: 10350,
    clusterPort: 10351,
    hostProcPathPrefix: '/host',
    disableTXChecksumOffload: false,
    podNetworkWaitTimeoutMs: 30_000,
  });
  t.equal(d.featureGates['AntreaProxy'], true);
  t.equal(d.featureGates['AntreaIPAM'], false);
  t.equal(hostLocalDataDir(d), '/var/run/antrea/networks');
  t.same(parseAgentConfig(''), d, 'an empty file is all defaults');
  const win = defaultAgentConfig({
    cniSocket: '\\\\.\\pipe\\cnisock',
    ovsRunDir: 'C:\\openvswitch\\var\\run\\openvswitch',
  });
  t.equal(win.cniSocket, '\\\\.\\pipe\\cnisock');
  t.end();
});

t.test('an Antrea-style file parses', (t) => {
  const c = parseAgentConfig(`
featureGates:
  Egress: false
  AllAlpha: true
  FlowExporter: false
cniSocket: /run/x/cni.sock
ovsDatapathType: netdev
ovsRunDir: /run/x/ovs
trafficEncapMode: encap
tunnelType: vxlan
tunnelPort: 8472
tunnelCsum: true
defaultMTU: 1400
hostProcPathPrefix: ""
antreaProxy:
  proxyAll: true
  skipServices: [kube-system/kube-dns]
clientConnection:
  kubeconfig: /etc/k.conf
flowExporter:
  enable: false
stateDir: /run/x/state
cniPluginDirs: [/usr/lib/cni]
`);
  t.equal(c.ovsDatapathType, 'netdev');
  t.equal(c.tunnelType, 'vxlan');
  t.equal(c.tunnelPort, 8472);
  t.equal(c.defaultMTU, 1400);
  t.equal(c.hostProcPathPrefix, '');
  t.equal(c.antreaProxy.proxyAll, true);
  t.same(c.antreaProxy.skipServices, ['kube-system/kube-dns']);
  t.equal(c.clientConnection.kubeconfig, '/etc/k.conf');
  t.equal(c.featureGates['Egress'], false);
  t.equal(c.featureGates['AntreaIPAM'], true, 'AllAlpha turns alpha gates on');
  t.equal(c.featureGates['FlowExporter'], false, 'a named gate wins over AllAlpha');
  t.same(c.passthrough['flowExporter'], { enable: false });
  t.equal(hostLocalDataDir(c), '/run/x/state/networks');
  t.end();
});

t.test('every problem is reported at once, naming its field', (t) => {
  let err: unknown;
  try {
    parseAgentConfig(`
ovsDatapathType: dpdk
tunnelType: gre
tunnelPort: 99999
defaultMTU: 100
ovsBridge: "a-name-that-is-far-too-long"
serviceCIDR: 10.96.0.0
noSNAT: "yes"
featureGates:
  NoSuchGate: true
  Egress: 1
antreaProxy:
  proxyAl: true
transportInterfaceCIDRs: [10.0.0.0/33]
typo: 1
`);
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof ConfigError);
  const fields = (err as ConfigError).problems.map((p) => p.field).sort();
  t.same(fields, [
    'antreaProxy.proxyAl',
    'defaultMTU',
    'featureGates.Egress',
    'featureGates.NoSuchGate',
    'noSNAT',
    'ovsBridge',
    'ovsDatapathType',
    'serviceCIDR',
    'transportInterfaceCIDRs[0]',
    'tunnelPort',
    'typo',
  ]);
  t.match((err as ConfigError).message, /ovsDatapathType: must be one of system, netdev, got "dpdk"/);
  t.match((err as ConfigError).message, /typo: unknown field/);
  t.end();
});

t.test('cross-field rules', (t) => {
  t.throws(() => parseAgentConfig('tunnelType: gre\ntunnelPort: 1234'), {
    message: /tunnelPort: gre has no destination port/,
  });
  t.throws(() => parseAgentConfig('tunnelType: gre\ntunnelCsum: true'), { message: /tunnelCsum/ });
  t.throws(() => parseAgentConfig('noSNAT: true'), { message: /noSNAT: is only valid with trafficEncapMode noEncap/ });
  t.throws(() => parseAgentConfig('enableBridgingMode: true'), { message: /enableBridgingMode/ });
  t.throws(() => parseAgentConfig('cniSocket: ""'), { message: /cniSocket: must not be empty/ });
  t.throws(() => parseAgentConfig(': : :'), { code: 'INVALID_CONFIG', message: /YAML/ });
  t.throws(() => parseAgentConfig('- a\n- b'), { message: /must be a mapping/ });
  t.end();
});

t.test('Linux capabilities report every unsupported item', (t) => {
  t.same(LINUX_CAPABILITIES.validate(defaultAgentConfig()), []);
  const c = parseAgentConfig('ovsDatapathType: netdev\ntunnelType: stt\ntrafficEncryptionMode: ipsec');
  t.same(
    LINUX_CAPABILITIES.validate(c).map((p) => p.field),
    ['tunnelType', 'trafficEncryptionMode'],
  );
  // CNI chaining: no tunnel, so the tunnel type does not matter.
  t.same(
    LINUX_CAPABILITIES.validate(
      parseAgentConfig('ovsDatapathType: netdev\ntunnelType: stt\ntrafficEncapMode: networkPolicyOnly'),
    ),
    [],
    'networkPolicyOnly is supported on Linux',
  );
  t.match(
    LINUX_CAPABILITIES.validate(c)[0]!.message,
    /tunnel type "stt" with datapath "netdev" is not supported on linux/,
  );
  t.equal(Object.keys(FEATURE_GATES).length > 25, true);
  t.end();
});
