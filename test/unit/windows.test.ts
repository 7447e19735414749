/** Cutting long documents into overlapping windows: every token's result comes from exactly one window. */
import { strict as assert } from 'node:assert';
import { planWindows, windowOf } from '../../src/engine/host/windows';

describe('analysis windows', () => {
  const cases: [count: number, size: number, overlap: number][] = [
    [0, 8, 2],
    [1, 8, 2],
    [8, 8, 2],
    [9, 8, 2],
    [100, 8, 2],
    [100, 8, 0],
    [100, 8, 99],
    [1000, 255, 32],
  ];

  for (const [count, size, overlap] of cases) {
    it(`${count} tokens, windows of ${size}, overlap ${overlap}`, () => {
      const windows = planWindows(count, size, overlap);
      const keptBy = new Array<number>(count).fill(-1);
      windows.forEach((w, i) => {
        assert.ok(w.end - w.start <= size, 'a window fits the context');
        assert.ok(w.start <= w.keepFrom && w.keepFrom < w.end, 'each window keeps at least one token');
        if (i > 0) {
          const context = Math.min(overlap, size - 1);
          assert.equal(
            w.keepFrom - w.start,
            Math.min(context, w.keepFrom),
            'kept tokens have the overlap as context',
          );
        }
        for (let t = w.keepFrom; t < w.end; t++) {
          assert.equal(keptBy[t], -1, `token ${t} is kept twice`);
          keptBy[t] = i;
        }
      });
      assert.ok(
        keptBy.every((w) => w >= 0),
        'every token is kept',
      );
      keptBy.forEach((w, t) => assert.equal(windowOf(windows, t), w));
    });
  }

  it('refuses windows that hold no token', () => {
    assert.throws(() => planWindows(10, 0, 0), /at least 1/);
  });
});
