/**
 * Jupyter messaging fixes on top of tslab 1.0.22 (internal classes of `tslab/dist/jupyter.js`; the version is
 * pinned and test/kernelProtocol.test.ts runs Jupyter's own conformance suite against the kernel):
 * - every execute request publishes `execute_input` with its execution count, so front ends and nbclient record
 *   `In [n]` (tslab sends none, and executed notebooks kept `execution_count: null`);
 * - the value of a cell's last expression becomes an `execute_result` (`Out[n]`) instead of a stdout line;
 * - a failing cell publishes one `error` message (ename / evalue / traceback) instead of stderr text, and its
 *   execute_reply carries the same fields;
 * - `silent` and `store_history: false` requests do not advance the count;
 * - kernel_info_reply has `status` and names rome-ts; comm_info_reply is sent under its own type.
 * tslab's executor prints last values and errors through a `{ log, error }` console captured when the kernel
 * starts; `executorConsole()` provides the pair to install around `startKernel`, so user `console.log` calls in
 * cells are untouched.
 */
import { inspect, format } from 'node:util';

/** Sends one IOPub message (type + content) as a child of the execute request being handled. */
export type Publish = (msgType: string, content: Record<string, unknown>) => void;

/** The execute_request content fields the kernel reads. */
interface ExecuteRequest {
  code: string;
  silent?: boolean;
  store_history?: boolean;
}

/** Fields a failed execute_reply and the `error` IOPub message carry. */
export interface ErrorFields {
  ename: string;
  evalue: string;
  traceback: string[];
}

interface ZmqMessageLike {
  content: unknown;
  createReply(): { header: { msg_type: string }; content: unknown; signAndSend(key: string, sock: unknown): void };
}

interface ServerThis {
  connInfo: { key: string };
  iopub: unknown;
  handler: { handleExecute(req: unknown, writeStream: unknown, writeDisplayData: unknown): Promise<Record<string, unknown>> };
}

interface HandlerThis {
  execCount: number;
}

/** The part of `tslab/dist/jupyter.js` this module replaces or wraps. */
export interface TslabProtocolInternals {
  JupyterHandlerImpl: { prototype: { handleKernel?: unknown; handleExecute?: unknown; handleExecuteImpl?: unknown } };
  ZmqServer: { prototype: { handleExecute?: unknown; handleCommInfoRequest?: unknown } };
}

/** What kernel_info_reply says about the kernel. */
export interface KernelIdentity {
  implementation: string;
  implementationVersion: string;
  /** TypeScript version tslab type-checks cells with. */
  languageVersion: string;
  banner: string;
}

/** One thing tslab's executor reported through its error channel during a cell. */
type ErrorReport = { kind: 'thrown'; value: unknown } | { kind: 'diagnostic'; text: string };

interface ExecContext {
  req: ExecuteRequest;
  count: number;
  publish: Publish | null;
  errors: ErrorReport[];
  fields: ErrorFields | null;
}

const publishers = new WeakMap<object, Publish>();
const contexts = new WeakMap<object, ExecContext>();
let active: ExecContext | null = null;

/** Text shown for a last-expression value (what Node's REPL shows: strings quoted). */
export function formatResult(value: unknown): string {
  // Depth 2, as console.log printed it before: a model or tensor object must not print its whole internals.
  return inspect(value, { depth: 2, breakLength: 100 });
}

/** ename / evalue / traceback from what tslab's executor reported for a failed cell. */
export function errorFields(reports: readonly ErrorReport[]): ErrorFields | null {
  const diagnostics = reports.filter((r): r is { kind: 'diagnostic'; text: string } => r.kind === 'diagnostic');
  if (diagnostics.length) {
    const lines = diagnostics.map((d) => d.text);
    return { ename: 'TypeScriptError', evalue: lines[0]!.replace(/^(?:\S+ )?\d+:\d+ - /, ''), traceback: lines };
  }
  const thrown = reports.find((r): r is { kind: 'thrown'; value: unknown } => r.kind === 'thrown');
  if (!thrown) return null;
  const v = thrown.value;
  if (v instanceof Error || (typeof v === 'object' && v !== null && 'message' in v && 'stack' in v)) {
    const e = v as { name?: unknown; message?: unknown };
    const ename = typeof e.name === 'string' && e.name ? e.name : 'Error';
    return { ename, evalue: String(e.message), traceback: inspect(v).split('\n') };
  }
  return { ename: 'Error', evalue: `thrown value: ${formatResult(v)}`, traceback: [`Uncaught ${formatResult(v)}`] };
}

/**
 * The `{ log, error }` pair to expose as `console.log` / `console.error` while tslab's `startKernel` runs (it
 * captures them for its executor). Outside a cell, or for a silent one, they fall back to `fallback`.
 */
export function executorConsole(fallback: { log: (...a: unknown[]) => void; error: (...a: unknown[]) => void }): {
  log: (...a: unknown[]) => void;
  error: (...a: unknown[]) => void;
} {
  return {
    // tslab calls log(value) exactly once per cell, for the last expression's value.
    log: (...args: unknown[]) => {
      const ctx = active;
      if (!ctx || !ctx.publish || args.length !== 1) return fallback.log(...args);
      if (ctx.req.silent) return;
      ctx.publish('execute_result', { execution_count: ctx.count, data: { 'text/plain': formatResult(args[0]) }, metadata: {} });
    },
    // error(e) for a thrown value or an interrupt; error(fmt, file, line, col, message) per type diagnostic.
    error: (...args: unknown[]) => {
      const ctx = active;
      if (!ctx) return fallback.error(...args);
      if (args.length === 1) ctx.errors.push({ kind: 'thrown', value: args[0] });
      else ctx.errors.push({ kind: 'diagnostic', text: format(...args) });
    },
  };
}

/** Install the fixes; returns false (changing nothing) when tslab's internals are not what this code expects. */
export function installProtocol(jupyter: TslabProtocolInternals, identity: KernelIdentity): boolean {
  const handler = jupyter.JupyterHandlerImpl.prototype;
  const server = jupyter.ZmqServer.prototype;
  if (
    typeof handler.handleKernel !== 'function' ||
    typeof handler.handleExecute !== 'function' ||
    typeof handler.handleExecuteImpl !== 'function' ||
    typeof server.handleExecute !== 'function' ||
    typeof server.handleCommInfoRequest !== 'function'
  ) {
    return false;
  }

  const kernelInfo = handler.handleKernel as (this: unknown) => { language_info: Record<string, unknown> };
  handler.handleKernel = function (this: unknown) {
    const info = kernelInfo.call(this);
    return {
      ...info,
      status: 'ok',
      implementation: identity.implementation,
      implementation_version: identity.implementationVersion,
      language_info: { ...info.language_info, version: identity.languageVersion },
      banner: identity.banner,
    };
  };

  server.handleCommInfoRequest = function (this: ServerThis, _sock: unknown, msg: ZmqMessageLike) {
    const reply = msg.createReply();
    reply.header.msg_type = 'comm_info_reply';
    reply.content = { status: 'ok', comms: {} };
    reply.signAndSend(this.connInfo.key, _sock);
  };

  // The same messages as tslab's own handler, plus a publisher for any IOPub type, keyed by the request.
  server.handleExecute = async function (this: ServerThis, sock: unknown, msg: ZmqMessageLike) {
    const publish: Publish = (msgType, content) => {
      const m = msg.createReply();
      m.header.msg_type = msgType;
      m.content = content;
      m.signAndSend(this.connInfo.key, this.iopub);
    };
    const writeStream = (name: string, text: string): void => publish('stream', { name, text });
    const writeDisplayData = (data: Record<string, unknown>, update: boolean): void => publish(update ? 'update_display_data' : 'display_data', data);
    if (typeof msg.content === 'object' && msg.content !== null) publishers.set(msg.content, publish);
    const reply = msg.createReply();
    reply.header.msg_type = 'execute_reply';
    reply.content = await this.handler.handleExecute(msg.content, writeStream, writeDisplayData);
    reply.signAndSend(this.connInfo.key, sock);
  };

  type Impl = (this: HandlerThis, req: ExecuteRequest, ws: unknown, wd: unknown) => Promise<{ count: number }>;
  const impl = handler.handleExecuteImpl as Impl;
  handler.handleExecuteImpl = async function (this: HandlerThis, req: ExecuteRequest, ws: unknown, wd: unknown) {
    const storeHistory = !req.silent && req.store_history !== false;
    const ctx: ExecContext = { req, count: this.execCount + (storeHistory ? 1 : 0), publish: publishers.get(req) ?? null, errors: [], fields: null };
    contexts.set(req, ctx);
    if (!req.silent) ctx.publish?.('execute_input', { code: req.code, execution_count: ctx.count });
    active = ctx;
    try {
      const done = await impl.call(this, req, ws, wd);
      if (done && typeof done === 'object') done.count = ctx.count;
      return done;
    } catch (failure) {
      // tslab throws its ExecutionCount object to mark a failed cell (and cancel queued ones).
      if (failure && typeof failure === 'object' && 'count' in failure) (failure as { count: number }).count = ctx.count;
      ctx.fields = errorFields(ctx.errors);
      if (ctx.fields && !req.silent) ctx.publish?.('error', { ...ctx.fields });
      throw failure;
    } finally {
      active = null;
      if (!storeHistory) this.execCount = ctx.count;
    }
  };

  type Execute = (this: unknown, req: ExecuteRequest, ws: unknown, wd: unknown) => Promise<Record<string, unknown>>;
  const execute = handler.handleExecute as Execute;
  handler.handleExecute = async function (this: unknown, req: ExecuteRequest, ws: unknown, wd: unknown) {
    const reply = await execute.call(this, req, ws, wd);
    const ctx = contexts.get(req);
    if (reply.status === 'error') {
      return { ...reply, ...(ctx?.fields ?? { ename: 'Error', evalue: 'the cell failed', traceback: [] }) };
    }
    if (reply.execution_count === undefined) return { ...reply, execution_count: ctx?.count ?? 0 };
    return reply;
  };
  return true;
}
