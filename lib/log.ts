/**
 * Library log lines (downloads, skipped cases, training notes). In plain Node they go to stderr, as before; inside
 * the rome-ts (tslab) kernel they go to the cell's activity output (lib/display/activity.ts), one updating block
 * instead of a stderr stream per line, which notebooks show as pink error blocks.
 */
import { activityLog } from './display/activity.js';
import { currentDisplayWriter } from './display/channel.js';

/** Write one log line (no trailing newline needed) to stderr, or to the notebook's activity output in a kernel. */
export function logLine(line: string): void {
  const writer = currentDisplayWriter();
  if (writer) activityLog(writer, line);
  else process.stderr.write(line.endsWith('\n') ? line : `${line}\n`);
}
