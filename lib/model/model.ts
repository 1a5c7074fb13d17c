/**
 * GPT2Model: parameters + tokenizer + the run API (capture, patch), generation and target scoring.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Config } from '../io/config.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { checkHookName, hookNames, type HookFn, type HookSet } from '../hooks.js';
import { forward, logitLens, type ForwardOptions, type ForwardOutput } from './forward.js';
import { GPT2Params, type ParamSnapshot } from './params.js';
import { TensorHandle } from './handle.js';
import { captureHook, checkPatchSelection, patchHook, type Patch } from './patch.js';

/** Text, a batch of texts, token ids, or a batch of token ids. */
export type RunInput = string | readonly string[] | readonly number[] | readonly (readonly number[])[];

/** Options of `model.run`. */
export interface RunOptions {
  /** Hook points to capture ('all' = every hook point, attention patterns excluded). */
  capture?: readonly string[] | 'all';
  /** Interventions, applied in order (several on one hook point compose). */
  patch?: readonly Patch[];
  /** Extra raw hooks (advanced). */
  hooks?: HookSet;
  /** Logits for every position [B,T,V] (default), only each row's last real token [B,V], or none. */
  logits?: 'all' | 'last' | 'none';
}

/** The outcome of a run: token ids, captured states and logits, all owned by the caller. */
export interface RunResult {
  /** Token ids per row (unpadded). */
  ids: number[][];
  /** Token strings per row, when a tokenizer is present. */
  tokens: string[][] | null;
  /** Real length of each row (rows are right-padded to the longest). */
  lengths: number[];
  /** Logits as requested, or null. */
  logits: TensorHandle | null;
  /** Captured states by hook name. */
  cache: Map<string, TensorHandle>;
  /** A captured state; throws if it was not captured. */
  get(name: string): TensorHandle;
  /** Frees the logits and every captured state. */
  dispose(): void;
}

/** Options of `model.generate`. */
export interface GenerateOptions {
  /** Number of tokens to generate (default 20). */
  maxNewTokens?: number;
  /** 1 = greedy (default); k > 1 samples among the k most likely tokens. */
  topK?: number;
  /** Softmax temperature for sampling (default 1). */
  temperature?: number;
  /** Seed of the sampler (default 0): same seed, same text. */
  seed?: number;
  /** Stop at the end-of-text token (default true). */
  stopAtEos?: boolean;
}

/** Score of one target string after one prompt under teacher forcing. */
export interface TargetScore {
  prompt: string;
  target: string;
  /** Target token ids (the target tokenised on its own, as ROME does). */
  targetIds: number[];
  /** log p of each target token (natural log). */
  tokenLogProbs: number[];
  /** Whether each target token was the argmax prediction at its position. */
  tokenArgmaxCorrect: boolean[];
  /** Sum of tokenLogProbs: log p(target | prompt). */
  logProb: number;
  /** Mean negative log-probability per target token (the paper's NLL). */
  nll: number;
  /** p(target | prompt) = exp(logProb). */
  prob: number;
}

/** One of the most likely next tokens. */
export interface TopToken {
  id: number;
  token: string;
  prob: number;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A model of any supported family (GPT-2, GPT-NeoX, LLaMA-style, GPT-J) with hookable states. */
export class GPT2Model {
  readonly name: string;
  readonly config: GPT2Config;
  readonly params: GPT2Params;
  readonly tokenizer: Tokenizer | null;

  constructor(name: string, params: GPT2Params, tokenizer: Tokenizer | null) {
    this.name = name;
    this.config = params.config;
    this.params = params;
    this.tokenizer = tokenizer;
  }

  /** Every hook-point name of this model, in execution order. */
  hookNames(opts: { patterns?: boolean } = {}): string[] {
    return hookNames(this.config.nLayer, { ...opts, posEmbed: !this.config.arch });
  }

  /** Token ids of a text (a BOS only when the tokenizer adds one, as LLaMA's does; none for GPT-2). */
  encode(text: string): number[] {
    return this.requireTokenizer().encode(text).ids;
  }

  /**
   * Token ids of a text that continues earlier text (a target or answer): no BOS, and a leading space joins the
   * first piece for SentencePiece-style tokenizers. Equal to encode(text) for GPT-2.
   */
  encodeContinuation(text: string): number[] {
    return this.requireTokenizer().encodeContinuation(text);
  }

  /** Text of token ids. */
  decode(ids: readonly number[]): string {
    return this.requireTokenizer().decode([...ids]);
  }

  /** Human-readable token strings of a text (e.g. ["The", " Eiff", "el"]). */
  tokens(text: string): string[] {
    return this.requireTokenizer().tokenize(text);
  }

  /** Token positions [start, end) of the first occurrence of `subject` in `prompt`. */
  subjectRange(prompt: string, subject: string): { start: number; end: number } {
    return this.requireTokenizer().tokenRange(prompt, subject);
  }

  /** The low-level forward pass (see ForwardOptions); the caller owns every returned tensor. */
  forward(ids: tf.Tensor2D | null, opts: ForwardOptions = {}): ForwardOutput {
    return forward(this.params, ids, opts);
  }

  /** Converts any RunInput to right-padded ids plus per-row lengths. */
  batchIds(input: RunInput): { ids: number[][]; lengths: number[]; tokens: string[][] | null } {
    let rows: number[][];
    let tokens: string[][] | null = null;
    if (typeof input === 'string') input = [input];
    if (input.length === 0) throw new Error('run: empty input');
    if (typeof input[0] === 'string') {
      const tok = this.requireTokenizer();
      const texts = input as readonly string[];
      rows = texts.map((t) => tok.encode(t).ids);
      tokens = rows.map((r) => r.map((id) => tok.decode([id])));
    } else if (typeof input[0] === 'number') {
      rows = [[...(input as readonly number[])]];
    } else {
      rows = (input as readonly (readonly number[])[]).map((r) => [...r]);
    }
    if (tokens === null && this.tokenizer) {
      const tok = this.tokenizer;
      tokens = rows.map((r) => r.map((id) => tok.decode([id])));
    }
    for (const r of rows) {
      if (r.length === 0) throw new Error('run: an input row has no tokens');
      if (r.length > this.config.nPositions) {
        throw new Error(`run: input of ${r.length} tokens exceeds the model's context of ${this.config.nPositions}`);
      }
      for (const id of r) {
        if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize) {
          throw new Error(`run: token id ${id} out of range [0, ${this.config.vocabSize})`);
        }
      }
    }
    return { ids: rows, lengths: rows.map((r) => r.length), tokens };
  }

  /**
   * Runs the model once with captures and patches. Rows are right-padded (causal attention means real tokens
   * never see the padding). Captured handles are [B, T, ...] with T the longest row.
   */
  run(input: RunInput, opts: RunOptions = {}): RunResult {
    const { ids, lengths, tokens } = this.batchIds(input);
    const B = ids.length;
    const T = Math.max(...lengths);
    const pad = this.config.eosTokenId ?? 0;
    const flat = new Int32Array(B * T).fill(pad);
    ids.forEach((r, b) => flat.set(r, b * T));
    const names = opts.capture === 'all' ? this.hookNames() : [...(opts.capture ?? [])];
    const hooks: Record<string, HookFn[]> = {};
    const add = (name: string, fn: HookFn) => {
      checkHookName(name, this.config.nLayer);
      if (name === 'pos_embed' && this.config.arch) {
        throw new Error(`hook point "pos_embed" does not exist in a ${this.config.modelType} model (rotary positions)`);
      }
      (hooks[name] ??= []).push(fn);
    };
    for (const [name, h] of Object.entries(opts.hooks ?? {})) {
      for (const fn of typeof h === 'function' ? [h as HookFn] : (h as readonly HookFn[])) add(name, fn);
    }
    for (const p of opts.patch ?? []) {
      checkPatchSelection(p, B, T);
      add(p.hook, patchHook(p));
    }
    const captured = new Map<string, tf.Tensor>();
    // Captures run after patches on the same point, so they record what the rest of the network saw.
    for (const name of names) add(name, captureHook(name, captured));
    const logitsMode = opts.logits ?? 'all';
    const idsT = tf.tensor2d(flat, [B, T], 'int32');
    let out: ForwardOutput;
    try {
      out = forward(this.params, idsT, {
        hooks,
        logits: logitsMode === 'last' ? lengths.map((l) => l - 1) : logitsMode,
      });
    } catch (e) {
      for (const t of captured.values()) t.dispose();
      throw e;
    } finally {
      idsT.dispose();
    }
    out.hidden.dispose();
    const cache = new Map<string, TensorHandle>();
    for (const name of names) {
      const t = captured.get(name);
      if (t) cache.set(name, new TensorHandle(name, t, tokens));
    }
    const logits = out.logits ? new TensorHandle('logits', out.logits, tokens) : null;
    return {
      ids,
      tokens,
      lengths,
      logits,
      cache,
      get(name: string): TensorHandle {
        const h = cache.get(name);
        if (!h) throw new Error(`"${name}" was not captured in this run (captured: ${[...cache.keys()].join(', ') || 'nothing'})`);
        return h;
      },
      dispose(): void {
        logits?.dispose();
        for (const h of cache.values()) h.dispose();
      },
    };
  }

  /** `run` capturing every hook point (TransformerLens' run_with_cache). */
  runWithCache(input: RunInput, opts: Omit<RunOptions, 'capture'> = {}): RunResult {
    return this.run(input, { ...opts, capture: 'all' });
  }

  /** Residual states [..., d] read through the final norm and unembedding: logits [..., V] (the logit lens). */
  logitLens(h: tf.Tensor | TensorHandle): tf.Tensor {
    return logitLens(this.params, h instanceof TensorHandle ? h.tensor : h);
  }

  /** Next-token distribution after each prompt: probabilities [B, V] (caller disposes). */
  nextTokenProbs(prompts: string | readonly string[], opts: Omit<RunOptions, 'logits' | 'capture'> = {}): tf.Tensor2D {
    const r = this.run(typeof prompts === 'string' ? [prompts] : prompts, { ...opts, logits: 'last' });
    try {
      return tf.tidy(() => tf.softmax(r.logits!.tensor)) as tf.Tensor2D;
    } finally {
      r.dispose();
    }
  }

  /** The k most likely next tokens after a prompt, with probabilities. */
  topTokens(prompt: string, k = 10, opts: Omit<RunOptions, 'logits' | 'capture'> = {}): TopToken[] {
    const probs = this.nextTokenProbs(prompt, opts);
    try {
      const { values, indices } = tf.topk(probs, Math.min(k, this.config.vocabSize));
      const v = values.dataSync();
      const ix = indices.dataSync();
      values.dispose();
      indices.dispose();
      return Array.from(ix, (id, i) => ({ id, token: this.tokenizer ? this.tokenizer.decode([id]) : String(id), prob: v[i] }));
    } finally {
      probs.dispose();
    }
  }

  /**
   * log p(target | prompt) for each (prompt, target) pair by teacher forcing, batched. The target is tokenised on
   * its own and appended to the prompt's tokens (pass " Paris", with its leading space, as GPT-2 expects).
   */
  scoreTargets(
    pairs: readonly { prompt: string; target: string }[],
    opts: { batchSize?: number; patch?: readonly Patch[] } = {},
  ): TargetScore[] {
    const tok = this.requireTokenizer();
    const bs = opts.batchSize ?? 32;
    const out: TargetScore[] = [];
    for (let i0 = 0; i0 < pairs.length; i0 += bs) {
      const chunk = pairs.slice(i0, i0 + bs);
      const enc = chunk.map((p) => {
        const pi = tok.encode(p.prompt).ids;
        const ti = tok.encodeContinuation(p.target);
        if (pi.length === 0) throw new Error(`scoreTargets: empty prompt`);
        if (ti.length === 0) throw new Error(`scoreTargets: target "${p.target}" has no tokens`);
        return { pi, ti };
      });
      const r = this.run(
        enc.map((e) => [...e.pi, ...e.ti.slice(0, -1)]),
        { logits: 'all', patch: opts.patch },
      );
      const T = Math.max(...r.lengths);
      const V = this.config.vocabSize;
      // Gather only the target tokens' log-probs on the device: reading back [B,T,V] would dominate.
      const flatIdx: number[] = [];
      enc.forEach((e, b) => e.ti.forEach((t, j) => flatIdx.push((b * T + e.pi.length - 1 + j) * V + t)));
      const [picked, argmaxT] = tf.tidy(() => {
        const lp = tf.logSoftmax(r.logits!.tensor);
        return [tf.gather(tf.reshape(lp, [-1]), tf.tensor1d(flatIdx, 'int32')), tf.argMax(lp, -1)];
      });
      const lpv = picked.dataSync();
      const am = argmaxT.dataSync();
      picked.dispose();
      argmaxT.dispose();
      r.dispose();
      let k = 0;
      enc.forEach((e, b) => {
        const lps = e.ti.map(() => lpv[k++]);
        const ok = e.ti.map((t, j) => am[b * T + e.pi.length - 1 + j] === t);
        const logProb = lps.reduce((a, c) => a + c, 0);
        out.push({
          prompt: chunk[b].prompt,
          target: chunk[b].target,
          targetIds: e.ti,
          tokenLogProbs: lps,
          tokenArgmaxCorrect: ok,
          logProb,
          nll: -logProb / lps.length,
          prob: Math.exp(logProb),
        });
      });
    }
    return out;
  }

  /** Generates token ids after a prompt with a KV cache (one full forward, then one position per step). */
  async generateIds(promptIds: readonly number[], opts: GenerateOptions = {}): Promise<number[]> {
    const maxNew = opts.maxNewTokens ?? 20;
    const topK = Math.max(1, Math.floor(opts.topK ?? 1));
    const temperature = opts.temperature ?? 1;
    const stopAtEos = opts.stopAtEos ?? true;
    const eos = this.config.eosTokenId;
    const rand = mulberry32(opts.seed ?? 0);
    if (promptIds.length === 0) throw new Error('generate: empty prompt (no tokens)');
    if (!(temperature > 0)) throw new Error(`generate: temperature must be > 0, got ${temperature}`);
    const out: number[] = [];
    let ids = tf.tensor2d([promptIds.map((x) => x)], [1, promptIds.length], 'int32');
    let past: ForwardOutput['present'] = null;
    let pos = promptIds.length;
    try {
      for (let step = 0; step < maxNew; step++) {
        if (pos > this.config.nPositions) break;
        const o = forward(this.params, ids, { past: past ?? undefined, returnPresent: true, logits: [ids.shape[1] - 1] });
        o.hidden.dispose();
        if (past) {
          for (const t of past.k) t.dispose();
          for (const t of past.v) t.dispose();
        }
        past = o.present;
        const next = await this.pick(o.logits!, topK, temperature, rand);
        o.logits!.dispose();
        out.push(next);
        if (stopAtEos && eos !== null && next === eos) break;
        ids.dispose();
        ids = tf.tensor2d([[next]], [1, 1], 'int32');
        pos += 1;
        if (pos >= this.config.nPositions) break;
      }
    } finally {
      ids.dispose();
      if (past) {
        for (const t of past.k) t.dispose();
        for (const t of past.v) t.dispose();
      }
    }
    return out;
  }

  /** Generates text after a prompt; returns the prompt followed by the continuation. */
  async generate(prompt: string, opts: GenerateOptions = {}): Promise<string> {
    const ids = this.encode(prompt);
    const gen = await this.generateIds(ids, opts);
    const eos = this.config.eosTokenId;
    // End-of-text tokens become line breaks between the documents of a generation that runs past them.
    const docs: number[][] = [[]];
    for (const t of gen) {
      if (t === eos) docs.push([]);
      else (docs[docs.length - 1] as number[]).push(t);
    }
    while (docs.length > 1 && (docs[docs.length - 1] as number[]).length === 0) docs.pop();
    return prompt + docs.map((d) => this.decode(d)).join('\n');
  }

  private async pick(logits: tf.Tensor, topK: number, temperature: number, rand: () => number): Promise<number> {
    if (topK === 1) {
      const a = tf.argMax(logits, -1);
      const v = (await a.data())[0];
      a.dispose();
      return v;
    }
    // tidy frees the scaled logits and the temperature scalar (two tensors a token otherwise).
    const { values, indices } = tf.tidy(() => tf.topk(tf.div(logits, temperature), topK));
    const v = await values.data();
    const ix = await indices.data();
    values.dispose();
    indices.dispose();
    const m = Math.max(...v);
    const w = Array.from(v, (x) => Math.exp(x - m));
    const s = w.reduce((a, b) => a + b, 0);
    let r = rand() * s;
    for (let i = 0; i < w.length; i++) {
      r -= w[i];
      if (r <= 0) return ix[i];
    }
    return ix[ix.length - 1];
  }

  /**
   * The live variable of a parameter, by HF name without the model prefix (e.g. "h.5.mlp.c_proj.weight",
   * "layers.5.mlp.down_proj.weight"); matrices are [in, out].
   */
  getParam(name: string): tf.Variable {
    return this.params.get(name);
  }

  /** Replaces a parameter's value (copied). */
  setParam(name: string, value: tf.Tensor): void {
    this.params.set(name, value);
  }

  /** A copy of a parameter for a bit-exact restore later. */
  snapshotParam(name: string): ParamSnapshot {
    return this.params.snapshot(name);
  }

  /** Restores a parameter from a snapshot, bit for bit. */
  restoreParam(snapshot: ParamSnapshot): void {
    this.params.restore(snapshot);
  }

  /** Frees every parameter. */
  dispose(): void {
    this.params.dispose();
  }

  private requireTokenizer(): Tokenizer {
    if (!this.tokenizer) {
      throw new Error(`model "${this.name}" has no tokenizer (no tokenizer.json): pass token ids instead of text`);
    }
    return this.tokenizer;
  }
}
