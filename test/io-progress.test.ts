import test from 'ava';
import { formatBytes, progressBar } from '../lib/progress.js';

function fakeStream(isTTY: boolean): { write(s: string): void; isTTY: boolean; columns: number; out: string[] } {
  const out: string[] = [];
  return { isTTY, columns: 200, out, write: (s: string) => void out.push(s) };
}

test('formatBytes', (t) => {
  t.is(formatBytes(0), '0 B');
  t.is(formatBytes(999), '999 B');
  t.is(formatBytes(1536), '1.5 kB');
  t.is(formatBytes(548_105_171), '548.1 MB');
  t.is(formatBytes(6.4e9), '6.4 GB');
});

test('terminal mode redraws one line, throttled', (t) => {
  let now = 0;
  const stream = fakeStream(true);
  const bar = progressBar('download x', { stream, unit: 'bytes', now: () => now });
  bar.update(0, 2000);
  now = 50;
  bar.update(500, 2000); // within 100 ms of the last draw: skipped
  now = 1000;
  bar.update(1000, 2000, 'resumed');
  bar.done();
  bar.update(2000, 2000); // after done: ignored
  t.is(stream.out.length, 3);
  t.true(stream.out.every((s) => s.startsWith('\r')));
  t.false(stream.out.slice(0, 2).some((s) => s.includes('\n')));
  t.regex(stream.out[1]!, /^\rdownload x \[#{10}\.{10}\]  50\.0% 1\.0 kB\/2\.0 kB 1\.0 kB\/s ETA 1s resumed\x1b\[K$/);
  t.regex(stream.out[2]!, /done: 1\.0 kB in 1s\x1b\[K\n$/);
});

test('log mode prints sparse plain lines', (t) => {
  let now = 0;
  const stream = fakeStream(false);
  const bar = progressBar('sweep', { stream, now: () => now, intervalMs: 10_000 });
  for (let i = 0; i <= 100; i++) {
    now = i * 1000;
    bar.update(i, 100);
  }
  bar.done('finished');
  t.deepEqual(stream.out.length, 11 + 1);
  t.true(stream.out.every((s) => s.endsWith('\n') && !s.includes('\r')));
  t.regex(stream.out[1]!, /^sweep  10\.0% 10\/100 1\.00\/s ETA 1m30s\n$/);
  t.is(stream.out[11], 'sweep finished\n');
});
