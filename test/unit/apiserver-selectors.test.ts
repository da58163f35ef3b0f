import t from 'tap';
import { parseFieldSelector, parseLabelSelector } from '../../src/lab/apiserver/selectors.ts';
import { expectApiError } from '../helpers/apiserver.ts';

const L = (s: string, labels: Record<string, string>): boolean => parseLabelSelector(s).matches(labels);

t.test('equality-based label selectors', (t) => {
  t.ok(L('', { a: 'b' }), 'empty selects everything');
  t.ok(L('app=web', { app: 'web' }));
  t.ok(L('app==web', { app: 'web' }));
  t.notOk(L('app=web', { app: 'db' }));
  t.notOk(L('app=web', {}));
  t.ok(L('app!=web', { app: 'db' }));
  t.ok(L('app!=web', {}), '!= matches objects without the key');
  t.notOk(L('app!=web', { app: 'web' }));
  t.ok(L('app=web,tier=front', { app: 'web', tier: 'front' }), 'comma is AND');
  t.notOk(L('app=web,tier=front', { app: 'web' }));
  t.ok(L(' app = web , tier=front ', { app: 'web', tier: 'front' }), 'whitespace around tokens');
  t.ok(L('app=', { app: '' }), 'empty value');
  t.end();
});

t.test('set-based label selectors', (t) => {
  t.ok(L('env in (prod,qa)', { env: 'qa' }));
  t.notOk(L('env in (prod,qa)', { env: 'dev' }));
  t.notOk(L('env in (prod)', {}));
  t.ok(L('env notin (prod,qa)', { env: 'dev' }));
  t.ok(L('env notin (prod)', {}), 'notin matches objects without the key');
  t.notOk(L('env notin (prod, qa)', { env: 'qa' }));
  t.ok(L('env', { env: 'x' }), 'exists');
  t.notOk(L('env', {}));
  t.ok(L('!env', {}), 'does not exist');
  t.notOk(L('!env', { env: 'x' }));
  t.ok(L('gen>5', { gen: '7' }));
  t.notOk(L('gen>5', { gen: '5' }));
  t.ok(L('gen<5', { gen: '-1' }));
  t.notOk(L('gen<5', { gen: 'x' }), 'non-integer values never match gt/lt');
  t.ok(L('a in (x,y),!b,c!=d,e', { a: 'y', e: '1' }));
  t.equal(parseLabelSelector('a in (y, x),!b').toString(), 'a in (x,y),!b');
  t.ok(L('example.com/role=master', { 'example.com/role': 'master' }), 'prefixed keys');
  t.end();
});

t.test('bad label selectors are 400 BadRequest', (t) => {
  for (const bad of ['a in b', 'a in (b', 'a=b=c', '!', 'a,', 'a >x', '=b', 'a=b c', 'a/b/c=d', 'a=bad value!']) {
    expectApiError(t, () => parseLabelSelector(bad), 400, 'BadRequest', `rejects ${bad}`);
  }
  t.end();
});

t.test('field selectors: operators, escapes and supported labels', (t) => {
  const supported = new Set(['metadata.name', 'spec.nodeName', 'status.phase']);
  const fields: Record<string, string> = { 'metadata.name': 'a,b=c\\d', 'spec.nodeName': 'n1', 'status.phase': '' };
  const get = (f: string): string => fields[f] ?? '';
  t.ok(parseFieldSelector('spec.nodeName=n1', supported).matches(get));
  t.ok(parseFieldSelector('spec.nodeName==n1', supported).matches(get));
  t.notOk(parseFieldSelector('spec.nodeName!=n1', supported).matches(get));
  t.ok(parseFieldSelector('spec.nodeName!=n2,status.phase=', supported).matches(get), 'AND, empty value');
  t.ok(parseFieldSelector('metadata.name=a\\,b\\=c\\\\d', supported).matches(get), 'escaped , = and \\');
  t.equal(parseFieldSelector('spec.nodeName=n1', supported).requiredValue('spec.nodeName'), 'n1');
  t.ok(parseFieldSelector('', supported).empty);
  const e = expectApiError(t, () => parseFieldSelector('spec.hostIP=1.2.3.4', supported), 400, 'BadRequest');
  t.equal(e?.message, 'field label not supported: spec.hostIP');
  expectApiError(t, () => parseFieldSelector('spec.nodeName', supported), 400);
  expectApiError(t, () => parseFieldSelector('metadata.name=a\\x', supported), 400);
  t.end();
});
