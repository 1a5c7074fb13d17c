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
  /** Printed to the cell's stderr while it waits more than half a second. */
  waitingMessage(): string;
  /** A note to print on stderr before running the cell, given how long it waited (ms), or null. */
  notice(waitedMs: number): string | null;
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
      const slow = setTimeout(() => writeStream('stderr', hooks.waitingMessage()), 500);
      await untilSettledOrInterrupted(hooks.whenSettled());
      clearTimeout(slow);
      waited = Date.now() - t0;
    }
    const note = hooks.notice(waited);
    if (note) writeStream('stderr', note);
    return run.call(this, req, writeStream, writeDisplayData);
  };
  proto.handleExecuteImpl = gated;
  return true;
}

/** The error fields Jupyter expects in a failed execute_reply (tslab sends only the status). */
export interface ErrorReplyFields {
  ename: string;
  evalue: string;
  traceback: string[];
}

/** Derive ename/evalue/traceback from what a failed cell printed on stderr. */
export function errorFieldsFromStderr(stderr: string): ErrorReplyFields {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  const thrown = stderr.match(/^(?:Uncaught )?([A-Za-z_$][\w$]*(?:Error|Exception)|Error)(?: \[[\w]+\])?: (.*)$/m);
  if (thrown) return { ename: thrown[1]!, evalue: thrown[2]!, traceback: lines };
  const diagnostic = lines.find((l) => /^(?:\S+ )?\d+:\d+ - /.test(l));
  if (diagnostic) return { ename: 'TypeScriptError', evalue: diagnostic.replace(/^(?:\S+ )?\d+:\d+ - /, ''), traceback: lines };
  return { ename: 'Error', evalue: lines.at(-1) ?? 'the cell failed (no message)', traceback: lines };
}

type HandleExecute = (this: unknown, req: unknown, writeStream: WriteStream, writeDisplayData: unknown) => Promise<{ status: string }>;

/**
 * Make failed execute_replies carry ename/evalue/traceback, taken from the cell's stderr (where tslab prints the
 * error), so nbclient/nbconvert report the actual error instead of an empty one. Returns false if tslab differs.
 */
export function installErrorReplies(jupyter: TslabJupyterInternals): boolean {
  const proto = jupyter.JupyterHandlerImpl.prototype;
  if (typeof proto.handleExecute !== 'function') return false;
  const original = proto.handleExecute as HandleExecute;
  const withErrors: HandleExecute = async function (this: unknown, req, writeStream, writeDisplayData) {
    let stderr = '';
    const capture: WriteStream = (name, text) => {
      if (name === 'stderr' && stderr.length < 100_000) stderr += text;
      writeStream(name, text);
    };
    const reply = await original.call(this, req, capture, writeDisplayData);
    return reply.status === 'error' ? { ...reply, ...errorFieldsFromStderr(stderr) } : reply;
  };
  proto.handleExecute = withErrors;
  return true;
}
