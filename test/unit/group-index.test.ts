import t from 'tap';
import { EVERYTHING, type Labels, parseLabelSelector, Selector } from '../../src/common/k8s/labels.ts';
import { type GroupSink, GroupingIndex, makeGroupSelector } from '../../src/controller/grouping/group-index.ts';
import {
  smallAdd,
  smallDelete,
  smallHas,
  smallSize,
  smallValues,
  type SmallSet,
} from '../../src/controller/grouping/small-set.ts';

interface E {
  readonly id: string;
}

class Recorder implements GroupSink<E> {
  readonly log: string[] = [];
  readonly members = new Set<string>();
  entityAdded(e: E): void {
    this.log.push(`+${e.id}`);
    this.members.add(e.id);
  }
  entityRemoved(e: E): void {
    this.log.push(`-${e.id}`);
    this.members.delete(e.id);
  }
  entityUpdated(p: E, c: E): void {
    this.log.push(`~${p.id}>${c.id}`);
    this.members.delete(p.id);
    this.members.add(c.id);
  }
}

const podSel = (labels: Record<string, string>): Selector => parseLabelSelector({ matchLabels: labels }, 'x');

/** Counts Selector.matches calls made while `fn` runs. */
function countMatches(fn: () => void): number {
  const proto = Selector.prototype;
  const original = Object.getOwnPropertyDescriptor(proto, 'matches');
  let n = 0;
  Object.defineProperty(proto, 'matches', {
    configurable: true,
    writable: true,
    value(this: Selector, labels: Labels): boolean {
      n++;
      return (original?.value as (this: Selector, l: Labels) => boolean).call(this, labels);
    },
  });
  try {
    fn();
  } finally {
    if (original !== undefined) Object.defineProperty(proto, 'matches', original);
  }
  return n;
}

t.test('normalized names follow Antrea', (t) => {
  t.equal(
    makeGroupSelector({ namespace: 'ns1', podSelector: podSel({ app: 'web' }) }).normalizedName,
    'namespace=ns1 And podSelector=app=web',
  );
  t.equal(
    makeGroupSelector({ namespace: 'ns1', podSelector: EVERYTHING }).normalizedName,
    'namespace=ns1 And podSelector=',
  );
  t.equal(makeGroupSelector({ namespace: 'ns1' }).normalizedName, 'namespace=ns1');
  t.equal(
    makeGroupSelector({
      namespace: 'ignored',
      namespaceSelector: podSel({ team: 'a' }),
      podSelector: podSel({ app: 'web' }),
    }).normalizedName,
    'namespaceSelector=team=a And podSelector=app=web',
  );
  t.equal(makeGroupSelector({ namespaceSelector: EVERYTHING }).normalizedName, 'namespaceSelector=');
  t.equal(makeGroupSelector({ podSelector: podSel({ app: 'web' }) }).normalizedName, 'podSelector=app=web');
  t.equal(makeGroupSelector({}).normalizedName, '');
  t.end();
});

t.test('sinks see entities enter, change and leave their selection', (t) => {
  const idx = new GroupingIndex<E>();
  const web = new Recorder();
  const all = new Recorder();
  idx.setEntity('ns1/a', 'ns1', { app: 'web' }, { id: 'a1' });
  idx.addSink(makeGroupSelector({ namespace: 'ns1', podSelector: podSel({ app: 'web' }) }), web);
  idx.addSink(makeGroupSelector({ namespace: 'ns1', podSelector: EVERYTHING }), all);
  t.same(web.log, ['+a1'], 'existing members are replayed to a new sink');
  idx.setEntity('ns1/b', 'ns1', { app: 'db' }, { id: 'b1' });
  idx.setEntity('ns2/c', 'ns2', { app: 'web' }, { id: 'c1' });
  idx.setEntity('ns1/a', 'ns1', { app: 'web' }, { id: 'a2' });
  idx.setEntity('ns1/b', 'ns1', { app: 'web' }, { id: 'b2' });
  idx.deleteEntity('ns1/a');
  t.same(web.log, ['+a1', '~a1>a2', '+b2', '-a2']);
  t.same(all.log, ['+a1', '+b1', '~a1>a2', '~b1>b2', '-a2'], 'a label change within the selection is an update');
  t.equal(idx.deleteEntity('nope'), undefined);
  t.same([...idx.selected(makeGroupSelector({ namespace: 'ns1', podSelector: EVERYTHING }))], [{ id: 'b2' }]);
  t.same(idx.stats(), { namespaces: 2, entities: 2, labelSets: 2, selectors: 2, clusterSelectors: 0 });
  t.end();
});

t.test('namespace selectors follow namespace labels, and unknown namespaces have none', (t) => {
  const idx = new GroupingIndex<E>();
  const teamA = new Recorder();
  const noTeam = new Recorder();
  idx.setEntity('ns1/a', 'ns1', { app: 'web' }, { id: 'a' });
  idx.setEntity('ns2/b', 'ns2', { app: 'web' }, { id: 'b' });
  idx.addSink(
    makeGroupSelector({ namespaceSelector: podSel({ team: 'a' }), podSelector: podSel({ app: 'web' }) }),
    teamA,
  );
  idx.addSink(
    makeGroupSelector({
      namespaceSelector: parseLabelSelector({ matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] }, 'x'),
    }),
    noTeam,
  );
  t.same([...teamA.members], []);
  t.same([...noTeam.members].sort(), ['a', 'b'], 'a namespace not seen yet has no labels');
  idx.setNamespace('ns1', { team: 'a' });
  idx.setNamespace('ns2', {});
  t.same([...teamA.members], ['a']);
  t.same([...noTeam.members], ['b']);
  idx.setNamespace('ns1', { team: 'a' });
  t.same(teamA.log, ['+a'], 'setting the same labels again changes nothing');
  idx.setNamespace('ns2', { team: 'a' });
  idx.setNamespace('ns1', { team: 'b' });
  t.same(teamA.log, ['+a', '+b', '-a']);
  idx.deleteNamespace('ns2');
  t.same([...teamA.members], []);
  t.notOk(idx.hasNamespace('ns2'));
  t.ok(idx.hasNamespace('ns1'));
  t.end();
});

t.test('removing the last sink drops the selector; entities and label sets go with their last entity', (t) => {
  const idx = new GroupingIndex<E>();
  const s1 = new Recorder();
  const s2 = new Recorder();
  const sel = makeGroupSelector({ namespace: 'ns1', podSelector: podSel({ app: 'web' }) });
  idx.addSink(sel, s1);
  idx.addSink(sel, s2);
  t.equal(idx.sinksOf(sel.normalizedName).length, 2);
  idx.setEntity('ns1/a', 'ns1', { app: 'web' }, { id: 'a' });
  idx.removeSink(sel, s1);
  idx.removeSink(sel, s1);
  idx.setEntity('ns1/b', 'ns1', { app: 'web' }, { id: 'b' });
  t.same(s1.log, ['+a']);
  t.same(s2.log, ['+a', '+b']);
  idx.removeSink(sel, s2);
  t.equal(idx.stats().selectors, 0);
  idx.deleteEntity('ns1/a');
  idx.deleteEntity('ns1/b');
  t.same(idx.stats(), { namespaces: 0, entities: 0, labelSets: 0, selectors: 0, clusterSelectors: 0 });
  t.equal(idx.namespaceEntityCount('ns1'), 0);
  t.end();
});

t.test('events touch only the selectors they concern (no scan of all Pods or all selectors)', (t) => {
  for (const bigNamespaces of [10, 1000]) {
    const idx = new GroupingIndex<E>();
    // Many unrelated namespaces, each with selectors and Pods.
    for (let i = 0; i < bigNamespaces; i++) {
      idx.setNamespace(`other${i}`, { team: 'x' });
      for (let j = 0; j < 3; j++) {
        idx.addSink(
          makeGroupSelector({ namespace: `other${i}`, podSelector: podSel({ app: `a${j}` }) }),
          new Recorder(),
        );
        idx.setEntity(`other${i}/p${j}`, `other${i}`, { app: `a${j}` }, { id: `o${i}-${j}` });
      }
    }
    // One namespace with many label sets and selectors: indexed by label pair.
    for (let j = 0; j < 200; j++) {
      idx.addSink(makeGroupSelector({ namespace: 'big', podSelector: podSel({ app: `b${j}` }) }), new Recorder());
      idx.setEntity(`big/p${j}`, 'big', { app: `b${j}` }, { id: `b${j}` });
    }
    const podAdd = countMatches(() => idx.setEntity('big/new', 'big', { app: 'b7', extra: 'y' }, { id: 'new' }));
    const relabel = countMatches(() => idx.setEntity('big/new', 'big', { app: 'b8', extra: 'z' }, { id: 'new2' }));
    const sameLabels = countMatches(() => idx.setEntity('big/p3', 'big', { app: 'b3' }, { id: 'b3-v2' }));
    const newSelector = countMatches(() =>
      idx.addSink(makeGroupSelector({ namespace: 'big', podSelector: podSel({ app: 'b9' }) }), new Recorder()),
    );
    const nsLabels = countMatches(() => idx.setNamespace('other0', { team: 'y' }));
    t.ok(
      podAdd <= 2,
      `a Pod with new labels is matched against its candidate selectors only (${podAdd}, ${bigNamespaces} namespaces)`,
    );
    t.ok(relabel <= 2, `a label change likewise (${relabel})`);
    t.equal(sameLabels, 0, 'a Pod joining a known label set matches nothing');
    t.ok(newSelector <= 2, `a new selector is matched against the label sets carrying its label pair (${newSelector})`);
    t.equal(nsLabels, 0, 'a namespace label change matches only cluster-scoped selectors (none here)');
  }
  t.end();
});

t.test('a cluster-scoped selector is matched against each namespace once, then against its label sets', (t) => {
  const idx = new GroupingIndex<E>();
  for (let i = 0; i < 50; i++) {
    idx.setNamespace(`ns${i}`, { team: i % 2 === 0 ? 'a' : 'b' });
    idx.setEntity(`ns${i}/p`, `ns${i}`, { app: 'web' }, { id: `p${i}` });
  }
  const r = new Recorder();
  const n = countMatches(() =>
    idx.addSink(
      makeGroupSelector({ namespaceSelector: podSel({ team: 'a' }), podSelector: podSel({ app: 'web' }) }),
      r,
    ),
  );
  t.equal(r.members.size, 25);
  t.equal(n, 50 + 25, 'one namespace match per namespace, one Pod-label match per label set of a selected namespace');
  const relabel = countMatches(() => idx.setNamespace('ns1', { team: 'a' }));
  t.equal(relabel, 2, 'one namespace match and one label-set match');
  t.ok(r.members.has('p1'));
  t.end();
});

t.test('small sets hold nothing, one, a few or many elements', (t) => {
  const xs = Array.from({ length: 12 }, (_, i) => ({ i }));
  let s: SmallSet<{ i: number }>;
  for (const x of xs) s = smallAdd(s, x);
  t.equal(smallSize(s), 12);
  t.ok(s instanceof Set);
  s = smallAdd(s, xs[0]!);
  t.equal(smallSize(s), 12, 'adding twice changes nothing');
  for (const x of xs.slice(0, 9)) s = smallDelete(s, x);
  t.ok(Array.isArray(s), 'shrinks back to an array');
  t.same(
    [...smallValues(s)].map((x) => x.i),
    [9, 10, 11],
  );
  t.ok(smallHas(s, xs[10]!));
  t.notOk(smallHas(s, xs[0]!));
  s = smallDelete(s, xs[9]!);
  s = smallDelete(s, xs[10]!);
  t.same(s, xs[11], 'one element is kept as itself');
  t.same(smallDelete(s, xs[0]!), xs[11], 'deleting an absent element changes nothing');
  s = smallDelete(s, xs[11]!);
  t.equal(s, undefined);
  t.equal(smallSize(s), 0);
  t.same([...smallValues(s)], []);
  t.end();
});
