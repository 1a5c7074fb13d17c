/** One measured figure of a benchmark. */
export interface BenchRow {
  bench: string;
  name: string;
  value: number;
  unit: string;
  note?: string;
}

/** Prints rows as an aligned table. */
export function printTable(rows: readonly BenchRow[]): void {
  const cells = rows.map((r) => [r.bench, r.name, fmt(r.value), r.unit, r.note ?? '']);
  const head = ['bench', 'measure', 'value', 'unit', 'note'];
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((x, i) => (i === 2 ? x.padStart(w[i]) : x.padEnd(w[i]))).join('  ');
  process.stdout.write(line(head) + '\n' + w.map((n) => '-'.repeat(n)).join('  ') + '\n');
  for (const c of cells) process.stdout.write(line(c) + '\n');
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

/** Milliseconds of `fn` after `warmup` calls: the median of `reps` timed calls. */
export async function timeIt(fn: () => Promise<void> | void, reps = 3, warmup = 1): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)];
}
