/**
 * The kernel's `model` global. The model loads in the background from kernel start (so the kernel answers
 * kernel_info at once), and the launcher holds each execute request until the load has settled (see
 * launcher.ts): by the first cell `model` is the real GPT2Model, so both `model.config.nLayer` (synchronous) and
 * `await model.generate(...)` work with no import and no `await modelReady`. If the load fails, `model` becomes a
 * stand-in whose every property access throws an error explaining what failed and how to fix it, so the failure
 * surfaces in the first cell that uses `model` and nothing else breaks.
 */
import { inspect } from 'node:util';
import type { ModelSource } from './modelSource.js';

/** What the kernel needs from a loaded model (GPT2Model satisfies it). */
export interface LoadedModel {
  readonly name?: string;
  readonly tokenizer?: unknown;
  readonly config?: unknown;
}

/** Stand-in object shown when printing an unavailable `model`. */
export class UnavailableModel {
  constructor(readonly reason: string) {}
}

/** A stand-in whose property accesses throw `Error(message)`; printing it shows the reason instead of throwing. */
export function unavailableModel<T extends object>(message: string): T {
  const target = new UnavailableModel(message);
  return new Proxy(target, {
    get(t, key) {
      if (key === 'then') return undefined; // `await model` must not throw
      if (key === inspect.custom) return () => `UnavailableModel: ${message}`;
      if (key === Symbol.toPrimitive) return () => `[model unavailable: ${message}]`;
      if (key === Symbol.toStringTag) return 'UnavailableModel';
      if (key === 'constructor') return UnavailableModel;
      if (key === 'reason') return t.reason;
      throw new Error(message);
    },
    set() {
      throw new Error(message);
    },
  }) as unknown as T;
}

/** State of the background load. */
export type LoadState =
  | { status: 'disabled'; message: string }
  | { status: 'loading' }
  | { status: 'ready'; ms: number }
  | { status: 'failed'; error: Error; message: string };

/** Loads the kernel's model once and publishes the `model`, `tokenizer` and `modelReady` globals. */
export class KernelModel<M extends LoadedModel> {
  state: LoadState = { status: 'loading' };
  /** Resolves with the model, rejects on failure (a handler is attached, so no unhandled rejection). */
  readonly ready: Promise<M>;
  private resolveReady!: (m: M) => void;
  private rejectReady!: (e: Error) => void;
  private noticeShown = false;

  constructor(
    readonly source: ModelSource,
    private readonly load: (source: string) => Promise<M>,
    private readonly globals: { [key: string]: unknown } = globalThis as unknown as { [key: string]: unknown },
  ) {
    this.ready = new Promise<M>((res, rej) => {
      this.resolveReady = res;
      this.rejectReady = rej;
    });
    this.ready.catch(() => {});
    this.globals.modelReady = this.ready;
    this.globals.tokenizer = null;
    if (source.source === null) {
      const why = source.origin === 'disabled' ? 'ROME_TS_MODEL=none' : 'no model found (ROME_TS_MODEL unset, no models/rome-fact-gpt2/, no test/fixtures/tiny-gpt2/)';
      const message = `rome-ts kernel: \`model\` is not loaded (${why}). Load one in a cell: model = await romets.loadModel('<dir or hub id>')`;
      this.state = { status: 'disabled', message };
      this.globals.model = unavailableModel(message);
      this.rejectReady(new Error(message));
    } else {
      this.globals.model = unavailableModel(
        `rome-ts kernel: \`model\` is still loading from ${source.source}; run \`await modelReady\` to wait for it`,
      );
    }
  }

  /** True once the load succeeded, failed, or was disabled. */
  get settled(): boolean {
    return this.state.status !== 'loading';
  }

  /** Start loading (call once, after the kernel's sockets are up). */
  start(): void {
    const src = this.source.source;
    if (src === null) return;
    const t0 = Date.now();
    this.load(src).then(
      (m) => {
        this.state = { status: 'ready', ms: Date.now() - t0 };
        this.globals.model = m;
        this.globals.tokenizer = m.tokenizer ?? null;
        this.resolveReady(m);
      },
      (e: unknown) => {
        const error = e instanceof Error ? e : new Error(String(e));
        const from = this.source.origin === 'ROME_TS_MODEL' ? ' (from ROME_TS_MODEL)' : ` (${this.source.origin})`;
        const message =
          `rome-ts kernel: \`model\` is not available: loading "${src}"${from} failed: ${error.message}\n` +
          `  Fix: set ROME_TS_MODEL to a model directory or hub id and restart the kernel,\n` +
          `  or load one in a cell: model = await romets.loadModel('<dir or hub id>')`;
        this.state = { status: 'failed', error, message };
        this.globals.model = unavailableModel(message);
        this.rejectReady(new Error(message, { cause: error }));
      },
    );
  }

  /** A one-time note for the first cell after the load settled (load failure, missing tokenizer), or null. */
  takeNotice(waitedMs: number): string | null {
    if (this.noticeShown || !this.settled) return null;
    this.noticeShown = true;
    const s = this.state;
    if (s.status === 'failed') return `${s.message}\n`;
    if (s.status !== 'ready') return null;
    const m = this.globals.model as M;
    const lines: string[] = [];
    if (waitedMs > 0) lines.push(`rome-ts: model ${m.name ?? ''} loaded from ${this.source.source} (${this.source.origin}) in ${(s.ms / 1000).toFixed(1)}s`);
    if (m.tokenizer == null) {
      lines.push(
        `rome-ts: note: model ${m.name ?? this.source.source} has no tokenizer, so text prompts such as model.generate("...") cannot be encoded; ` +
          `pass token ids, or set ROME_TS_MODEL to a model with a tokenizer and restart the kernel`,
      );
    }
    return lines.length ? lines.join('\n') + '\n' : null;
  }
}
