import t from 'tap';
import { Latch } from '../../src/common/util/latch.ts';

t.test('a latch releases waiters once opened and honours aborts', async (t) => {
  const l = new Latch();
  t.notOk(l.opened);
  let released = 0;
  const w1 = l.wait().then(() => released++);
  const ac = new AbortController();
  const w2 = l.wait(ac.signal);
  ac.abort(new Error('stop'));
  await t.rejects(w2, { message: 'stop' });
  t.equal(released, 0);
  l.open();
  l.open();
  await w1;
  t.equal(released, 1);
  t.ok(l.opened);
  await l.wait();
  const aborted = new AbortController();
  aborted.abort();
  await l.wait(aborted.signal);
  t.pass('an open latch resolves even with an aborted signal');
  await t.rejects(new Latch().wait(aborted.signal));
});
