/**
 * Ofports that arrive after the port was added (the Windows case) against a real ovsdb-server +
 * ovs-vswitchd: the monitor cache reports the assignment and the removal, and the CNI server, with
 * Pod interfaces whose ofport is asynchronous, installs the Pod's flows when the real ofport
 * arrives and removes them on DEL.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultAgentConfig } from '../../src/common/agent/config.ts';
import { PendingAddJournal } from '../../src/common/agent/cniserver/journal.ts';
import { type OfportEvent, ovsdbOfportEvents } from '../../src/common/agent/cniserver/ofport-events.ts';
import { CniServer } from '../../src/common/agent/cniserver/server.ts';
import { InterfaceStore } from '../../src/common/agent/interfacestore.ts';
import { podHostInterfaceName } from '../../src/common/host/pod-interfaces.ts';
import { OvsdbBridge } from '../../src/common/ovs/ovsdb/bridge.ts';
import { OvsdbClient } from '../../src/common/ovs/ovsdb/client.ts';
import type { OvsDaemons } from '../../src/platform/linux/ovs-daemons.ts';
import { integrationSkipReason, runner, tempOvs } from '../helpers/env.ts';
import { FakeFlows, FakeIpam, FakePods } from '../unit/fixtures/cniserver-fakes.ts';
import { eventually } from '../helpers/wait.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

async function vsctl(ovs: OvsDaemons, ...args: string[]): Promise<string> {
  const r = await runner.run('ovs-vsctl', [`--db=${ovs.dbEndpoint}`, '--timeout=20', ...args], { timeoutMs: 30_000 });
  return r.stdout.trim();
}

/** Waits (bounded) for `cond` while updates arrive. */
async function setup(t: Test): Promise<{ ovs: OvsDaemons; client: OvsdbClient; bridge: OvsdbBridge }> {
  const ovs = await tempOvs(t);
  const client = await OvsdbClient.connect({ endpoint: ovs.dbEndpoint, backoff: { initialMs: 50, maxMs: 500 } });
  t.teardown(() => client.close());
  const bridge = new OvsdbBridge(client, 'br-int');
  await bridge.create({ datapathType: 'netdev' });
  t.teardown(() => (client.isConnected ? bridge.delete() : undefined));
  return { ovs, client, bridge };
}

t.test('the monitor cache reports ofports as ovs-vswitchd assigns and drops them', async (t) => {
  const { ovs, client, bridge } = await setup(t);
  const seen: OfportEvent[] = [];
  t.teardown(ovsdbOfportEvents(client.cache).subscribe((e) => seen.push(e)));
  await bridge.createPort({ name: 'late0', type: 'internal' });
  await eventually(t, () => seen.some((e) => e.port === 'late0' && (e.ofport ?? 0) > 0), 'late0 got its ofport');
  const ofport = seen.find((e) => e.port === 'late0' && (e.ofport ?? 0) > 0)?.ofport;
  t.equal(String(ofport), await vsctl(ovs, 'get', 'Interface', 'late0', 'ofport'), 'the ofport ovs-vsctl shows');
  await vsctl(ovs, 'del-port', 'br-int', 'late0'); // an outside actor
  await eventually(t, () => seen.at(-1)?.port === 'late0' && seen.at(-1)?.ofport === undefined, 'and its removal');
});

t.test('the CNI server installs a Pod flows when the real ofport arrives and removes them on DEL', async (t) => {
  const { ovs, client, bridge } = await setup(t);
  const dir = mkdtempSync(join(tmpdir(), 'ats-ofp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const flows = new FakeFlows();
  const server = new CniServer({
    config: { ...defaultAgentConfig(), hostProcPathPrefix: '' },
    bridge,
    podInterfaces: new FakePods('async'),
    ipam: new FakeIpam(),
    store: new InterfaceStore(),
    journal: new PendingAddJournal(join(dir, 'pending')),
    podFlows: flows,
  });
  t.teardown(server.watchOfports(ovsdbOfportEvents(client.cache)));
  const ctx = { nodeName: 'n1', podCIDRs: ['10.10.1.0/24'], gatewayIPs: ['10.10.1.1'], mtu: 1450 };
  server.setStoreReady(ctx);
  server.setNetworkReady();
  const call = (method: 'CmdAdd' | 'CmdDel'): Promise<{ error?: { message: string } | undefined }> =>
    server.handle(method, {
      cniArgs: {
        containerId: 'c1',
        netns: '/run/netns/p1',
        ifname: 'eth0',
        args: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=web',
        path: '/opt/cni/bin',
        networkConfiguration: Buffer.from(
          JSON.stringify({ cniVersion: '1.0.0', name: 'antrea', type: 'antrea', ipam: { type: 'host-local' } }),
        ),
      },
    });
  const name = podHostInterfaceName('web', 'c1', 'eth0');
  t.equal((await call('CmdAdd')).error, undefined, 'ADD answered');
  await eventually(t, () => flows.installed.has(name), 'the Pod flows followed the ofport');
  t.equal(String(flows.installed.get(name)?.ofport), await vsctl(ovs, 'get', 'Interface', name, 'ofport'));
  t.equal((await call('CmdDel')).error, undefined, 'DEL answered');
  await server.drain();
  t.notOk(flows.installed.has(name), 'flows removed');
  t.equal(await vsctl(ovs, '--if-exists', 'get', 'Interface', name, 'ofport'), '', 'port removed');
});
