/**
 * The PodConnectivity feature: its tables, the base flows and one Pod's flows as canonical
 * ovs-ofctl text (golden files), noEncap without the tunnel flows, and the Pod flow installer's
 * cache keys. The same flows run on a real bridge with real packets in test/integration/cni.test.ts.
 */
import t, { type Test } from 'tap';
import { join } from 'node:path';
import type { BridgeClient } from '../../src/common/agent/openflow/bridge.ts';
import { CookieAllocator } from '../../src/common/agent/openflow/cookie.ts';
import { RealizedPipeline } from '../../src/common/agent/openflow/framework.ts';
import {
  PodConnectivityFeature,
  PodFlowInstaller,
  podFlowKey,
} from '../../src/common/agent/openflow/pod-connectivity.ts';
import type { Flow } from '../../src/common/ovs/openflow/flow.ts';
import { matchesGolden } from '../helpers/golden.ts';

const GOLDEN = join(import.meta.dirname, 'golden', 'pod-connectivity');
const cookies = new CookieAllocator(3);
const gateway = { ofport: 32769, mac: '0a:00:00:00:00:01', ips: ['10.10.1.1'] };
const pod = {
  type: 'container' as const,
  name: 'web-2f2276',
  ofport: 5,
  mac: '02:00:00:00:00:05',
  ips: ['10.10.1.5'],
  container: { containerId: 'c1', podName: 'web', podNamespace: 'default', ifDev: 'eth0', netns: '/run/netns/p' },
};

/** Compares with a golden file (regenerate with UPDATE_GOLDEN=1 and review the diff). */
function golden(t: Test, name: string, flows: readonly Flow[]): void {
  matchesGolden(t, join(GOLDEN, name), flows.map(String).join('\n') + '\n');
}

t.test('the tables, base flows and Pod flows (encap)', (t) => {
  const f = new PodConnectivityFeature({ cookies, gateway, tunnel: { ofport: 32768 }, podCIDRs: ['10.10.1.0/24'] });
  const p = new RealizedPipeline([f]);
  t.same(
    p.tableNames().map((x) => `${x.tableId}:${x.name}`),
    [
      '0:PipelineRootClassifier',
      '1:ARPSpoofGuard',
      '2:ARPResponder',
      '3:Classifier',
      '4:SpoofGuard',
      '5:ConntrackZone',
      '6:ConntrackState',
      '7:L3Forwarding',
      '8:L3DecTTL',
      '9:L2ForwardingCalc',
      '10:ConntrackCommit',
      '11:Output',
    ],
  );
  golden(t, 'base-encap.txt', f.initialFlows(p));
  golden(t, 'pod.txt', f.podFlows(p, pod));
  t.ok(
    f.initialFlows(p).every((fl) => fl.cookie === cookies.request('PodConnectivity')),
    'all in the round-3 category cookie',
  );
  t.end();
});

t.test('noEncap has no tunnel flows', (t) => {
  const f = new PodConnectivityFeature({ cookies, gateway, podCIDRs: ['10.10.1.0/24'] });
  const p = new RealizedPipeline([f]);
  const text = f.initialFlows(p).map(String).join('\n');
  t.notMatch(text, /in_port=32768/);
  t.notMatch(text, /aa:bb:cc:dd:ee:ff/);
  t.throws(() => new PodConnectivityFeature({ cookies, gateway: { ...gateway, mac: 'nope' }, podCIDRs: [] }), {
    message: /gateway\.mac/,
  });
  t.end();
});

t.test('networkPolicyOnly: static ARP responder, Pods routed by IP, the rest to the gateway', (t) => {
  const gw = { ofport: 32769, mac: '0a:00:00:00:00:01', ips: ['192.0.2.10'] };
  const f = new PodConnectivityFeature({ cookies, gateway: gw, podCIDRs: ['10.10.1.0/24'], networkPolicyOnly: true });
  const p = new RealizedPipeline([f]);
  golden(t, 'base-policy-only.txt', f.initialFlows(p));
  golden(t, 'pod-policy-only.txt', f.podFlows(p, pod));
  const text = f.initialFlows(p).map(String).join('\n');
  t.notMatch(text, /nw_dst=10\.10\.1\.0\/24/, 'no flow for the local Pod CIDR');
  t.notMatch(text, /in_port=32768/, 'no tunnel');
  t.end();
});

t.test('the installer keys flows by port name', async (t) => {
  const f = new PodConnectivityFeature({ cookies, gateway, podCIDRs: ['10.10.1.0/24'] });
  const calls: string[] = [];
  const bridge = {
    pipeline: new RealizedPipeline([f]),
    replaceFlows: (key: string, flows: readonly Flow[]) => {
      calls.push(`replace ${key} ${flows.length}`);
      return Promise.resolve();
    },
    deleteFlows: (key: string) => {
      calls.push(`delete ${key}`);
      return Promise.resolve();
    },
  } as unknown as BridgeClient;
  const i = new PodFlowInstaller(bridge, f);
  await i.installPodFlows(pod);
  await i.uninstallPodFlows(pod.name);
  t.same(calls, [`replace ${podFlowKey(pod.name)} 5`, `delete pod/web-2f2276`]);
});
