import t, { type Test } from 'tap';
import { OvsdbError } from '../../src/common/ovs/ovsdb/errors.ts';
import { type Operation, ops, eq } from '../../src/common/ovs/ovsdb/operations.ts';
import {
  checkValue,
  defaultValue,
  describeType,
  parseSchema,
  validateOperations,
} from '../../src/common/ovs/ovsdb/schema.ts';
import {
  mapToRecord,
  namedUuid,
  optionalNumber,
  ovsMap,
  ovsSet,
  setElements,
  uuid,
  valuesEqual,
} from '../../src/common/ovs/ovsdb/values.ts';
import { SCHEMA } from '../helpers/fake-ovsdb.ts';

const U = '2f7c3d54-0a52-4a2e-9f11-3c4d5e6f7a8b';

t.test('the vswitch schema parses into typed tables and columns', (t) => {
  t.equal(SCHEMA.name, 'Open_vSwitch');
  t.equal(SCHEMA.version, '8.3.1');
  const iface = SCHEMA.tables.get('Interface')!;
  const req = iface.columns.get('ofport_request')!;
  t.same(req.type, { key: { type: 'integer', minInteger: 1, maxInteger: 65279 }, min: 0, max: 1 });
  t.equal(describeType(req.type), 'optional integer in 1..65279');
  t.equal(describeType(iface.columns.get('options')!.type), 'map of string to string');
  t.equal(iface.columns.get('name')!.mutable, false);
  t.equal(iface.columns.get('statistics')!.ephemeral, true);
  t.ok(SCHEMA.tables.get('Open_vSwitch')!.isRoot);
  t.notOk(SCHEMA.tables.get('Bridge')!.isRoot);
  t.same(SCHEMA.tables.get('Port')!.indexes, [['name']]);
  t.equal(
    describeType(SCHEMA.tables.get('Bridge')!.columns.get('ports')!.type),
    'set of 0..unlimited uuid referencing Port',
  );
  t.throws(() => parseSchema({ tables: {} }), { code: 'OVSDB_PROTOCOL_ERROR' });
  t.throws(
    () => parseSchema({ name: 'x', tables: { T: { columns: { c: { type: 'float' } } } } }),
    /unknown atomic type/,
  );
  t.end();
});

t.test('defaults follow the column type', (t) => {
  const col = (table: string, c: string) => SCHEMA.tables.get(table)!.columns.get(c)!.type;
  t.same(defaultValue(col('Interface', 'ofport')), ['set', []]);
  t.same(defaultValue(col('Interface', 'options')), ['map', []]);
  t.equal(defaultValue(col('Interface', 'type')), '');
  t.equal(defaultValue(col('Open_vSwitch', 'next_cfg')), 0);
  t.equal(defaultValue(col('Port', 'fake_bridge')), false);
  t.end();
});

t.test('checkValue explains what is wrong with a value', (t) => {
  const col = (table: string, c: string) => SCHEMA.tables.get(table)!.columns.get(c)!.type;
  t.equal(checkValue(col('Interface', 'ofport_request'), 10), undefined);
  t.equal(checkValue(col('Interface', 'ofport_request'), ['set', []]), undefined);
  t.equal(checkValue(col('Interface', 'ofport_request'), 70000), '70000 is above the maximum 65279');
  t.equal(checkValue(col('Interface', 'ofport_request'), ['set', [1, 2]]), '2 elements, at most 1 allowed');
  t.equal(checkValue(col('Interface', 'ofport_request'), '5'), 'expected an integer, got "5"');
  t.equal(checkValue(col('Bridge', 'fail_mode'), 'bogus'), '"bogus" is not one of "standalone", "secure"');
  t.equal(checkValue(col('Interface', 'options'), ovsMap({ a: 'b' })), undefined);
  t.equal(checkValue(col('Interface', 'options'), ['map', [['a', 1]]]), 'value of key "a": expected a string, got 1');
  t.equal(
    checkValue(col('Interface', 'options'), [
      'map',
      [
        ['a', 'x'],
        ['a', 'y'],
      ],
    ]),
    'duplicate map key "a"',
  );
  t.equal(checkValue(col('Interface', 'options'), 'x'), 'expected a map ["map", [[key, value], ...]], got "x"');
  t.equal(checkValue(col('Port', 'interfaces'), ['set', []]), '0 elements, at least 1 needed');
  t.equal(checkValue(col('Port', 'interfaces'), ['set', []], { checkMin: false }), undefined);
  t.equal(checkValue(col('Port', 'interfaces'), ['uuid', 'nope']), '"nope" is not a UUID');
  t.equal(
    checkValue(col('Port', 'interfaces'), namedUuid('i'), { uuidNames: new Set(['j']) }),
    'named-uuid "i" is not the uuid-name of an insert in this transaction',
  );
  t.equal(checkValue(col('Port', 'name'), ovsMap({})), 'expected string, got a map');
  t.end();
});

function invalid(t: Test, txn: Operation[], expected: Record<string, unknown>): void {
  const err = (() => {
    try {
      validateOperations(SCHEMA, txn);
      return undefined;
    } catch (e) {
      return e;
    }
  })();
  t.type(err, OvsdbError);
  t.match(err, { code: 'OVSDB_INVALID_OPERATION', kind: 'validation', ...expected });
}

t.test('validation names the operation, table, column and value at fault', (t) => {
  const good: Operation[] = [
    ops.insert('Interface', { name: 'p1', type: '', ofport_request: 5, options: ovsMap({ a: 'b' }) }, 'i'),
    ops.insert('Port', { name: 'p1', interfaces: namedUuid('i'), external_ids: ovsMap({ k: 'v' }) }, 'p'),
    ops.mutate('Bridge', [eq('name', 'br')], [['ports', 'insert', ovsSet([namedUuid('p')])]]),
    ops.update('Interface', [eq('_uuid', uuid(U))], { options: ovsMap({}) }),
    ops.mutate('Bridge', [eq('name', 'br')], [['external_ids', 'delete', ovsSet(['a', 'b'])]]),
    ops.mutate('Open_vSwitch', [], [['next_cfg', '+=', 1]]),
    ops.select('Interface', [['ofport', '>', 0]], ['ofport']),
    ops.wait('Interface', [eq('name', 'p1')], ['ofport'], '!=', [{ ofport: ['set', []] }], 100),
    ops.delete('Port', [['name', 'includes', 'x']]),
    ops.comment('hi'),
  ];
  t.doesNotThrow(() => validateOperations(SCHEMA, good));

  invalid(t, [ops.insert('Nope', { name: 'x' })], { opIndex: 0, table: 'Nope', message: /no table "Nope"/ });
  invalid(t, [ops.comment('x'), ops.insert('Bridge', { foo: 1 })], {
    opIndex: 1,
    op: 'insert',
    table: 'Bridge',
    column: 'foo',
    message: 'operation 1 (insert Bridge) column "foo": unknown column "foo" in table Bridge',
  });
  invalid(t, [ops.insert('Bridge', { name: 1 })], { column: 'name', value: 1, message: /expected a string, got 1/ });
  invalid(t, [ops.insert('Bridge', { name: 'b', fail_mode: 'bogus' })], {
    column: 'fail_mode',
    value: 'bogus',
    message: /"bogus" is not one of "standalone", "secure"/,
  });
  invalid(t, [ops.insert('Interface', { name: 'x', ofport_request: 70000 })], {
    column: 'ofport_request',
    value: 70000,
    message: /above the maximum 65279 \(type: optional integer in 1\.\.65279\)/,
  });
  invalid(t, [ops.update('Bridge', [eq('name', 'x')], { name: 'y' })], { column: 'name', message: /immutable/ });
  invalid(t, [ops.insert('Bridge', { _uuid: uuid(U) })], { column: '_uuid', message: /cannot be written/ });
  invalid(t, [ops.insert('Port', { name: 'p', interfaces: namedUuid('nope') })], {
    column: 'interfaces',
    message: /named-uuid "nope"/,
  });
  invalid(t, [ops.insert('Port', { name: 'p', interfaces: ovsSet([]) })], { message: /at least 1 needed/ });
  invalid(t, [ops.select('Bridge', [eq('nocol', 'x')])], { column: 'nocol', message: /unknown column "nocol"/ });
  invalid(t, [ops.select('Bridge', [['name', '<', 'x']])], { column: 'name', message: /needs an integer or real/ });
  invalid(t, [ops.select('Bridge', [eq('name', ovsSet(['a', 'b']))])], { message: /2 elements, at most 1/ });
  invalid(t, [ops.select('Bridge', [], ['nocol'])], { column: 'nocol' });
  invalid(t, [ops.mutate('Bridge', [], [['name', 'insert', 'x']])], { column: 'name', message: /immutable/ });
  invalid(t, [ops.mutate('Open_vSwitch', [], [['next_cfg', '+=', 'x']])], { column: 'next_cfg', value: 'x' });
  invalid(t, [ops.mutate('Bridge', [], [['datapath_type', 'insert', 'x']])], { message: /needs a set or map/ });
  invalid(t, [ops.mutate('Bridge', [], [['external_ids', 'insert', ovsSet(['a'])]])], { message: /expected a map/ });
  invalid(t, [ops.mutate('Bridge', [], [['ports', '+=', 1]])], { message: /needs an integer or real/ });
  invalid(t, [ops.wait('Interface', [], ['ofport'], '!=', [{ name: 'x' }])], { message: /not listed in "columns"/ });
  invalid(t, [{ op: 'bogus', table: 'Bridge' } as unknown as Operation], { message: /unknown operation/ });
  invalid(t, [ops.insert('Bridge', { name: 'a' }, 'x'), ops.insert('Bridge', { name: 'b' }, 'x')], {
    opIndex: 1,
    message: /duplicate uuid-name "x"/,
  });
  t.end();
});

t.test('value helpers decode sets, maps and optional columns', (t) => {
  t.same(setElements(5), [5]);
  t.same(setElements(['set', [1, 2]]), [1, 2]);
  t.same(setElements(undefined), []);
  t.equal(optionalNumber(['set', []]), undefined);
  t.equal(optionalNumber(7), 7);
  t.same(mapToRecord(['map', [['a', 'b']]]), { a: 'b' });
  t.same(mapToRecord(['set', []]), {});
  t.same(
    ovsMap({ b: '2', a: '1' }),
    [
      'map',
      [
        ['a', '1'],
        ['b', '2'],
      ],
    ],
    'maps are sorted by key',
  );
  t.ok(valuesEqual(5, ['set', [5]]), 'a bare atom equals its one-element set');
  t.ok(valuesEqual(['set', [1, 2]], ['set', [2, 1]]), 'sets are unordered');
  t.ok(
    valuesEqual(
      [
        'map',
        [
          ['a', 'b'],
          ['c', 'd'],
        ],
      ],
      [
        'map',
        [
          ['c', 'd'],
          ['a', 'b'],
        ],
      ],
    ),
    'maps are unordered',
  );
  t.notOk(valuesEqual(['map', [['a', 'b']]], ['map', [['a', 'c']]]));
  t.notOk(valuesEqual(['set', []], ['map', [['a', 'c']]]));
  t.throws(() => setElements(['map', []]), TypeError);
  t.end();
});
