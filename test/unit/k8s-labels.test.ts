import t from 'tap';
import { EVERYTHING, labelSetString, parseLabelSelector, toLabels } from '../../src/common/k8s/labels.ts';
import { ValidationError } from '../../src/common/util/errors.ts';

t.test('normalized form follows labels.Selector.String()', (t) => {
  const s = parseLabelSelector(
    {
      matchLabels: { tier: 'web', app: 'shop' },
      matchExpressions: [
        { key: 'env', operator: 'In', values: ['prod', 'dev', 'prod'] },
        { key: 'zone', operator: 'NotIn', values: ['b', 'a'] },
        { key: 'canary', operator: 'DoesNotExist' },
        { key: 'owner', operator: 'Exists' },
      ],
    },
    'spec.podSelector',
  );
  t.equal(s.text, 'app=shop,!canary,env in (dev,prod),owner,tier=web,zone notin (a,b)');
  t.equal(parseLabelSelector({}, 'x').text, '');
  t.ok(parseLabelSelector({ matchLabels: {} }, 'x').isEmpty);
  t.equal(parseLabelSelector({}, 'x'), EVERYTHING);
  // Same meaning, different spelling: same text.
  const a = parseLabelSelector({ matchExpressions: [{ key: 'k', operator: 'In', values: ['b', 'a'] }] }, 'x');
  const b = parseLabelSelector({ matchExpressions: [{ key: 'k', operator: 'In', values: ['a', 'b', 'a'] }] }, 'x');
  t.equal(a.text, b.text);
  // matchLabels and an In with one value render differently, as in Kubernetes.
  t.equal(
    parseLabelSelector({ matchExpressions: [{ key: 'k', operator: 'In', values: ['v'] }] }, 'x').text,
    'k in (v)',
  );
  t.end();
});

t.test('matching semantics of each operator', (t) => {
  const m = (sel: Parameters<typeof parseLabelSelector>[0], labels: Record<string, string>): boolean =>
    parseLabelSelector(sel, 'x').matches(toLabels(labels));
  t.ok(m({}, {}), 'empty selector selects everything');
  t.ok(m({ matchLabels: { a: '1' } }, { a: '1', b: '2' }));
  t.notOk(m({ matchLabels: { a: '1' } }, { a: '2' }));
  t.notOk(m({ matchLabels: { a: '1' } }, {}));
  t.ok(m({ matchExpressions: [{ key: 'a', operator: 'In', values: ['1', '2'] }] }, { a: '2' }));
  t.notOk(m({ matchExpressions: [{ key: 'a', operator: 'In', values: ['1'] }] }, {}));
  t.ok(m({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['1'] }] }, {}), 'NotIn matches a missing key');
  t.notOk(m({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['1'] }] }, { a: '1' }));
  t.ok(m({ matchExpressions: [{ key: 'a', operator: 'Exists' }] }, { a: '' }));
  t.notOk(m({ matchExpressions: [{ key: 'a', operator: 'Exists' }] }, {}));
  t.ok(m({ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }, {}));
  t.notOk(m({ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }, { a: 'x' }));
  // Keys that exist on Object.prototype are ordinary keys.
  t.notOk(m({ matchExpressions: [{ key: 'constructor', operator: 'Exists' }] }, {}));
  t.ok(m({ matchLabels: { a: '1' }, matchExpressions: [{ key: 'b', operator: 'Exists' }] }, { a: '1', b: '' }));
  t.notOk(m({ matchLabels: { a: '1' }, matchExpressions: [{ key: 'b', operator: 'Exists' }] }, { a: '1' }));
  t.end();
});

t.test('invalid selectors are rejected naming the field', (t) => {
  const bad = (sel: unknown, field: string): void => {
    try {
      parseLabelSelector(sel as Parameters<typeof parseLabelSelector>[0], 'spec.podSelector');
      t.fail(`no error for ${field}`);
    } catch (err) {
      t.ok(err instanceof ValidationError, 'a ValidationError');
      t.equal((err as ValidationError).field, field);
    }
  };
  bad({ matchExpressions: [{ key: 'a', operator: 'In', values: [] }] }, 'spec.podSelector.matchExpressions[0].values');
  bad(
    { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] },
    'spec.podSelector.matchExpressions[0].values',
  );
  bad(
    { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] },
    'spec.podSelector.matchExpressions[0].operator',
  );
  bad({ matchExpressions: [{}, { key: '-bad', operator: 'Exists' }] }, 'spec.podSelector.matchExpressions[0].key');
  bad(
    {
      matchExpressions: [
        { key: 'ok', operator: 'Exists' },
        { key: '-bad', operator: 'Exists' },
      ],
    },
    'spec.podSelector.matchExpressions[1].key',
  );
  bad({ matchLabels: { 'a b': 'x' } }, 'spec.podSelector.matchLabels');
  bad({ matchLabels: { a: 'has space' } }, 'spec.podSelector.matchLabels.a');
  bad({ matchLabels: { a: 'x'.repeat(64) } }, 'spec.podSelector.matchLabels.a');
  bad({ matchLabels: { 'Bad_Prefix/a': 'x' } }, 'spec.podSelector.matchLabels');
  t.equal(
    parseLabelSelector({ matchLabels: { 'example.com/a-b.c_d': 'X.y-z_1' } }, 'x').text,
    'example.com/a-b.c_d=X.y-z_1',
  );
  t.end();
});

t.test('label set strings are canonical', (t) => {
  t.equal(labelSetString({ b: '2', a: '1' }), 'a=1,b=2');
  t.equal(labelSetString({ a: '1', b: '2' }), labelSetString({ b: '2', a: '1' }));
  t.equal(labelSetString({}), '');
  t.equal(labelSetString(undefined), '');
  t.end();
});
