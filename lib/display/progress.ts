/**
 * A progress display that updates one output in place (display_id + update_display_data) inside a kernel, and
 * prints occasional lines to stderr in plain Node. Long library work reports through an `onProgress` callback.
 */
import { randomBytes } from 'node:crypto';
import { currentDisplayWriter, type DisplayWriter } from './channel.js';

/** What long-running library work reports: units done so far, the total when known, and an optional note. */
export interface ProgressEvent {
  done: number;
  total?: number;
  message?: string;
}

/** Callback shape for `onProgress` options: an event object, or just (done, total). */
export type ProgressCallback = (event: ProgressEvent | number, total?: number) => void;

/** Options of `display.progress`. */
export interface ProgressOptions {
  label?: string;
  total?: number;
  /** Minimum milliseconds between in-place updates (default 150); the final update is always sent. */
  minIntervalMs?: number;
}

/** A live progress display; structurally a `ProgressBar` (lib/progress.ts), so it can stand in for one. */
export interface Progress {
  /** Set the absolute progress; `total` (null: unknown) replaces the total when given; `extra` is a note. */
  update(done: number, total?: number | null, extra?: string): void;
  /** Add `n` (default 1) to the progress. */
  increment(n?: number, message?: string): void;
  /** Mark finished (fills the bar when the total is known) and send the last update. */
  done(message?: string): void;
  /** Pass this as a library call's `onProgress` option. */
  readonly onProgress: ProgressCallback;
}

const BAR_WIDTH = 30;
/** Label column width in characters (text and HTML), so stacked bars line up. */
const LABEL_CH = 14;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** One-line text rendering of a progress state. */
export function formatProgress(label: string, done: number, total: number | undefined, message: string | undefined, elapsedMs: number): string {
  const secs = (elapsedMs / 1000).toFixed(1);
  const note = message ? `  ${message}` : '';
  label = label.padEnd(LABEL_CH - 1);
  if (total && total > 0) {
    const frac = Math.min(1, Math.max(0, done / total));
    const filled = Math.round(frac * BAR_WIDTH);
    return `${label} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${(frac * 100).toFixed(0)}% ${done}/${total} ${secs}s${note}`;
  }
  return `${label} ${done} ${secs}s${note}`;
}

/** Start a progress display (see `Progress`). */
export function createProgress(opts: ProgressOptions = {}): Progress {
  const label = opts.label ?? 'progress';
  const minInterval = opts.minIntervalMs ?? 150;
  const writer: DisplayWriter | null = currentDisplayWriter();
  const displayId = `rome-ts-progress-${randomBytes(6).toString('hex')}`;
  const start = Date.now();
  let total = opts.total;
  let current = 0;
  let note: string | undefined;
  let sentOnce = false;
  let lastSent = 0;
  let lastPrintedDecile = -1;
  let finished = false;
  let lastSentState = '';

  const send = (force: boolean): void => {
    const now = Date.now();
    if (!force && sentOnce && now - lastSent < minInterval) return;
    const text = formatProgress(label, current, total, note, now - start);
    if (writer) {
      const pct = total && total > 0 ? Math.min(100, (100 * current) / total) : null;
      // A fixed-width label column, so several bars in a cell line up whatever their labels.
      const html =
        `<div style="white-space:nowrap"><code style="display:inline-block;min-width:${LABEL_CH}ch">${escapeHtml(label)}</code> ` +
        (pct === null ? '' : `<progress value="${pct.toFixed(1)}" max="100" style="width:20em"></progress> `) +
        `<code>${escapeHtml(text.slice(label.padEnd(LABEL_CH - 1).length + 1))}</code></div>`;
      writer({ data: { 'text/plain': text, 'text/html': html }, metadata: {}, transient: { display_id: displayId } }, sentOnce);
    } else {
      // Plain Node: a line per 10% (or per forced update) on stderr, so logs stay short.
      const decile = total && total > 0 ? Math.floor((10 * current) / total) : -1;
      if (force || decile > lastPrintedDecile) {
        process.stderr.write(text + '\n');
        lastPrintedDecile = decile;
      }
    }
    sentOnce = true;
    lastSent = now;
    lastSentState = `${current}/${total}/${note}`;
  };

  const update = (done: number, newTotal?: number | null, message?: string): void => {
    if (finished) return;
    if (newTotal !== undefined) total = newTotal ?? undefined;
    current = done;
    if (message !== undefined) note = message;
    send(total !== undefined && done >= total);
  };
  const progress: Progress = {
    update,
    increment(n = 1, message?: string) {
      update(current + n, undefined, message);
    },
    done(message?: string) {
      if (finished) return;
      if (total !== undefined) current = total;
      if (message !== undefined) note = message;
      // The final state may already be on screen (update() sends the last step unthrottled).
      if (lastSentState !== `${current}/${total}/${note}`) send(true);
      finished = true;
    },
    onProgress: (event: ProgressEvent | number, t?: number) => {
      if (typeof event === 'number') update(event, t);
      else update(event.done, event.total, event.message);
    },
  };
  send(true);
  return progress;
}
