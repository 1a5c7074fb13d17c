/**
 * The one place that talks to tslab's Jupyter plumbing. tslab's public `display` sends a single MIME type per
 * message, so rome-ts uses tslab's internal `lastWriteDisplayData` (in `tslab/dist/jupyter.js`), which sends a
 * whole MIME bundle as one display_data (or update_display_data) message for the cell being executed. tslab is
 * pinned to 1.0.22 in package.json and test/kernelDisplay.test.ts checks this internal is still there.
 */
import { createRequire } from 'node:module';

/** The content of a display_data / update_display_data message (Jupyter messaging protocol 5.x). */
export interface DisplayMessage {
  /** MIME type -> representation. JSON MIME types (e.g. Vega-Lite) carry objects, the rest strings. */
  data: { [mime: string]: unknown };
  metadata: { [key: string]: unknown };
  /** `display_id` lets later update_display_data messages replace this output in place. */
  transient: { display_id?: string };
}

/** Sends one message; `update` selects update_display_data instead of display_data. */
export type DisplayWriter = (msg: DisplayMessage, update: boolean) => void;

interface TslabJupyterModule {
  lastWriteDisplayData: DisplayWriter | null;
}

let override: DisplayWriter | null | undefined;
let tslabJupyter: TslabJupyterModule | null | undefined;

/**
 * Replace the writer (tests, or a custom front end). `null` forces the plain-Node fallback; `undefined` restores
 * auto-detection of the tslab kernel.
 */
export function setDisplayWriter(writer: DisplayWriter | null | undefined): void {
  override = writer;
}

function loadTslabJupyter(): TslabJupyterModule | null {
  if (tslabJupyter !== undefined) return tslabJupyter;
  // Only inside a tslab kernel (it defines __tslab__ on globalThis): requiring tslab elsewhere would load zeromq.
  if (!('__tslab__' in globalThis)) return null;
  try {
    // Resolved from rome-ts's own location: the same module instance the kernel launcher started.
    tslabJupyter = createRequire(import.meta.url)('tslab/dist/jupyter.js') as TslabJupyterModule;
  } catch {
    tslabJupyter = null;
  }
  return tslabJupyter;
}

/**
 * The writer for the cell executing now, or null outside a Jupyter kernel. Capture it when a display starts:
 * tslab swaps it at every execute request, and a late message must still go to the cell that asked for it.
 */
export function currentDisplayWriter(): DisplayWriter | null {
  if (override !== undefined) return override;
  const mod = loadTslabJupyter();
  const w = mod?.lastWriteDisplayData;
  return typeof w === 'function' ? w : null;
}
