/**
 * The lab Nodes' CNI choices as data: the bridge conflist, the antrea-agent configuration per
 * traffic mode, and the demo's sample-policy expectations.
 */
import t from 'tap';
import { policyMismatches, samplePolicyAllows } from '../../src/lab/demo.ts';
import { MODEL_KEYS } from '../../src/lab/model.ts';
import { agentFiles, antreaAgentConfig, bridgeConflist, type NodeCniContext } from '../../src/lab/node-cni.ts';
import type { Matrix } from '../../src/lab/probe.ts';
import { LabPaths } from '../../src/lab/state.ts';

const paths = new LabPaths('/tmp/alab-x');
const ctx: NodeCniContext = {
  nodeName: 'node-2',
  netns: 'al12345-node-2',
  podCIDR: '10.10.2.0/24',
  nodeIP: '192.0.2.12',
  paths,
};

t.test('antrea-agent.conf keeps every path in the lab and follows the traffic mode', (t) => {
  t.equal(
    antreaAgentConfig(ctx, 'vxlan', '10.96.0.0/16'),
    [
      '# Written by antrea-lab for one lab Node.',
      'ovsRunDir: /tmp/alab-x/nodes/node-2/ovs',
      'ovsDatapathType: netdev',
      'cniSocket: /tmp/alab-x/nodes/node-2/agent/cni.sock',
      'stateDir: /tmp/alab-x/nodes/node-2/agent/state',
      'hostLocalDataDir: /tmp/alab-x/nodes/node-2/ipam',
      'cniPluginDirs: [/usr/lib/cni]',
      'hostProcPathPrefix: ""',
      'trafficEncapMode: encap',
      'tunnelType: vxlan',
      'serviceCIDR: 10.96.0.0/16',
      '',
    ].join('\n'),
  );
  t.match(antreaAgentConfig(ctx, 'noencap', '10.96.0.0/16'), /trafficEncapMode: noEncap\n/);
  t.match(antreaAgentConfig(ctx, 'hybrid', '10.96.0.0/16'), /trafficEncapMode: hybrid\ntunnelType: geneve\n/);
  t.match(
    antreaAgentConfig({ ...ctx, kubeconfig: '/tmp/alab-x/nodes/node-2/agent-kubeconfig' }, 'geneve', '10.96.0.0/16'),
    /\nclientConnection:\n {2}kubeconfig: \/tmp\/alab-x\/nodes\/node-2\/agent-kubeconfig\nantreaProxy:\n {2}proxyAll: true\n$/,
    'with the API server: the kubeconfig and AntreaProxy for NodePort too',
  );
  // The longest data directory (60 characters) and Node name still give a usable socket path.
  const long = agentFiles(new LabPaths(`/${'d'.repeat(59)}`), 'node-16');
  t.ok(Buffer.byteLength(long.socket) < 107, `${long.socket.length} bytes`);
  t.end();
});

t.test('the bridge conflist uses host-local in the Node CIDR with its data dir', (t) => {
  const conf = JSON.parse(bridgeConflist('10.10.2.0/24', '/tmp/alab-x/nodes/node-2/ipam')) as {
    plugins: { type: string; ipam: { type: string; ranges: unknown; dataDir: string } }[];
  };
  t.equal(conf.plugins[0]?.type, 'bridge');
  t.same(conf.plugins[0]?.ipam.ranges, [[{ subnet: '10.10.2.0/24' }]]);
  t.equal(conf.plugins[0]?.ipam.dataDir, '/tmp/alab-x/nodes/node-2/ipam');
  t.end();
});

function matrix(connected: (from: string, to: string) => boolean): Matrix {
  const cells = new Map(
    MODEL_KEYS.map((f) => [
      f,
      new Map(
        MODEL_KEYS.map((to) => [
          to,
          { outcome: connected(f, to) ? ('connected' as const) : ('timeout' as const), ms: 1 },
        ]),
      ),
    ]),
  );
  return { port: 80, protocol: 'TCP', pods: MODEL_KEYS, cells };
}

t.test('the sample policy: Pods in x accept only Pods in x; mismatches are relative to before', (t) => {
  t.ok(samplePolicyAllows('x/a', 'x/b'));
  t.notOk(samplePolicyAllows('y/a', 'x/b'));
  t.ok(samplePolicyAllows('x/a', 'z/c'));
  const all = matrix(() => true);
  t.same(policyMismatches(all, matrix(samplePolicyAllows)), [], 'enforced: no mismatch');
  const unenforced = policyMismatches(all, all);
  t.equal(unenforced.length, 18, 'not enforced: the 18 pairs from y and z into x');
  t.equal(unenforced[0], 'y/a → x/a: connected, the policy asks for blocked');
  // A pair that did not connect before the policy is not expected to connect after it.
  const sameNodeOnly = (f: string, to: string): boolean => f.endsWith('a') === to.endsWith('a');
  t.same(
    policyMismatches(
      matrix(sameNodeOnly),
      matrix((f, to) => sameNodeOnly(f, to) && samplePolicyAllows(f, to)),
    ),
    [],
  );
  t.end();
});
