/**
 * The OVSDB client and bridge client against a real ovsdb-server + ovs-vswitchd (userspace
 * datapath) in a private namespace. `ovs-vsctl` is the oracle and the outside actor.
 */
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { OvsdbBridge, type OvsBridgeClient } from '../../src/common/ovs/ovsdb/bridge.ts';
import type { CacheUpdate } from '../../src/common/ovs/ovsdb/cache.ts';
import { OvsdbClient } from '../../src/common/ovs/ovsdb/client.ts';
import { OvsdbError } from '../../src/common/ovs/ovsdb/errors.ts';
import { ovsMap } from '../../src/common/ovs/ovsdb/values.ts';
import { eq, ops } from '../../src/common/ovs/ovsdb/operations.ts';
import { ValidationError } from '../../src/common/util/errors.ts';
import type { OvsDaemons } from '../../src/platform/linux/ovs-daemons.ts';
import { integrationSkipReason, runner, tempNetns, tempOvs, uniqueName } from '../helpers/env.ts';
import { eventually } from '../helpers/wait.ts';

const skip = integrationSkipReason();
if (skip !== undefined) t.plan(0, skip);

async function vsctl(ovs: OvsDaemons, ...args: string[]): Promise<string> {
  const r = await runner.run('ovs-vsctl', [`--db=${ovs.dbEndpoint}`, '--timeout=20', ...args], { timeoutMs: 30_000 });
  return r.stdout.trim();
}

/** ovs-vsctl prints strings in maps and scalars with quotes when needed; normalize for comparisons. */
function unquote(s: string): string {
  return s.replace(/^"(.*)"$/, '$1');
}

async function connected(t: Test, ovs: OvsDaemons): Promise<OvsdbClient> {
  const client = await OvsdbClient.connect({
    endpoint: ovs.dbEndpoint,
    backoff: { initialMs: 50, maxMs: 500 },
    echoIntervalMs: 2000,
  });
  t.teardown(() => client.close());
  return client;
}

/** Waits (bounded) for `cond` while cache updates arrive. */
async function netdevBridge(t: Test, ovs: OvsDaemons, client: OvsdbClient, name = 'br-int'): Promise<OvsBridgeClient> {
  const br = new OvsdbBridge(client, name);
  await br.create({ datapathType: 'netdev', protocols: ['OpenFlow10', 'OpenFlow15'] });
  t.teardown(() => (client.isConnected ? br.delete() : undefined));
  t.equal(await vsctl(ovs, 'get', 'Bridge', name, 'datapath_type'), 'netdev');
  return br;
}

t.test('a bridge with internal, veth and geneve ports, requested ofports honoured', async (t) => {
  const ovs = await tempOvs(t);
  const client = await connected(t, ovs);
  const br = new OvsdbBridge(client, 'br-int');
  const info = await br.create({
    datapathType: 'netdev',
    protocols: ['OpenFlow10', 'OpenFlow15'],
    failMode: 'secure',
    otherConfig: { 'disable-in-band': 'true' },
    externalIds: { roundNum: '1' },
  });
  t.same(info.portNames, ['br-int']);
  t.equal(await vsctl(ovs, 'list-br'), 'br-int');
  t.equal(await vsctl(ovs, 'get', 'Bridge', 'br-int', 'protocols'), '[OpenFlow10, OpenFlow15]');
  t.equal(await vsctl(ovs, 'get', 'Bridge', 'br-int', 'fail_mode'), 'secure');
  t.equal(await vsctl(ovs, 'get', 'Bridge', 'br-int', 'external_ids:roundNum'), '"1"');
  t.equal(await vsctl(ovs, 'get', 'Bridge', 'br-int', 'other_config:disable-in-band'), '"true"');
  t.match(await br.waitForDatapathId(), /^[0-9a-f]{16}$/);

  // a veth whose peer sits in a "Pod" namespace
  const pod = await tempNetns(t, 'atsp-');
  const veth = uniqueName('vp');
  await runner.run('ip', ['-n', ovs.netns!, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod]);
  await runner.run('ip', ['-n', ovs.netns!, 'link', 'set', veth, 'up']);

  const gw = await br.createPort({
    name: 'antrea-gw0',
    type: 'internal',
    ofportRequest: 32769,
    externalIds: { 'antrea-type': 'gateway' },
  });
  const tun = await br.createPort({
    name: 'antrea-tun0',
    type: 'geneve',
    ofportRequest: 32768,
    tunnel: { remoteIp: 'flow', key: 'flow', csum: true },
    externalIds: { 'antrea-type': 'tunnel' },
  });
  const podPort = await br.createPort({
    name: veth,
    type: 'system',
    externalIds: { 'antrea-type': 'container', 'pod-name': 'web-0', 'pod-namespace': 'default' },
  });
  t.equal(gw.type, 'internal');
  t.equal(tun.type, 'geneve');
  t.equal(podPort.type, 'system');

  t.equal(await br.waitForOFPort('antrea-gw0'), 32769, 'gateway gets the requested ofport');
  t.equal(await br.waitForOFPort('antrea-tun0'), 32768, 'tunnel gets the requested ofport');
  const podOfport = await br.waitForOFPort(veth);
  t.ok(podOfport > 0 && podOfport < 32768, `veth got an automatic ofport (${podOfport})`);

  // the oracle agrees
  t.same((await vsctl(ovs, 'list-ports', 'br-int')).split('\n').sort(), ['antrea-gw0', 'antrea-tun0', veth].sort());
  t.equal(await vsctl(ovs, 'get', 'Interface', 'antrea-gw0', 'ofport'), '32769');
  t.equal(await vsctl(ovs, 'get', 'Interface', 'antrea-tun0', 'ofport'), '32768');
  t.equal(await vsctl(ovs, 'get', 'Interface', veth, 'ofport'), String(podOfport));
  t.equal(await vsctl(ovs, 'get', 'Interface', 'antrea-tun0', 'type'), 'geneve');
  t.equal(await vsctl(ovs, 'get', 'Interface', 'antrea-tun0', 'options'), '{csum="true", key=flow, remote_ip=flow}');
  t.equal(await vsctl(ovs, 'get', 'Interface', veth, 'error'), '[]', 'vswitchd opened the veth');
  // the internal port is a real device in the node namespace
  const link = await runner.run('ip', ['-n', ovs.netns!, '-o', 'link', 'show', 'antrea-gw0']);
  t.match(link.stdout, /antrea-gw0/);

  // the cache lists the ports with their ofports and external_ids
  await eventually(t, () => br.listPorts().every((p) => p.ofport !== undefined), 'all ofports cached');
  t.same(
    br.listPorts().map((p) => [p.name, p.type, p.ofport, p.externalIds['antrea-type']]),
    [
      ['antrea-gw0', 'internal', 32769, 'gateway'],
      ['antrea-tun0', 'geneve', 32768, 'tunnel'],
      [veth, 'system', podOfport, 'container'],
    ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
  );

  // idempotent: the same settings again are not an error and change nothing
  const again = await br.createPort({
    name: 'antrea-tun0',
    type: 'geneve',
    ofportRequest: 32768,
    tunnel: { remoteIp: 'flow', key: 'flow', csum: true },
    externalIds: { 'antrea-type': 'tunnel' },
  });
  t.equal(again.uuid, tun.uuid, 'same row, not recreated');
  const brAgain = await br.create({ datapathType: 'netdev', protocols: ['OpenFlow10', 'OpenFlow15'] });
  t.equal(brAgain.uuid, info.uuid);
  // different settings update the tunnel in place (as Antrea does when the tunnel type changes)
  const changed = await br.createPort({
    name: 'antrea-tun0',
    type: 'vxlan',
    ofportRequest: 32768,
    tunnel: { remoteIp: 'flow', key: 'flow', dstPort: 8472 },
    externalIds: { 'antrea-type': 'tunnel' },
  });
  t.equal(changed.uuid, tun.uuid);
  t.equal(await vsctl(ovs, 'get', 'Interface', 'antrea-tun0', 'type'), 'vxlan');
  t.equal(await vsctl(ovs, 'get', 'Interface', 'antrea-tun0', 'options:dst_port'), '"8472"');
  t.equal(await br.waitForOFPort('antrea-tun0'), 32768);

  // deletes, idempotent
  await br.deletePorts([veth, 'antrea-gw0']);
  await br.deletePort('antrea-gw0');
  t.equal(await vsctl(ovs, 'list-ports', 'br-int'), 'antrea-tun0');
  await br.delete();
  await br.delete();
  t.equal(await vsctl(ovs, 'list-br'), '');
  t.equal(br.get(), undefined);
});

t.test('external_ids round-trip both ways; other_config flow-restore-wait', async (t) => {
  const ovs = await tempOvs(t);
  const client = await connected(t, ovs);
  const br = await netdevBridge(t, ovs, client);
  await br.createPort({
    name: 'p1',
    type: 'internal',
    externalIds: { 'antrea-type': 'container', 'container-id': 'c0ffee', ip: '10.0.0.5,fd00::5' },
    interfaceExternalIds: { 'iface-id': 'x' },
  });
  t.equal(await vsctl(ovs, 'get', 'Port', 'p1', 'external_ids:container-id'), 'c0ffee');
  t.equal(unquote(await vsctl(ovs, 'get', 'Port', 'p1', 'external_ids:ip')), '10.0.0.5,fd00::5');
  t.equal(await vsctl(ovs, 'get', 'Interface', 'p1', 'external_ids:iface-id'), 'x');
  await br.setPortExternalIds('p1', { 'antrea-type': 'container', 'pod-name': 'café ✓' });
  t.equal(unquote(await vsctl(ovs, 'get', 'Port', 'p1', 'external_ids:pod-name')), 'café ✓');
  t.equal(await vsctl(ovs, 'get', 'Port', 'p1', 'external_ids:container-id').catch(() => 'absent'), 'absent');

  // changed behind the client's back: the cache sees it
  await vsctl(ovs, 'set', 'Port', 'p1', 'external_ids:owner=vsctl');
  await eventually(t, () => br.getPort('p1')?.externalIds['owner'] === 'vsctl', 'cache sees the vsctl change');
  t.same(br.getPort('p1')?.externalIds, { 'antrea-type': 'container', 'pod-name': 'café ✓', owner: 'vsctl' });

  await br.setExternalIds({ roundNum: '7' });
  t.equal(await vsctl(ovs, 'get', 'Bridge', 'br-int', 'external_ids:roundNum'), '"7"');
  await br.removeExternalIds(['roundNum', 'absent']);
  t.equal(await vsctl(ovs, 'get', 'Bridge', 'br-int', 'external_ids'), '{}');

  await br.setOvsOtherConfig({ 'flow-restore-wait': 'true' });
  t.equal(await vsctl(ovs, 'get', 'Open_vSwitch', '.', 'other_config:flow-restore-wait'), '"true"');
  t.same(br.getOvsOtherConfig()['flow-restore-wait'], 'true');
  await br.removeOvsOtherConfig(['flow-restore-wait']);
  await br.removeOvsOtherConfig(['flow-restore-wait']);
  t.equal(
    await vsctl(ovs, 'get', 'Open_vSwitch', '.', 'other_config:flow-restore-wait').catch(() => 'absent'),
    'absent',
  );
});

t.test('the cache follows ports added and removed by ovs-vsctl', async (t) => {
  const ovs = await tempOvs(t);
  const client = await connected(t, ovs);
  const br = await netdevBridge(t, ovs, client);
  const seen: CacheUpdate[] = [];
  client.cache.subscribe((u) => seen.push(u));
  await vsctl(
    ovs,
    'add-port',
    'br-int',
    'outside0',
    '--',
    'set',
    'Interface',
    'outside0',
    'type=internal',
    'ofport_request=42',
    '--',
    'set',
    'Port',
    'outside0',
    'external_ids:antrea-type=host',
  );
  await eventually(t, () => br.getPort('outside0')?.ofport === 42, 'cache has the new port with its ofport');
  t.equal(br.getPort('outside0')?.externalIds['antrea-type'], 'host');
  t.ok(
    seen.some((u) => !u.resync && u.changes.some((c) => c.table === 'Port' && c.kind === 'insert')),
    'a Port insert was notified',
  );
  await vsctl(ovs, 'del-port', 'br-int', 'outside0');
  await eventually(t, () => br.getPort('outside0') === undefined, 'cache drops the deleted port');
  t.same(client.cache.lookup('Interface', 'name', 'outside0'), [], 'the interface row is gone too');
});

t.test('after ovsdb-server restarts the client reconnects and resyncs the cache', async (t) => {
  const ovs = await tempOvs(t);
  const client = await connected(t, ovs);
  const br = await netdevBridge(t, ovs, client);
  const keep = await br.createPort({ name: 'keep0', type: 'internal', externalIds: { 'antrea-type': 'gateway' } });
  await br.createPort({ name: 'gone0', type: 'internal', externalIds: { 'antrea-type': 'container' } });
  t.equal(client.connectCount, 1);

  await ovs.kill('ovsdb-server');
  await eventually(t, () => !client.isConnected, 'client notices the loss');
  const down = await br.setPortExternalIds('keep0', { a: 'b' }).catch((e: unknown) => e);
  t.type(down, OvsdbError);
  t.match(down, { code: 'OVSDB_DISCONNECTED', kind: 'transport' });

  // change the database while the server is down: the client can only learn it by resyncing
  await runner.run('ovsdb-tool', [
    'transact',
    ovs.dbPath,
    JSON.stringify([
      'Open_vSwitch',
      {
        op: 'update',
        table: 'Port',
        where: [['name', '==', 'keep0']],
        row: {
          external_ids: [
            'map',
            [
              ['antrea-type', 'gateway'],
              ['offline', 'yes'],
            ],
          ],
        },
      },
      {
        op: 'mutate',
        table: 'Bridge',
        where: [['name', '==', 'br-int']],
        mutations: [['ports', 'delete', ['set', [['uuid', br.getPort('gone0')!.uuid]]]]],
      },
    ]),
  ]);
  await ovs.start();
  await client.whenConnected({ timeoutMs: 15_000 });
  t.equal(client.connectCount, 2, 'reconnected once');
  t.same(br.getPort('keep0')?.externalIds, { 'antrea-type': 'gateway', offline: 'yes' }, 'offline change seen');
  t.equal(br.getPort('gone0'), undefined, 'port deleted offline is gone from the cache');
  t.same(client.cache.lookup('Port', 'name', 'gone0'), [], 'no stale row left behind');
  t.equal(br.getPort('keep0')?.uuid, keep.uuid, 'the surviving port was not recreated');
  // and the client works again
  await br.setPortExternalIds('keep0', { 'antrea-type': 'gateway', after: 'restart' });
  t.equal(await vsctl(ovs, 'get', 'Port', 'keep0', 'external_ids:after'), 'restart');
  t.same(
    br.listPorts().map((p) => p.name),
    ['keep0'],
  );

  // a plain restart (stop + start) too
  await ovs.restart('ovsdb-server');
  await eventually(t, () => client.connectCount === 3 && client.isConnected, 'reconnected after restart');
  t.equal(br.getPort('keep0')?.externalIds['after'], 'restart');
});

t.test('bad inputs give typed errors naming what was wrong', async (t) => {
  const ovs = await tempOvs(t);
  const client = await connected(t, ovs);
  const br = await netdevBridge(t, ovs, client);

  // unknown column: caught before sending, and by the server when validation is off
  const unknownCol = [ops.update('Bridge', [eq('name', 'br-int')], { no_such_column: 'x' })];
  t.match(await client.transact(unknownCol).catch((e: unknown) => e), {
    code: 'OVSDB_INVALID_OPERATION',
    table: 'Bridge',
    column: 'no_such_column',
  });
  const serverSide = await client.transact(unknownCol, { validate: false }).catch((e: unknown) => e);
  t.type(serverSide, OvsdbError);
  t.match(serverSide, {
    code: 'OVSDB_OPERATION_FAILED',
    opIndex: 0,
    table: 'Bridge',
    column: 'no_such_column',
    ovsdbError: 'unknown column',
  });

  // wrong type
  const wrongType = [ops.insert('Interface', { name: 'x', ofport_request: 'one' })];
  t.match(await client.transact(wrongType).catch((e: unknown) => e), {
    code: 'OVSDB_INVALID_OPERATION',
    column: 'ofport_request',
    value: 'one',
    message: /expected an integer, got "one"/,
  });
  t.match(await client.transact(wrongType, { validate: false }).catch((e: unknown) => e), {
    code: 'OVSDB_OPERATION_FAILED',
    table: 'Interface',
    column: 'ofport_request',
    ovsdbError: 'syntax error',
  });
  // out of range, reported by the server
  t.match(
    await client
      .transact([ops.update('Interface', [eq('name', 'br-int')], { ofport_request: 70000 })], { validate: false })
      .catch((e: unknown) => e),
    { code: 'OVSDB_OPERATION_FAILED', column: 'ofport_request', value: 70000, ovsdbError: 'constraint violation' },
  );
  // a commit-time error: a Port referencing a row that does not exist
  t.match(
    await client
      .transact([
        ops.insert('Port', { name: 'dangling', interfaces: ['uuid', '00000000-0000-0000-0000-000000000001'] }, 'p'),
        ops.mutate('Bridge', [eq('name', 'br-int')], [['ports', 'insert', ['set', [['named-uuid', 'p']]]]]),
      ])
      .catch((e: unknown) => e),
    {
      code: 'OVSDB_TRANSACTION_FAILED',
      table: 'Port',
      column: 'interfaces',
      ovsdbError: 'referential integrity violation',
    },
  );

  // missing bridge
  const missing = new OvsdbBridge(client, 'br-missing');
  t.match(await missing.createPort({ name: 'p', type: 'internal' }).catch((e: unknown) => e), {
    code: 'OVSDB_NOT_FOUND',
    message: 'bridge br-missing does not exist',
  });
  await missing.delete();
  await missing.deletePort('p');
  t.pass('deleting from a missing bridge is a no-op');

  // bad spec
  const bad = await br
    .createPort({ name: 'p', type: 'geneve', tunnel: { remoteIp: 'nowhere' } })
    .catch((e: unknown) => e);
  t.type(bad, ValidationError);
  t.match(bad, { field: 'port.tunnel.remoteIp' });

  // a system port for a device that does not exist: ofport -1 with vswitchd's reason
  await br.createPort({ name: 'nodev0', type: 'system' });
  t.match(await br.waitForOFPort('nodev0').catch((e: unknown) => e), {
    code: 'OVSDB_PORT_FAILED',
    message: /nodev0.*(No such device|could not open)/,
  });
  // a port on another bridge
  const other = new OvsdbBridge(client, 'br-other');
  await other.create({ datapathType: 'netdev' });
  t.teardown(() => other.delete());
  t.match(await other.createPort({ name: 'nodev0', type: 'system' }).catch((e: unknown) => e), {
    code: 'OVSDB_CONFLICT',
  });

  // ovs-vswitchd not running: no ofport is ever assigned
  await ovs.kill('ovs-vswitchd');
  await br.createPort({ name: 'late0', type: 'internal' });
  t.match(await br.waitForOFPort('late0', 300).catch((e: unknown) => e), {
    code: 'OVSDB_TIMEOUT',
    message: 'port late0: no ofport assigned after 300ms (is ovs-vswitchd running?)',
  });
  t.match(await br.waitForOFPort('never0', 300).catch((e: unknown) => e), { code: 'OVSDB_NOT_FOUND' });
});

t.test('daemon not running: connecting fails with a typed error naming the endpoint', async (t) => {
  const ovs = await tempOvs(t);
  const path = `${ovs.runDir}/absent.sock`;
  t.notOk(existsSync(path));
  const err = await OvsdbClient.connect({ endpoint: `unix:${path}`, timeoutMs: 500 }).catch((e: unknown) => e);
  t.type(err, OvsdbError);
  t.match(err, { code: 'OVSDB_CONNECT_FAILED', kind: 'transport', message: new RegExp(`unix:${path}.*ENOENT`) });

  await ovs.stop();
  const err2 = await OvsdbClient.connect({ endpoint: ovs.dbEndpoint, timeoutMs: 500 }).catch((e: unknown) => e);
  t.match(err2, { code: 'OVSDB_CONNECT_FAILED', message: /(ENOENT|ECONNREFUSED)/ });

  // a wrong database name is an RPC error from a live server
  await ovs.start();
  const err3 = await OvsdbClient.connect({ endpoint: ovs.dbEndpoint, database: 'Nope', timeoutMs: 1000 }).catch(
    (e: unknown) => e,
  );
  t.match(err3, { code: 'OVSDB_CONNECT_FAILED' });
  t.match((err3 as OvsdbError).cause, { code: 'OVSDB_RPC_ERROR', ovsdbError: 'unknown database' });
});

t.test('raw transactions: insert with uuid-name, select, update, mutate, wait, delete', async (t) => {
  const ovs = await tempOvs(t);
  const client = await connected(t, ovs);
  // QoS is a root table, so its rows live without being referenced
  const [ins, sel] = await client.transact([
    ops.insert('QoS', { type: 'linux-htb', external_ids: ovsMap({ owner: 'test' }) }, 'q'),
    ops.select('QoS', [eq('_uuid', ['named-uuid', 'q'])], ['type', 'external_ids']),
  ]);
  const id = ins?.uuid?.[1];
  t.match(id, /^[0-9a-f-]{36}$/, 'insert returns the new uuid');
  t.same(sel?.rows, [{ type: 'linux-htb', external_ids: ['map', [['owner', 'test']]] }], 'select sees the row');
  t.equal(await vsctl(ovs, 'get', 'QoS', id!, 'type'), 'linux-htb');
  const where = [eq('_uuid', ['uuid', id!])];
  const [upd, mut] = await client.transact([
    ops.update('QoS', where, { other_config: ovsMap({ 'max-rate': '1000000' }) }),
    ops.mutate('QoS', where, [['external_ids', 'insert', ovsMap({ extra: '1' })]]),
  ]);
  t.same([upd?.count, mut?.count], [1, 1]);
  t.equal(await vsctl(ovs, 'get', 'QoS', id!, 'other_config:max-rate'), '"1000000"');
  t.equal(await vsctl(ovs, 'get', 'QoS', id!, 'external_ids:extra'), '"1"');
  // wait: satisfied at once, and timing out when the condition never holds
  const [w] = await client.transact([ops.wait('QoS', where, ['type'], '==', [{ type: 'linux-htb' }], 1000)]);
  t.same(w, {});
  t.match(
    await client
      .transact([ops.wait('QoS', where, ['type'], '==', [{ type: 'linux-hfsc' }], 100)])
      .catch((e: unknown) => e),
    { code: 'OVSDB_OPERATION_FAILED', op: 'wait', ovsdbError: 'timed out', table: 'QoS' },
  );
  const [del] = await client.transact([ops.delete('QoS', where)]);
  t.equal(del?.count, 1);
  t.equal(await vsctl(ovs, 'list', 'QoS'), '');
});

t.test('tunnel ports of each type get their ofports', async (t) => {
  const ovs = await tempOvs(t);
  const client = await connected(t, ovs);
  const br = await netdevBridge(t, ovs, client);
  const created = await br.createPorts([
    { name: 'tun-geneve', type: 'geneve', tunnel: { remoteIp: 'flow', key: 'flow', dstPort: 6081, csum: true } },
    { name: 'tun-vxlan', type: 'vxlan', tunnel: { remoteIp: 'flow', key: 'flow', dstPort: 4789 } },
    { name: 'tun-gre', type: 'gre', tunnel: { remoteIp: '192.0.2.7', key: 7, localIp: '192.0.2.1' } },
    { name: 'tun-stt', type: 'stt', tunnel: { remoteIp: 'flow', key: 'flow' } },
  ]);
  t.same(
    created.map((p) => p.type),
    ['geneve', 'vxlan', 'gre', 'stt'],
  );
  for (const name of ['tun-geneve', 'tun-vxlan', 'tun-gre', 'tun-stt']) {
    t.ok((await br.waitForOFPort(name)) > 0, `${name} has an ofport`);
  }
  t.equal(
    await vsctl(ovs, 'get', 'Interface', 'tun-gre', 'options'),
    '{key="7", local_ip="192.0.2.1", remote_ip="192.0.2.7"}',
  );
  t.equal(await vsctl(ovs, 'get', 'Interface', 'tun-stt', 'type'), 'stt');
  t.equal(await vsctl(ovs, 'get', 'Interface', 'tun-vxlan', 'options:dst_port'), '"4789"');
});

t.test('echo round-trips on a real server', async (t) => {
  const ovs = await tempOvs(t);
  const client = await connected(t, ovs);
  const ms = await client.echo(2000);
  t.ok(ms >= 0 && ms < 2000, `echo answered in ${ms.toFixed(1)}ms`);
});
