/** The in-memory bridge fake follows the real bridge client's contract (see test/integration/ovsdb.test.ts). */
import t from 'tap';
import { FakeOvs } from '../helpers/fake-ovs-bridge.ts';

t.test('bridges and ports: idempotent writes, requested ofports, typed errors', async (t) => {
  const ovs = new FakeOvs();
  const br = ovs.bridge('br-int');
  await t.rejects(br.createPort({ name: 'p', type: 'internal' }), { code: 'OVSDB_NOT_FOUND' });
  const info = await br.create({ datapathType: 'netdev', protocols: ['OpenFlow15', 'OpenFlow10'] });
  t.same(info.protocols, ['OpenFlow10', 'OpenFlow15']);
  t.equal((await br.create({ datapathType: 'netdev' })).uuid, info.uuid, 'same bridge');
  const gw = await br.createPort({ name: 'antrea-gw0', type: 'internal', ofportRequest: 32769 });
  t.equal(gw.ofport, 32769);
  const again = await br.createPort({ name: 'antrea-gw0', type: 'internal', ofportRequest: 32769 });
  t.equal(again.uuid, gw.uuid, 'same port');
  const pod = await br.createPort({ name: 'pod0', type: 'system', externalIds: { 'antrea-type': 'container' } });
  t.equal(pod.ofport, 1);
  t.equal(await br.waitForOFPort('pod0'), 1);
  t.same(
    br.listPorts().map((p) => p.name),
    ['antrea-gw0', 'pod0'],
  );
  t.same(br.get()?.portNames, ['antrea-gw0', 'br-int', 'pod0']);

  const other = ovs.bridge('br-phy');
  await other.create();
  await t.rejects(other.createPort({ name: 'pod0', type: 'system' }), { code: 'OVSDB_CONFLICT' });
  await t.rejects(br.createPort({ name: 'bad/name', type: 'system' }), { name: 'ValidationError', field: 'port.name' });

  ovs.failing.add('nodev');
  await br.createPort({ name: 'nodev', type: 'system' });
  await t.rejects(br.waitForOFPort('nodev'), { code: 'OVSDB_PORT_FAILED' });
  ovs.vswitchdRunning = false;
  await br.createPort({ name: 'late', type: 'internal' });
  await t.rejects(br.waitForOFPort('late'), { code: 'OVSDB_TIMEOUT' });
  await t.rejects(br.waitForOFPort('nope'), { code: 'OVSDB_NOT_FOUND' });

  await br.setPortExternalIds('pod0', { a: 'b' });
  t.same(br.getPort('pod0')?.externalIds, { a: 'b' });
  await t.rejects(br.setInterfaceOptions('nope', {}), { code: 'OVSDB_NOT_FOUND' });
  await br.setOvsOtherConfig({ 'flow-restore-wait': 'true' });
  t.same(br.getOvsOtherConfig(), { 'flow-restore-wait': 'true' });
  await br.removeOvsOtherConfig(['flow-restore-wait']);
  t.same(br.getOvsOtherConfig(), {});
  await br.deletePorts(['pod0', 'nope']);
  t.equal(br.getPort('pod0'), undefined);
  await br.delete();
  await br.delete();
  t.equal(br.get(), undefined);
  t.match(br.calls, ['create {"datapathType":"netdev","protocols":["OpenFlow15","OpenFlow10"]}']);
});
