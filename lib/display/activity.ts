/**
 * Library progress and log lines inside a notebook: one output per cell, updated in place (display_id +
 * update_display_data), that holds one line per library progress bar (layerStats, downloads, ...) and the latest
 * log lines. Without it each bar and log line was a stderr stream, shown by Jupyter front ends as pink error
 * blocks. Outside a kernel nothing here is used: lib/progress.ts and lib/log.ts keep writing to stderr.
 */
import { randomBytes } from 'node:crypto';
import type { DisplayWriter } from './channel.js';

/** Log lines kept visible per cell (older ones are counted, not shown). */
const MAX_LOG_LINES = 8;
/** Minimum milliseconds between updates of the output; a trailing update always follows. */
const MIN_INTERVAL_MS = 200;

/** A line of the activity output that its owner rewrites (one per progress bar). */
export interface ActivityLine {
  /** Replace the line's text. */
  set(text: string): void;
  /** Replace the text one last time and send the output now. */
  finish(text: string): void;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** The activity output of one cell (one display writer). */
class CellActivity {
  private readonly id = `rome-ts-activity-${randomBytes(6).toString('hex')}`;
  private readonly bars: { text: string }[] = [];
  private readonly logs: string[] = [];
  private hiddenLogs = 0;
  private shown = false;
  private lastSent = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly writer: DisplayWriter) {}

  text(): string {
    const lines = this.bars.map((b) => b.text);
    if (this.hiddenLogs > 0) lines.push(`(${this.hiddenLogs} earlier log line${this.hiddenLogs === 1 ? '' : 's'})`);
    return [...lines, ...this.logs].join('\n');
  }

  line(initial: string): ActivityLine {
    const entry = { text: initial };
    this.bars.push(entry);
    this.schedule(true);
    return {
      set: (text) => {
        entry.text = text;
        this.schedule(false);
      },
      finish: (text) => {
        entry.text = text;
        this.schedule(true);
      },
    };
  }

  log(text: string): void {
    this.logs.push(...text.replace(/\n+$/, '').split('\n'));
    while (this.logs.length > MAX_LOG_LINES) {
      this.logs.shift();
      this.hiddenLogs++;
    }
    this.schedule(true);
  }

  private schedule(now: boolean): void {
    const wait = MIN_INTERVAL_MS - (Date.now() - this.lastSent);
    if (now || wait <= 0) {
      this.send();
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => this.send(), wait);
    this.timer.unref();
  }

  private send(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const text = this.text();
    const html = `<pre style="margin:0;font-size:85%;line-height:1.35;color:var(--jp-ui-font-color2, #555)">${escapeHtml(text)}</pre>`;
    this.writer({ data: { 'text/plain': text, 'text/html': html }, metadata: {}, transient: { display_id: this.id } }, this.shown);
    this.shown = true;
    this.lastSent = Date.now();
  }
}

// One activity output per cell: tslab hands every execute request its own writer function.
const perWriter = new WeakMap<DisplayWriter, CellActivity>();

function activityOf(writer: DisplayWriter): CellActivity {
  let a = perWriter.get(writer);
  if (!a) {
    a = new CellActivity(writer);
    perWriter.set(writer, a);
  }
  return a;
}

/** Add a line (for one progress bar) to the activity output of the cell `writer` belongs to. */
export function activityLine(writer: DisplayWriter, initial: string): ActivityLine {
  return activityOf(writer).line(initial);
}

/** Add log text to the activity output of the cell `writer` belongs to. */
export function activityLog(writer: DisplayWriter, text: string): void {
  activityOf(writer).log(text);
}
