import { afterEach, expect, test, vi } from 'vitest';
import { youngGcEvery } from '../../../core/util/young-gc';

const g = globalThis as { gc?: unknown };
const had = Object.prototype.hasOwnProperty.call(g, 'gc');
const original = g.gc;
afterEach(() => {
  if (had) g.gc = original;
  else delete g.gc;
});

test('asks for one minor collection per `every` bytes', () => {
  const gc = vi.fn();
  g.gc = gc;
  const collect = youngGcEvery(8);
  for (let i = 0; i < 10; i++) collect(3); // 30 bytes: at 9, 18 and 27
  expect(gc.mock.calls).toEqual([[{ type: 'minor' }], [{ type: 'minor' }], [{ type: 'minor' }]]);
  collect(100);
  expect(gc).toHaveBeenCalledTimes(4);
});

test('does nothing where node does not expose gc', () => {
  delete g.gc;
  expect(() => {
    youngGcEvery(1)(10);
  }).not.toThrow();
});
