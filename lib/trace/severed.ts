/**
 * Severed-path tracing (paper Figure 3): at one token (default the subject's last), restore the hidden state h_l
 * to its clean value while forcing the MLP outputs (or the attention outputs) of ALL layers at that token to
 * their corrupted values, so that the restored state cannot act through those modules at that token.
 * Every curve uses the same noise draw (the official code draws new noise for its second pass; the spec says not to).
 */
import type { GPT2Model } from '../model/model.js';
import { TraceSession, type Restoration, type ScoreOptions, type TraceInput, type TraceSetupOptions } from './engine.js';
import { scoreWithThreads, type ThreadOptions } from './causalTrace.js';

/** Options of severedTrace. */
export type SeveredTraceOptions = TraceInput &
  TraceSetupOptions & {
    /** Token whose path is severed (default: the last subject token). */
    token?: number;
    method?: ScoreOptions['method'];
    maxRows?: number;
    onProgress?: ScoreOptions['onProgress'];
  } & ThreadOptions;

/** Per-layer scores (mean p(answer)) of restoring h_l at one token, plain and with MLP / attention severed. */
export interface SeveredTraceResult {
  /** Restored h_l only. */
  ordinary: number[];
  /** h_l restored, MLP outputs of every layer at the token kept corrupted. */
  mlpSevered: number[];
  /** h_l restored, attention outputs of every layer at the token kept corrupted. */
  attnSevered: number[];
  token: number;
  pStar: number;
  pLow: number;
  answer: { id: number; token: string };
  tokens: string[];
  subjectRange: { start: number; end: number };
  noise: number;
  samples: number;
  seed: number;
}

/** The three restoration lists of Figure 3 at token `t` for an L-layer model: ordinary, MLP-severed, attn-severed. */
export function severedRestorations(t: number, nLayer: number): { ordinary: Restoration[]; mlp: Restoration[]; attn: Restoration[] } {
  const ordinary: Restoration[] = [];
  const mlp: Restoration[] = [];
  const attn: Restoration[] = [];
  const all = Array.from({ length: nLayer }, (_, j) => j);
  for (let l = 0; l < nLayer; l++) {
    const h = { kind: 'hidden' as const, layer: l, position: t };
    ordinary.push([h]);
    mlp.push([h, ...all.map((j) => ({ kind: 'mlp' as const, layer: j, position: t, source: 'corrupt' as const }))]);
    attn.push([h, ...all.map((j) => ({ kind: 'attn' as const, layer: j, position: t, source: 'corrupt' as const }))]);
  }
  return { ordinary, mlp, attn };
}

/** Figure 3 for one prompt: 3 × L restorations, scored in one batched pass over shared clean/corrupted caches. */
export async function severedTrace(model: GPT2Model, opts: SeveredTraceOptions): Promise<SeveredTraceResult> {
  const input: TraceInput =
    opts.prompt !== undefined ? { prompt: opts.prompt, subject: opts.subject } : { ids: opts.ids, subjectRange: opts.subjectRange };
  const s = await TraceSession.create(model, input, opts);
  try {
    const L = model.config.nLayer;
    const t = opts.token ?? s.subjectRange.end - 1;
    if (!Number.isInteger(t) || t < 0 || t >= s.length) throw new Error(`severedTrace: token ${t} out of range [0, ${s.length})`);
    const r = severedRestorations(t, L);
    const flat = await scoreWithThreads(s, [...r.ordinary, ...r.mlp, ...r.attn], opts);
    return {
      ordinary: flat.slice(0, L),
      mlpSevered: flat.slice(L, 2 * L),
      attnSevered: flat.slice(2 * L, 3 * L),
      token: t,
      pStar: s.pStar,
      pLow: s.pLow,
      answer: { ...s.answer },
      tokens: [...s.tokens],
      subjectRange: { ...s.subjectRange },
      noise: s.noise,
      samples: s.samples,
      seed: s.seed,
    };
  } finally {
    s.dispose();
  }
}
