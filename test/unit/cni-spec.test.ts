/**
 * The CNI spec's data: versions, the result in each version (golden JSON), parsing results and
 * network configurations with the right error codes, CNI_ARGS, container ID and interface name rules.
 */
import t from 'tap';
import {
  CniError,
  compareCniVersions,
  type CniResult,
  formatCniError,
  formatCniResult,
  k8sArgs,
  parseCniArgs,
  parseCniResult,
  parseNetworkConfig,
  SUPPORTED_CNI_VERSIONS,
  validateContainerId,
  validateIfName,
} from '../../src/common/apis/cni/spec.ts';

const result: CniResult = {
  interfaces: [
    { name: 'web-1a2b3c', mac: '0a:00:00:00:00:01', mtu: 1450 },
    { name: 'eth0', mac: '0a:00:00:00:00:02', mtu: 1450, sandbox: '/run/netns/p' },
  ],
  ips: [
    { address: '10.10.1.5/24', gateway: '10.10.1.1', interface: 1 },
    { address: 'fd00::5/64', gateway: 'fd00::1', interface: 1 },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '10.10.1.1', mtu: 1400 }],
  dns: { nameservers: ['10.96.0.10'] },
};

t.test('versions compare numerically and the supported set is 0.3.0-1.1.0', (t) => {
  t.ok(compareCniVersions('0.10.0', '0.4.0') > 0);
  t.equal(compareCniVersions('1.0.0', '1.0.0'), 0);
  t.throws(() => compareCniVersions('1.0', '1.0.0'), { code: 'DECODING_FAILURE' });
  t.same(SUPPORTED_CNI_VERSIONS, ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
  t.end();
});

t.test('the result in each version', (t) => {
  const v03 = {
    cniVersion: '0.3.1',
    interfaces: [
      { name: 'web-1a2b3c', mac: '0a:00:00:00:00:01' },
      { name: 'eth0', mac: '0a:00:00:00:00:02', sandbox: '/run/netns/p' },
    ],
    ips: [
      { version: '4', address: '10.10.1.5/24', gateway: '10.10.1.1', interface: 1 },
      { version: '6', address: 'fd00::5/64', gateway: 'fd00::1', interface: 1 },
    ],
    routes: [{ dst: '0.0.0.0/0', gw: '10.10.1.1' }],
    dns: { nameservers: ['10.96.0.10'] },
  };
  t.same(formatCniResult(result, '0.3.1'), v03, '0.3.1: ips carry version, no 1.1 fields');
  t.same(formatCniResult(result, '0.4.0'), { ...v03, cniVersion: '0.4.0' });
  const v10 = formatCniResult(result, '1.0.0');
  t.same(v10['ips'], [
    { address: '10.10.1.5/24', gateway: '10.10.1.1', interface: 1 },
    { address: 'fd00::5/64', gateway: 'fd00::1', interface: 1 },
  ]);
  t.same(v10['routes'], [{ dst: '0.0.0.0/0', gw: '10.10.1.1' }]);
  t.notOk('mtu' in (v10['interfaces'] as object[])[0]!, '1.0.0: no interface mtu');
  const v11 = formatCniResult(result, '1.1.0');
  t.same(v11['routes'], [{ dst: '0.0.0.0/0', gw: '10.10.1.1', mtu: 1400 }], '1.1.0 keeps route mtu');
  t.equal((v11['interfaces'] as { mtu?: number }[])[1]!.mtu, 1450, '1.1.0 keeps interface mtu');
  t.same(formatCniResult({ interfaces: [], ips: [], routes: [], dns: {} }, '1.0.0'), { cniVersion: '1.0.0', dns: {} });
  t.end();
});

t.test('results of every version parse back', (t) => {
  for (const v of SUPPORTED_CNI_VERSIONS) {
    const back = parseCniResult(JSON.parse(JSON.stringify(formatCniResult(result, v))) as unknown);
    t.same(
      back.ips.map((i) => i.address),
      ['10.10.1.5/24', 'fd00::5/64'],
      v,
    );
    t.equal(back.interfaces[1]?.sandbox, '/run/netns/p', v);
  }
  t.throws(() => parseCniResult({ ips: [{ address: '10.0.0.1' }] }, 'prevResult'), {
    code: 'INVALID_NETWORK_CONFIG',
    message: /prevResult\.ips\[0\]\.address/,
  });
  t.throws(() => parseCniResult({ interfaces: [{ mac: 'x' }] }, 'prevResult'), { message: /interfaces\[0\]\.name/ });
  t.throws(() => parseCniResult('nope', 'prevResult'), { code: 'INVALID_NETWORK_CONFIG' });
  t.end();
});

t.test('network configuration parsing', (t) => {
  const ok = parseNetworkConfig(
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'antrea',
      type: 'antrea',
      mtu: 1400,
      ipam: { type: 'host-local', routes: [{ dst: '0.0.0.0/0' }] },
      dns: { nameservers: ['1.1.1.1'] },
      'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }],
    }),
  );
  t.equal(ok.cniVersion, '1.0.0');
  t.equal(ok.ipam?.type, 'host-local');
  t.equal(ok.mtu, 1400);
  t.same(ok.validAttachments, [{ containerID: 'a', ifname: 'eth0' }]);
  const bad: [string, string, RegExp][] = [
    ['', 'DECODING_FAILURE', /decode/],
    ['{', 'DECODING_FAILURE', /decode/],
    ['[1]', 'DECODING_FAILURE', /not a JSON object/],
    ['{"name":"a"}', 'INVALID_NETWORK_CONFIG', /cniVersion/],
    ['{"cniVersion":"0.2.0","name":"a"}', 'INCOMPATIBLE_CNI_VERSION', /Unsupported CNI version \[0\.2\.0\]/],
    ['{"cniVersion":"x","name":"a"}', 'DECODING_FAILURE', /invalid CNI version/],
    ['{"cniVersion":"1.0.0"}', 'INVALID_NETWORK_CONFIG', /missing network name/],
    ['{"cniVersion":"1.0.0","name":"bad name"}', 'INVALID_NETWORK_CONFIG', /invalid network name/],
    ['{"cniVersion":"1.0.0","name":"a","mtu":10}', 'INVALID_NETWORK_CONFIG', /networkConfig\.mtu/],
    ['{"cniVersion":"1.0.0","name":"a","ipam":{}}', 'INVALID_NETWORK_CONFIG', /ipam\.type/],
    ['{"cniVersion":"1.0.0","name":"a","ipam":[]}', 'INVALID_NETWORK_CONFIG', /networkConfig\.ipam/],
    ['{"cniVersion":"1.0.0","name":"a","dns":{"nameservers":"x"}}', 'INVALID_NETWORK_CONFIG', /dns\.nameservers/],
    [
      '{"cniVersion":"1.1.0","name":"a","cni.dev/valid-attachments":[{}]}',
      'INVALID_NETWORK_CONFIG',
      /valid-attachments\[0\]/,
    ],
  ];
  for (const [input, code, msg] of bad) {
    t.throws(() => parseNetworkConfig(input), { code, message: msg }, `${input} → ${code}`);
  }
  t.end();
});

t.test('CNI_ARGS, container IDs and interface names', (t) => {
  const a = parseCniArgs('IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc;X=a=b');
  t.same(k8sArgs(a), { podName: 'web', podNamespace: 'ns', infraContainerId: 'abc' });
  t.equal(a.get('X'), 'a=b');
  t.equal(parseCniArgs('').size, 0);
  t.throws(() => parseCniArgs('K8S_POD_NAME'), { code: 'INVALID_ENVIRONMENT_VARIABLES', message: /CNI_ARGS/ });

  t.doesNotThrow(() => validateContainerId('a1_b.c-d'));
  t.throws(() => validateContainerId(''), { code: 'UNKNOWN_CONTAINER' });
  for (const id of ['-a', '_a', 'a/b', 'a b', 'a:b']) {
    t.throws(() => validateContainerId(id), { code: 'INVALID_ENVIRONMENT_VARIABLES' }, `container id ${id}`);
  }
  t.doesNotThrow(() => validateIfName('eth0'));
  t.doesNotThrow(() => validateIfName('a'.repeat(15)));
  for (const n of ['', '.', '..', 'a/b', 'a:b', 'a b', 'a\tb', 'a'.repeat(16)]) {
    t.throws(
      () => validateIfName(n),
      { code: 'INVALID_ENVIRONMENT_VARIABLES', message: /CNI_IFNAME/ },
      `ifname ${JSON.stringify(n)}`,
    );
  }
  t.end();
});

t.test('errors carry their numeric code and print as the spec says', (t) => {
  const e = new CniError('IPAM_FAILURE', 'no addresses left', { details: 'range full' });
  t.equal(e.cniCode, 101);
  t.same(formatCniError(e, '1.0.0'), {
    cniVersion: '1.0.0',
    code: 101,
    msg: 'no addresses left',
    details: 'range full',
  });
  t.same(formatCniError(new CniError('TRY_AGAIN_LATER', 'busy'), '0.4.0'), {
    cniVersion: '0.4.0',
    code: 11,
    msg: 'busy',
  });
  t.end();
});
