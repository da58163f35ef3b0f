import t from 'tap';
import { applyDiff, type CacheUpdate, OvsdbCache } from '../../src/common/ovs/ovsdb/cache.ts';
import { SCHEMA } from '../helpers/fake-ovsdb.ts';

const IFACE_COLS = ['name', 'type', 'options', 'ofport', 'external_ids', 'error'];

function cache(): { c: OvsdbCache; updates: CacheUpdate[] } {
  const c = new OvsdbCache({ indexes: { Interface: ['name'] } });
  c.configure(SCHEMA, new Map([['Interface', IFACE_COLS]]));
  const updates: CacheUpdate[] = [];
  c.subscribe((u) => updates.push(u));
  return { c, updates };
}

t.test('update2 initial rows are completed with column defaults', (t) => {
  const { c, updates } = cache();
  c.replaceAll({ Interface: { u1: { initial: { name: 'p1', ofport: 5 } } } }, 'update2');
  t.same(c.get('Interface', 'u1')?.columns, {
    name: 'p1',
    ofport: 5,
    type: '',
    options: ['map', []],
    external_ids: ['map', []],
    error: ['set', []],
  });
  t.equal(updates.length, 1);
  t.equal(updates[0]!.resync, true);
  t.same(
    updates[0]!.changes.map((ch) => [ch.kind, ch.uuid]),
    [['insert', 'u1']],
  );
  t.end();
});

t.test('update2 modify applies scalar, set and map diffs', (t) => {
  const { c, updates } = cache();
  c.replaceAll(
    {
      Interface: {
        u1: {
          initial: {
            name: 'p1',
            options: [
              'map',
              [
                ['a', '1'],
                ['b', '2'],
              ],
            ],
            ofport: 5,
          },
        },
        u2: { initial: { name: 'p2' } },
      },
    },
    'update2',
  );
  const before = c.get('Interface', 'u1');
  // options: a deleted (same value), b changed, c added; ofport 5 -> 6 (set diff {5,6}); type replaced
  c.applyUpdate2({
    Interface: {
      u1: {
        modify: {
          options: [
            'map',
            [
              ['a', '1'],
              ['b', '3'],
              ['c', '4'],
            ],
          ],
          ofport: ['set', [5, 6]],
          type: 'internal',
        },
      },
    },
  });
  const row = c.get('Interface', 'u1')!;
  t.same(row.columns['options'], [
    'map',
    [
      ['b', '3'],
      ['c', '4'],
    ],
  ]);
  t.same(row.columns['ofport'], ['set', [6]]);
  t.equal(row.columns['type'], 'internal');
  t.not(row, before, 'a modified row is a new object');
  t.same(before?.columns['ofport'], 5, 'the old snapshot is unchanged');
  // an optional column toggled off by a bare atom equal to the current value
  c.applyUpdate2({ Interface: { u1: { modify: { ofport: 6 } } } });
  t.same(c.get('Interface', 'u1')!.columns['ofport'], ['set', []]);
  // and on again by a bare atom
  c.applyUpdate2({ Interface: { u1: { modify: { ofport: 9 } } } });
  t.same(c.get('Interface', 'u1')!.columns['ofport'], ['set', [9]]);
  c.applyUpdate2({ Interface: { u2: { delete: null }, u3: { insert: { name: 'p3' } } } });
  t.equal(c.get('Interface', 'u2'), undefined);
  t.equal(c.size('Interface'), 2);
  const last = updates.at(-1)!;
  t.equal(last.resync, false);
  t.same(
    last.changes.map((ch) => [ch.kind, ch.uuid, ch.old?.columns['name'], ch.new?.columns['name']]),
    [
      ['delete', 'u2', 'p2', undefined],
      ['insert', 'u3', undefined, 'p3'],
    ],
  );
  t.throws(() => c.applyUpdate2({ Interface: { nope: { modify: { type: 'x' } } } }), {
    code: 'OVSDB_PROTOCOL_ERROR',
  });
  t.end();
});

t.test('applyDiff without schema knowledge still handles explicit sets and maps', (t) => {
  t.same(applyDiff({ s: ['set', ['a', 'b']] }, { s: ['set', ['b', 'c']] }), { s: ['set', ['a', 'c']] });
  t.same(applyDiff({ m: ['map', [['k', 'v']]] }, { m: ['map', [['k', 'v']]] }), { m: ['map', []] });
  t.same(applyDiff({ x: 1 }, { x: 2 }), { x: 2 });
  t.end();
});

t.test('monitor (v1) updates replace rows', (t) => {
  const { c } = cache();
  c.replaceAll({ Interface: { u1: { new: { name: 'p1', type: 'internal' } } } }, 'update');
  t.equal(c.get('Interface', 'u1')!.columns['type'], 'internal');
  c.applyUpdate({ Interface: { u1: { old: { type: 'internal' }, new: { name: 'p1', type: 'geneve' } } } });
  t.equal(c.get('Interface', 'u1')!.columns['type'], 'geneve');
  c.applyUpdate({ Interface: { u1: { old: { name: 'p1' } } } });
  t.equal(c.size('Interface'), 0);
  t.end();
});

t.test('a resync replaces everything and reports the difference', (t) => {
  const { c, updates } = cache();
  c.replaceAll(
    {
      Interface: { u1: { initial: { name: 'p1' } }, u2: { initial: { name: 'p2' } }, u3: { initial: { name: 'p3' } } },
    },
    'update2',
  );
  // while disconnected: p1 deleted, p2 changed, p3 unchanged, p4 added
  c.replaceAll(
    {
      Interface: {
        u2: { initial: { name: 'p2', type: 'internal' } },
        u3: { initial: { name: 'p3' } },
        u4: { initial: { name: 'p4' } },
      },
    },
    'update2',
  );
  const last = updates.at(-1)!;
  t.equal(last.resync, true);
  t.same(last.changes.map((ch) => [ch.kind, ch.uuid]).sort(), [
    ['delete', 'u1'],
    ['insert', 'u4'],
    ['modify', 'u2'],
  ]);
  t.same(
    c.lookup('Interface', 'name', 'p1'),
    [],
    'the index forgets rows that vanished during the outage (no stale state merged)',
  );
  t.equal(c.lookup('Interface', 'name', 'p4')[0]?.uuid, 'u4');
  t.end();
});

t.test('lookup uses the name index and follows renames; unindexed columns are scanned', (t) => {
  const { c } = cache();
  c.replaceAll({ Interface: { u1: { initial: { name: 'p1', type: 'internal' } } } }, 'update2');
  t.equal(c.lookup('Interface', 'name', 'p1').length, 1);
  c.applyUpdate2({ Interface: { u1: { modify: { name: 'p9' } } } });
  t.same(c.lookup('Interface', 'name', 'p1'), []);
  t.equal(c.lookup('Interface', 'name', 'p9')[0]?.uuid, 'u1');
  t.equal(c.lookup('Interface', 'type', 'internal')[0]?.uuid, 'u1');
  t.same(c.lookup('Bridge', 'name', 'x'), []);
  t.end();
});

t.test('a throwing listener does not stop the others; unsubscribe works', (t) => {
  const { c } = cache();
  let seen = 0;
  c.subscribe(() => {
    throw new Error('boom');
  });
  const off = c.subscribe(() => seen++);
  c.replaceAll({}, 'update2');
  off();
  c.replaceAll({}, 'update2');
  t.equal(seen, 1);
  t.end();
});
