import t from 'tap';
import { percentile, round, timed } from '../bench/lib.ts';

t.test('percentile uses nearest rank', (t) => {
  const v = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10];
  t.equal(percentile(v, 50), 5);
  t.equal(percentile(v, 99), 10);
  t.equal(percentile(v, 0), 1);
  t.ok(Number.isNaN(percentile([], 50)));
  t.equal(round(1.23456, 2), 1.23);
  t.end();
});

t.test('timed measures elapsed time', async (t) => {
  const { result, ms } = await timed(() => new Promise<string>((r) => setTimeout(() => r('x'), 20)));
  t.equal(result, 'x');
  t.ok(ms >= 15);
});
