// Progress reporting for long jobs (downloads, sweeps): one updating line on a terminal, sparse plain lines in logs,
// and inside the rome-ts kernel a line of the cell's activity output (lib/display/activity.ts) instead of stderr.
import { activityLine, type ActivityLine } from './display/activity.js';
import { currentDisplayWriter } from './display/channel.js';

/** Something to write progress to; process.stderr by default. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** A progress display for one job. */
export interface ProgressBar {
  /** Reports `done` units out of `total` (null when unknown), with an optional note appended to the line. */
  update(done: number, total: number | null, extra?: string): void;
  /** Ends the display with a final line (`msg` or a summary); later updates are ignored. */
  done(msg?: string): void;
}

/** Options for progressBar. */
export interface ProgressOptions {
  /** How to print amounts: 'bytes' as kB/MB/GB (and rates), 'count' as plain numbers. Default 'count'. */
  unit?: 'bytes' | 'count';
  /** Output stream (default: process.stderr, or the notebook's activity output inside the rome-ts kernel). */
  stream?: ProgressStream;
  /** Force terminal (single updating line) or log (plain lines) mode; default: stream.isTTY. */
  tty?: boolean;
  /** Minimum milliseconds between redraws; default 100 on a terminal, 10000 in logs. */
  intervalMs?: number;
  /** Clock in milliseconds (for tests). */
  now?: () => number;
}

/** Human-readable byte count, e.g. 1536 → "1.5 kB" (decimal units, as download sizes are usually quoted). */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Creates a progress display labelled `label`; prints to stderr unless told otherwise. */
export function progressBar(label: string, opts: ProgressOptions = {}): ProgressBar {
  // In a notebook (no stream chosen by the caller): a line of the cell's one updating activity output.
  const writer = opts.stream === undefined ? currentDisplayWriter() : null;
  const notebookLine: ActivityLine | null = writer ? activityLine(writer, label) : null;
  const stream: ProgressStream = notebookLine
    ? { write: (chunk: string) => notebookLine.set(chunk.replace(/^\r|\x1b\[K|\n$/g, '')), isTTY: true }
    : (opts.stream ?? process.stderr);
  const tty = notebookLine ? true : (opts.tty ?? stream.isTTY === true);
  const interval = opts.intervalMs ?? (tty ? 100 : 10_000);
  const now = opts.now ?? (() => Date.now());
  const bytes = opts.unit === 'bytes';
  const start = now();
  let lastDraw = -Infinity;
  let finished = false;
  let lastDone = 0;

  const amount = (n: number): string => (bytes ? formatBytes(n) : String(n));

  const render = (done: number, total: number | null, extra: string | undefined, barWidth: number): string => {
    const elapsed = (now() - start) / 1000;
    const parts: string[] = [label];
    if (total !== null && total > 0) {
      const frac = Math.min(1, Math.max(0, done / total));
      if (barWidth > 0) {
        const filled = Math.round(frac * barWidth);
        parts.push(`[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]`);
      }
      parts.push(`${(frac * 100).toFixed(1).padStart(5)}%`);
      parts.push(`${amount(done)}/${amount(total)}`);
    } else {
      parts.push(amount(done));
    }
    if (elapsed > 0.5 && done > 0) {
      const rate = done / elapsed;
      parts.push(bytes ? `${formatBytes(rate)}/s` : `${rate.toFixed(rate < 10 ? 2 : 0)}/s`);
      if (total !== null && done < total) parts.push(`ETA ${formatDuration((total - done) / rate)}`);
    }
    if (extra !== undefined && extra !== '') parts.push(extra);
    return parts.join(' ');
  };

  const fit = (line: string): string => {
    const cols = stream.columns ?? 0;
    return cols > 1 && line.length > cols - 1 ? line.slice(0, cols - 1) : line;
  };

  return {
    update(done: number, total: number | null, extra?: string): void {
      if (finished) return;
      lastDone = done;
      const t = now();
      if (t - lastDraw < interval) return;
      lastDraw = t;
      if (tty) stream.write(`\r${fit(render(done, total, extra, 20))}\x1b[K`);
      else stream.write(`${render(done, total, extra, 0)}\n`);
    },
    done(msg?: string): void {
      if (finished) return;
      finished = true;
      const elapsed = formatDuration((now() - start) / 1000);
      const line = msg !== undefined ? `${label} ${msg}` : `${label} done: ${amount(lastDone)} in ${elapsed}`;
      if (notebookLine) notebookLine.finish(line);
      else if (tty) stream.write(`\r${fit(line)}\x1b[K\n`);
      else stream.write(`${line}\n`);
    },
  };
}
