/**
 * The bridge client against a recording transactor: every transaction it issues is compared with
 * golden JSON under test/unit/golden/ovsdb-bridge/ (regenerate with UPDATE_GOLDEN=1 and review the
 * diff). The cache starts from a fixed snapshot so UUIDs in the goldens are stable.
 */
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { OvsdbBridge, type PortSpec, validatePortSpec } from '../../src/common/ovs/ovsdb/bridge.ts';
import type { TableUpdates2 } from '../../src/common/ovs/ovsdb/cache.ts';
import { OvsdbError } from '../../src/common/ovs/ovsdb/errors.ts';
import { validateOperations } from '../../src/common/ovs/ovsdb/schema.ts';
import { ValidationError } from '../../src/common/util/errors.ts';
import { RecordingTransactor, SCHEMA } from '../helpers/fake-ovsdb.ts';
import { readGolden } from '../helpers/golden.ts';

const GOLDEN_DIR = join(import.meta.dirname, 'golden', 'ovsdb-bridge');

function golden(t: Test, name: string, actual: unknown): void {
  const text = JSON.stringify(actual, null, 2) + '\n';
  const want = readGolden(t, join(GOLDEN_DIR, `${name}.json`), text);
  if (want !== undefined) t.same(JSON.parse(text) as unknown, JSON.parse(want) as unknown, `golden ${name}.json`);
}

const U = {
  root: '10000000-0000-0000-0000-000000000000',
  br: '20000000-0000-0000-0000-000000000000',
  brPort: '30000000-0000-0000-0000-000000000000',
  brIface: '40000000-0000-0000-0000-000000000000',
  gwPort: '30000000-0000-0000-0000-000000000001',
  gwIface: '40000000-0000-0000-0000-000000000001',
  tunPort: '30000000-0000-0000-0000-000000000002',
  tunIface: '40000000-0000-0000-0000-000000000002',
  otherBr: '20000000-0000-0000-0000-000000000009',
  otherPort: '30000000-0000-0000-0000-000000000009',
  otherIface: '40000000-0000-0000-0000-000000000009',
};

/** br-int (netdev, OF10+OF15) with antrea-gw0 and antrea-tun0; br-phy with eth1. */
function snapshot(): TableUpdates2 {
  return {
    Open_vSwitch: {
      [U.root]: {
        initial: {
          bridges: [
            'set',
            [
              ['uuid', U.br],
              ['uuid', U.otherBr],
            ],
          ],
          other_config: ['map', [['flow-restore-wait', 'true']]],
          ovs_version: '3.1.0',
        },
      },
    },
    Bridge: {
      [U.br]: {
        initial: {
          name: 'br-int',
          datapath_type: 'netdev',
          datapath_id: '0000aabbccddeeff',
          protocols: ['set', ['OpenFlow10', 'OpenFlow15']],
          ports: [
            'set',
            [
              ['uuid', U.brPort],
              ['uuid', U.gwPort],
              ['uuid', U.tunPort],
            ],
          ],
          external_ids: ['map', [['roundNum', '3']]],
        },
      },
      [U.otherBr]: { initial: { name: 'br-phy', ports: ['uuid', U.otherPort] } },
    },
    Port: {
      [U.brPort]: { initial: { name: 'br-int', interfaces: ['uuid', U.brIface] } },
      [U.gwPort]: {
        initial: {
          name: 'antrea-gw0',
          interfaces: ['uuid', U.gwIface],
          external_ids: ['map', [['antrea-type', 'gateway']]],
        },
      },
      [U.tunPort]: {
        initial: {
          name: 'antrea-tun0',
          interfaces: ['uuid', U.tunIface],
          external_ids: ['map', [['antrea-type', 'tunnel']]],
        },
      },
      [U.otherPort]: { initial: { name: 'eth1', interfaces: ['uuid', U.otherIface] } },
    },
    Interface: {
      [U.brIface]: { initial: { name: 'br-int', type: 'internal', ofport: 65534 } },
      [U.gwIface]: {
        initial: {
          name: 'antrea-gw0',
          type: 'internal',
          ofport: 32769,
          ofport_request: 32769,
          mac_in_use: '0a:00:00:00:00:01',
        },
      },
      [U.tunIface]: {
        initial: {
          name: 'antrea-tun0',
          type: 'geneve',
          ofport: 32768,
          ofport_request: 32768,
          options: [
            'map',
            [
              ['key', 'flow'],
              ['remote_ip', 'flow'],
            ],
          ],
        },
      },
      [U.otherIface]: { initial: { name: 'eth1', ofport: 1 } },
    },
  };
}

function setup(initial: TableUpdates2 = snapshot()): { tx: RecordingTransactor; br: OvsdbBridge } {
  const tx = new RecordingTransactor();
  tx.load(initial);
  return { tx, br: new OvsdbBridge(tx, 'br-int') };
}

/** The snapshot without br-int (and its ports). */
function withoutBridge(): TableUpdates2 {
  const s = snapshot();
  const root = { ...s['Open_vSwitch']![U.root]!.initial!, bridges: ['uuid', U.otherBr] as const };
  return {
    Open_vSwitch: { [U.root]: { initial: root } },
    Bridge: { [U.otherBr]: s['Bridge']![U.otherBr]! },
    Port: { [U.otherPort]: s['Port']![U.otherPort]! },
    Interface: { [U.otherIface]: s['Interface']![U.otherIface]! },
  };
}

/** Every transaction recorded must also pass the client's schema validation. */
function checkAll(t: Test, tx: RecordingTransactor): void {
  for (const txn of tx.transactions) t.doesNotThrow(() => validateOperations(SCHEMA, txn), 'schema-valid');
}

t.test('create a new bridge: LOCAL port, options, and the root row mutation', async (t) => {
  const { tx, br } = setup(withoutBridge());
  tx.respond = (ops) => {
    // make the insert visible, as the server's update2 would before the reply
    tx.cache.applyUpdate2({
      Bridge: { [U.br]: { insert: { name: 'br-int', datapath_type: 'netdev' } } },
    });
    return ops.map(() => ({}));
  };
  const info = await br.create({
    datapathType: 'netdev',
    protocols: ['OpenFlow10', 'OpenFlow15'],
    failMode: 'secure',
    otherConfig: { 'datapath-id': '0000aabbccddeeff' },
    externalIds: { roundNum: '1' },
  });
  t.equal(info.name, 'br-int');
  t.equal(info.datapathType, 'netdev');
  golden(t, 'create-bridge', tx.transactions);
  checkAll(t, tx);
});

t.test('create an existing bridge: nothing when it matches, an update when it differs', async (t) => {
  const { tx, br } = setup();
  await br.create({ datapathType: 'netdev', protocols: ['OpenFlow15', 'OpenFlow10'], externalIds: { roundNum: '3' } });
  t.same(tx.transactions, [], 'same settings: no transaction');
  await br.create({
    datapathType: 'system',
    protocols: ['OpenFlow13'],
    failMode: 'standalone',
    otherConfig: { a: 'b' },
    externalIds: { roundNum: '4', other: 'x' },
  });
  golden(t, 'update-bridge', tx.transactions);
  checkAll(t, tx);
});

t.test('delete a bridge; deleting an absent one sends nothing', async (t) => {
  const { tx, br } = setup();
  await br.delete();
  golden(t, 'delete-bridge', tx.transactions);
  const { tx: tx2, br: br2 } = setup(withoutBridge());
  await br2.delete();
  t.same(tx2.transactions, []);
  checkAll(t, tx);
});

t.test('bridge external_ids: set merges keys, remove deletes keys', async (t) => {
  const { tx, br } = setup();
  await br.setExternalIds({ roundNum: '4' });
  await br.removeExternalIds(['roundNum']);
  await br.removeExternalIds([]);
  golden(t, 'bridge-external-ids', tx.transactions);
  checkAll(t, tx);
});

const NEW_PORTS: Record<string, PortSpec> = {
  internal: {
    name: 'antrea-gw1',
    type: 'internal',
    ofportRequest: 32771,
    mac: '0A:00:00:00:00:02',
    mtuRequest: 1450,
    externalIds: { 'antrea-type': 'gateway' },
  },
  system: {
    name: 'pod1-a1b2c3',
    type: 'system',
    externalIds: {
      'antrea-type': 'container',
      'container-id': 'c0ffee',
      'pod-name': 'web-0',
      'pod-namespace': 'default',
      ip: '10.10.0.5',
      'attached-mac': '0a:58:0a:0a:00:05',
    },
    interfaceExternalIds: { 'iface-id': 'web-0' },
  },
  geneve: {
    name: 'tun-geneve',
    type: 'geneve',
    ofportRequest: 32768,
    tunnel: { remoteIp: 'flow', key: 'flow', dstPort: 6081, csum: true },
    externalIds: { 'antrea-type': 'tunnel' },
  },
  vxlan: { name: 'tun-vxlan', type: 'vxlan', tunnel: { remoteIp: 'flow', key: 'flow', dstPort: 4789 } },
  gre: { name: 'tun-gre', type: 'gre', tunnel: { remoteIp: '192.0.2.7', key: 4000000000, localIp: '192.0.2.1' } },
  stt: { name: 'tun-stt', type: 'stt', tunnel: { remoteIp: 'flow', key: 'flow', dstPort: 7471 } },
};

for (const [kind, spec] of Object.entries(NEW_PORTS)) {
  t.test(`create a ${kind} port`, async (t) => {
    const { tx, br } = setup();
    tx.respond = (ops) => {
      tx.cache.applyUpdate2({
        Interface: { '40000000-0000-0000-0000-00000000000a': { insert: { name: spec.name, type: spec.type } } },
        Port: {
          '30000000-0000-0000-0000-00000000000a': {
            insert: { name: spec.name, interfaces: ['uuid', '40000000-0000-0000-0000-00000000000a'] },
          },
        },
        Bridge: { [U.br]: { modify: { ports: ['uuid', '30000000-0000-0000-0000-00000000000a'] } } },
      });
      return ops.map(() => ({}));
    };
    const info = await br.createPort(spec);
    t.equal(info.name, spec.name);
    t.equal(info.uuid, '30000000-0000-0000-0000-00000000000a');
    golden(t, `create-port-${kind}`, tx.transactions);
    checkAll(t, tx);
  });
}

t.test('create an existing port: nothing when it matches, an in-place update when it differs', async (t) => {
  const { tx, br } = setup();
  const same = await br.createPort({
    name: 'antrea-tun0',
    type: 'geneve',
    ofportRequest: 32768,
    tunnel: { remoteIp: 'flow', key: 'flow' },
    externalIds: { 'antrea-type': 'tunnel' },
  });
  t.equal(same.ofport, 32768);
  await br.createPort({ name: 'antrea-gw0', type: 'internal', ofportRequest: 32769 });
  t.same(tx.transactions, [], 'same settings: no transaction');
  // the tunnel type and port changed (as when the agent's config changes): updated in place
  await br.createPort({
    name: 'antrea-tun0',
    type: 'vxlan',
    ofportRequest: 32768,
    tunnel: { remoteIp: 'flow', key: 'flow', dstPort: 8472 },
    externalIds: { 'antrea-type': 'tunnel', extra: '1' },
  });
  golden(t, 'update-port', tx.transactions);
  checkAll(t, tx);
});

t.test('create several ports in one transaction: new ones inserted, existing ones reconciled', async (t) => {
  const { tx, br } = setup();
  tx.respond = (ops) => {
    tx.cache.applyUpdate2({
      Interface: {
        '40000000-0000-0000-0000-00000000000c': { insert: { name: 'pod-a' } },
        '40000000-0000-0000-0000-00000000000d': { insert: { name: 'pod-b' } },
      },
      Port: {
        '30000000-0000-0000-0000-00000000000c': {
          insert: { name: 'pod-a', interfaces: ['uuid', '40000000-0000-0000-0000-00000000000c'] },
        },
        '30000000-0000-0000-0000-00000000000d': {
          insert: { name: 'pod-b', interfaces: ['uuid', '40000000-0000-0000-0000-00000000000d'] },
        },
      },
      Bridge: {
        [U.br]: {
          modify: {
            ports: [
              'set',
              [
                ['uuid', '30000000-0000-0000-0000-00000000000c'],
                ['uuid', '30000000-0000-0000-0000-00000000000d'],
              ],
            ],
          },
        },
      },
    });
    return ops.map(() => ({}));
  };
  const infos = await br.createPorts([
    { name: 'pod-a', type: 'system', externalIds: { 'antrea-type': 'container', 'pod-name': 'a' } },
    { name: 'antrea-gw0', type: 'internal', ofportRequest: 32769, externalIds: { 'antrea-type': 'gateway', v: '2' } },
    { name: 'pod-b', type: 'system', externalIds: { 'antrea-type': 'container', 'pod-name': 'b' } },
  ]);
  t.same(
    infos.map((p) => p.name),
    ['pod-a', 'antrea-gw0', 'pod-b'],
  );
  golden(t, 'create-ports-batch', tx.transactions);
  checkAll(t, tx);
  t.same(await br.createPorts([]), []);
  await t.rejects(
    br.createPorts([
      { name: 'x', type: 'internal' },
      { name: 'x', type: 'internal' },
    ]),
    { name: 'ValidationError', field: 'ports[1].name' },
  );
});

t.test('port errors: missing bridge, name on another bridge, bad specs', async (t) => {
  const { br: absent } = setup(withoutBridge());
  t.rejects(absent.createPort({ name: 'p', type: 'internal' }), {
    code: 'OVSDB_NOT_FOUND',
    message: 'bridge br-int does not exist',
  });
  const { tx, br } = setup();
  const conflict = await br.createPort({ name: 'eth1', type: 'system' }).catch((e: unknown) => e);
  t.type(conflict, OvsdbError);
  t.match(conflict, {
    code: 'OVSDB_CONFLICT',
    kind: 'bridge',
    message: /eth1 already exists but not on bridge br-int/,
  });
  const bad: [PortSpec, string, RegExp][] = [
    [{ name: '', type: 'internal' }, 'port.name', /invalid name/],
    [{ name: 'a-name-that-is-too-long', type: 'internal' }, 'port.name', /1-15 characters/],
    [{ name: 'p', type: 'bogus' as 'internal' }, 'port.type', /must be one of internal, system, geneve/],
    [{ name: 'p', type: 'internal', ofportRequest: 65280 }, 'port.ofportRequest', /1-65279/],
    [{ name: 'p', type: 'internal', ofportRequest: 0 }, 'port.ofportRequest', /1-65279/],
    [{ name: 'p', type: 'internal', tunnel: { remoteIp: 'flow' } }, 'port.tunnel', /need a tunnel type/],
    [{ name: 'p', type: 'geneve' }, 'port.tunnel', /needs tunnel.remoteIp/],
    [{ name: 'p', type: 'geneve', tunnel: { remoteIp: '300.1.1.1' } }, 'port.tunnel.remoteIp', /"flow" or an IP/],
    [{ name: 'p', type: 'vxlan', tunnel: { remoteIp: 'flow', key: 0x1000000 } }, 'port.tunnel.key', /0-16777215/],
    [{ name: 'p', type: 'geneve', tunnel: { remoteIp: 'flow', dstPort: 0 } }, 'port.tunnel.dstPort', /1-65535/],
    [
      { name: 'p', type: 'gre', tunnel: { remoteIp: 'flow', dstPort: 1 } },
      'port.tunnel.dstPort',
      /no destination port/,
    ],
    [{ name: 'p', type: 'internal', mac: 'zz:00:00:00:00:00' }, 'port.mac', /invalid MAC/],
    [{ name: 'p', type: 'internal', externalIds: { a: 1 as unknown as string } }, 'port.externalIds.a', /string/],
  ];
  for (const [spec, field, msg] of bad) {
    const err = await br.createPort(spec).catch((e: unknown) => e);
    t.type(err, ValidationError, field);
    t.match(err, { field, message: msg }, field);
  }
  t.same(tx.transactions, [], 'nothing was sent for bad input');
  t.doesNotThrow(() => validatePortSpec({ name: 'p', type: 'geneve', options: { remote_ip: 'flow' } }));
  t.throws(() => new OvsdbBridge(tx, 'bad/name'), { name: 'ValidationError', field: 'bridge.name' });
  await t.rejects(br.create({ datapathType: 'dpdk' as 'netdev' }), {
    name: 'ValidationError',
    field: 'bridge.datapathType',
  });
  await t.rejects(br.create({ protocols: ['OpenFlow16' as 'OpenFlow15'] }), {
    name: 'ValidationError',
    field: 'bridge.protocols',
  });
  await t.rejects(br.create({ failMode: 'open' as 'secure' }), { name: 'ValidationError', field: 'bridge.failMode' });
});

t.test('delete ports: one, several, absent and foreign ones skipped', async (t) => {
  const { tx, br } = setup();
  await br.deletePort('antrea-gw0');
  await br.deletePorts(['antrea-tun0', 'nope', 'eth1']);
  await br.deletePort('nope');
  golden(t, 'delete-ports', tx.transactions);
  checkAll(t, tx);
});

t.test('wait for an ofport: cached, waited with a wait operation, failed, timed out, absent', async (t) => {
  const { tx, br } = setup();
  t.equal(await br.waitForOFPort('antrea-gw0'), 32769, 'a cached ofport needs no transaction');
  t.same(tx.transactions, []);
  tx.cache.applyUpdate2({
    Interface: { '40000000-0000-0000-0000-00000000000b': { insert: { name: 'pod2' } } },
    Port: {
      '30000000-0000-0000-0000-00000000000b': {
        insert: { name: 'pod2', interfaces: ['uuid', '40000000-0000-0000-0000-00000000000b'] },
      },
    },
    Bridge: { [U.br]: { modify: { ports: ['uuid', '30000000-0000-0000-0000-00000000000b'] } } },
  });
  tx.respond = () => [{}, { rows: [{ ofport: 7, error: ['set', []] }] }];
  t.equal(await br.waitForOFPort('pod2', 2000), 7);
  golden(t, 'wait-ofport', tx.transactions);
  checkAll(t, tx);

  tx.respond = () => [{}, { rows: [{ ofport: -1, error: 'could not open network device pod2 (No such device)' }] }];
  const failed = await br.waitForOFPort('pod2').catch((e: unknown) => e);
  t.match(failed, {
    code: 'OVSDB_PORT_FAILED',
    message: 'port pod2: ovs-vswitchd could not add the interface: could not open network device pod2 (No such device)',
    table: 'Interface',
    column: 'ofport',
    value: -1,
  });
  tx.respond = () => {
    throw new OvsdbError('OVSDB_OPERATION_FAILED', 'timed out', { opIndex: 0, op: 'wait', ovsdbError: 'timed out' });
  };
  t.match(await br.waitForOFPort('pod2', 100).catch((e: unknown) => e), {
    code: 'OVSDB_TIMEOUT',
    message: 'port pod2: no ofport assigned after 100ms (is ovs-vswitchd running?)',
  });
  tx.respond = () => [{}, { rows: [] }];
  t.match(await br.waitForOFPort('gone').catch((e: unknown) => e), { code: 'OVSDB_NOT_FOUND', message: /gone/ });
});

t.test('datapath ID: cached, or waited for', async (t) => {
  const { tx, br } = setup();
  t.equal(await br.waitForDatapathId(), '0000aabbccddeeff');
  const s = snapshot();
  const bridge = { ...s['Bridge']![U.br]!.initial! };
  delete (bridge as Record<string, unknown>)['datapath_id'];
  tx.load({ ...s, Bridge: { [U.br]: { initial: bridge } } });
  tx.respond = () => [{}, { rows: [{ datapath_id: '0000000000000001' }] }];
  t.equal(await br.waitForDatapathId(1000), '0000000000000001');
  golden(t, 'wait-datapath-id', tx.transactions);
  checkAll(t, tx);
});

t.test('port and interface external_ids and options are replaced', async (t) => {
  const { tx, br } = setup();
  await br.setPortExternalIds('antrea-gw0', { 'antrea-type': 'gateway', x: 'y' });
  await br.setInterfaceExternalIds('antrea-gw0', { 'iface-id': 'gw' });
  await br.setInterfaceOptions('antrea-tun0', { remote_ip: 'flow', key: '5' });
  golden(t, 'set-port-columns', tx.transactions);
  checkAll(t, tx);
  await t.rejects(br.setPortExternalIds('eth1', {}), {
    code: 'OVSDB_NOT_FOUND',
    message: /eth1 is not on bridge br-int/,
  });
  await t.rejects(br.setInterfaceOptions('nope', {}), { code: 'OVSDB_NOT_FOUND' });
});

t.test('Open_vSwitch other_config: flow-restore-wait set and cleared', async (t) => {
  const { tx, br } = setup();
  t.same(br.getOvsOtherConfig(), { 'flow-restore-wait': 'true' });
  t.equal(br.getOvsVersion(), '3.1.0');
  await br.removeOvsOtherConfig(['flow-restore-wait']);
  await br.setOvsOtherConfig({ 'flow-restore-wait': 'true', 'hw-offload': 'false' });
  golden(t, 'ovs-other-config', tx.transactions);
  checkAll(t, tx);
});

t.test('reads come from the cache', (t) => {
  const { br } = setup();
  const info = br.get()!;
  t.same(info, {
    name: 'br-int',
    uuid: U.br,
    datapathType: 'netdev',
    datapathId: '0000aabbccddeeff',
    protocols: ['OpenFlow10', 'OpenFlow15'],
    failMode: undefined,
    otherConfig: {},
    externalIds: { roundNum: '3' },
    portNames: ['antrea-gw0', 'antrea-tun0', 'br-int'],
  });
  t.same(
    br.listPorts().map((p) => [p.name, p.type, p.ofport, p.externalIds['antrea-type']]),
    [
      ['antrea-gw0', 'internal', 32769, 'gateway'],
      ['antrea-tun0', 'geneve', 32768, 'tunnel'],
    ],
    'listPorts leaves out the LOCAL port',
  );
  t.same(br.getPort('antrea-tun0')?.options, { key: 'flow', remote_ip: 'flow' });
  t.equal(br.getPort('antrea-gw0')?.mac, '0a:00:00:00:00:01');
  t.equal(br.getPort('eth1'), undefined, 'a port on another bridge is not ours');
  t.equal(new OvsdbBridge(new RecordingTransactor(), 'br-x').get(), undefined);
  t.same(new OvsdbBridge(new RecordingTransactor(), 'br-x').listPorts(), []);
  t.end();
});
