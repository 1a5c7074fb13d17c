/**
 * Holding execute requests until the model has loaded, by wrapping tslab's (internal, pinned 1.0.22)
 * `JupyterHandlerImpl.prototype.handleExecuteImpl`. kernel_info, completion and inspection are not held, so
 * Jupyter sees the kernel ready immediately. The wait ends early on SIGINT (the notebook's interrupt button):
 * the cell then runs with `model` still a "loading" stand-in.
 */

/** tslab's stream writer for the current execute request (name: 'stdout' | 'stderr'). */
export type WriteStream = (name: string, text: string) => void;

type ExecuteImpl = (this: unknown, req: unknown, writeStream: WriteStream, writeDisplayData: unknown) => Promise<unknown>;

/** The part of `tslab/dist/jupyter.js` this module touches. */
export interface TslabJupyterInternals {
  JupyterHandlerImpl: { prototype: { handleExecuteImpl?: unknown; handleExecute?: unknown } };
}

/** What the gate waits for, and what it prints once the wait is over. */
export interface GateHooks {
  /** True when nothing is left to wait for. */
  settled(): boolean;
  /** Settles (never rejects) when the load is over. */
  whenSettled(): Promise<void>;
  /** Printed to the cell's stdout while it waits more than half a second (information, not an error). */
  waitingMessage(): string;
  /** A note to print before running the cell, given how long it waited (ms), or null: stderr for warnings only. */
  notice(waitedMs: number): { text: string; stream: 'stdout' | 'stderr' } | null;
}

function untilSettledOrInterrupted(settled: Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const onInterrupt = (): void => {
      process.off('SIGINT', onInterrupt);
      resolve();
    };
    process.on('SIGINT', onInterrupt);
    void settled.then(() => {
      process.off('SIGINT', onInterrupt);
      resolve();
    });
  });
}

/** Install the gate; returns false (and changes nothing) if tslab's internals are not what this code expects. */
export function installExecuteGate(jupyter: TslabJupyterInternals, hooks: GateHooks): boolean {
  const proto = jupyter.JupyterHandlerImpl.prototype;
  const original = proto.handleExecuteImpl;
  if (typeof original !== 'function') return false;
  const run = original as ExecuteImpl;
  const gated: ExecuteImpl = async function (this: unknown, req, writeStream, writeDisplayData) {
    let waited = 0;
    if (!hooks.settled()) {
      const t0 = Date.now();
      const slow = setTimeout(() => writeStream('stdout', hooks.waitingMessage()), 500);
      await untilSettledOrInterrupted(hooks.whenSettled());
      clearTimeout(slow);
      waited = Date.now() - t0;
    }
    const note = hooks.notice(waited);
    if (note) writeStream(note.stream, note.text);
    return run.call(this, req, writeStream, writeDisplayData);
  };
  proto.handleExecuteImpl = gated;
  return true;
}
