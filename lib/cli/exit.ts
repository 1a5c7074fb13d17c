/**
 * Leaving the process without losing output. When stdout is a pipe, Node may hold written data in user space;
 * `process.exit` right after a large write cut `rome-ts inspect --json | other` at 64 KiB. Exit only once both
 * streams have handed everything to the OS.
 */

/** Resolves once everything written so far to `stream` has been flushed (immediately for a destroyed stream). */
export function drained(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.destroyed || !stream.writable) return Promise.resolve();
  // A zero-length write's callback runs after every earlier write of the same stream has completed.
  return new Promise((resolve) => stream.write('', () => resolve()));
}

/** Flushes stdout and stderr, then exits with `code`. */
export async function exitAfterFlush(code: number): Promise<never> {
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(code);
}

/**
 * For programs (the CLI, scripts, the demo): an uncaught error or unhandled rejection prints one short line,
 * "<prog>: error: <message>" (the stack only when ROME_TS_DEBUG is set), and exits 1; a closed stdout pipe
 * (`... | head`) ends the program quietly instead of raising EPIPE.
 */
export function installErrorReporter(prog: string): void {
  const report = (e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    process.stderr.write(`${prog}: error: ${err.message}\n`);
    if (process.env.ROME_TS_DEBUG) process.stderr.write(`${err.stack ?? ''}\n`);
    else process.stderr.write(`${prog}: (set ROME_TS_DEBUG=1 for the stack trace)\n`);
    void exitAfterFlush(1);
  };
  process.on('uncaughtException', report);
  process.on('unhandledRejection', report);
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    report(e);
  });
}
