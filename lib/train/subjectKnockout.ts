/**
 * Subject knockout: a training-time restriction that makes a small model look facts up at the subject.
 *
 * Why: a small model trained on "<subject> <relation> <object>" lines learns to copy the subject's tokens to the
 * last position with its first attention layer and to recall the object there (results/recipe-v2.md, R0–R2), so
 * nothing is stored at the subject and a rank-one edit of a subject MLP changes nothing. If, in the lower blocks,
 * the positions after the subject cannot attend to it, the only way the lower MLPs can serve the object is at the
 * subject's own positions; the upper blocks (full attention) must then read it from there — the paper's picture
 * (early-middle MLPs at the last subject token, then attention at the last token). The restriction exists only
 * during training steps: the saved model is a plain GPT-2 and every evaluation runs it unrestricted.
 */
import { forEachStreamDocument, type StreamKnockout, type TokenizerLike } from './data.js';

/** A fact line of the corpus and the subject it names (first occurrence is the one cut). */
export interface SubjectLine {
  line: string;
  subject: string;
}

/**
 * Token range [start, end) of the first occurrence of `subject` in `text`, and the text's token count; null when
 * the subject is absent or its tokens do not align with the text's (a BPE merge across its edge).
 */
export function subjectTokenSpan(tok: TokenizerLike, text: string, subject: string): { length: number; start: number; end: number } | null {
  const at = text.indexOf(subject);
  if (at < 0 || subject.length === 0) return null;
  const isPrefix = (a: number[], b: number[]) => a.length <= b.length && a.every((x, i) => x === b[i]);
  const all = tok.encode(text).ids;
  // Byte-level BPE attaches a space to the word after it, so the subject's first token owns the space before it.
  const head = text.slice(0, at).replace(/\s+$/, '');
  const before = head.length === 0 ? [] : tok.encode(head).ids;
  const through = tok.encode(text.slice(0, at + subject.length)).ids;
  if (!isPrefix(before, through) || !isPrefix(through, all) || through.length === before.length) return null;
  return { length: all.length, start: before.length, end: through.length };
}

/** Counts from subjectKnockout. */
export interface SubjectKnockoutStats {
  /** Documents whose subject range was cut. */
  documents: number;
  /** Query tokens with a cut range. */
  queries: number;
  /** Fact lines skipped because the subject's tokens do not align with the line's (a BPE merge across its edge). */
  skipped: number;
}

/**
 * Stream-level cut ranges for a stream laid out as tokenizeText writes it (EOS, doc₁, EOS, doc₂, …, EOS): in
 * every document found in `lines`, each token after the subject gets the subject's token range; −1 elsewhere.
 * `layers` lower blocks are restricted. Throws when the stream does not match `docs` (a stale token cache).
 */
export function subjectKnockout(
  tokens: Int32Array,
  docs: readonly string[],
  lines: ReadonlyMap<string, string>,
  tok: TokenizerLike,
  layers: number,
): { knockout: StreamKnockout; innerFrom: Int32Array; stats: SubjectKnockoutStats } {
  if (!Number.isInteger(layers) || layers < 1) throw new Error(`subjectKnockout: layers must be a positive integer, got ${layers}`);
  const from = new Int32Array(tokens.length).fill(-1);
  const to = new Int32Array(tokens.length).fill(-1);
  // For subject tokens after the subject's first: the subject's first stream position (see StreamKnockout.innerFrom).
  const innerFrom = new Int32Array(tokens.length).fill(-1);
  // Token span of the subject within each distinct line (fact lines repeat); null when it does not align.
  const spans = new Map<string, { length: number; start: number; end: number } | null>();
  const spanOf = (d: number) => {
    const line = docs[d] as string;
    const subject = lines.get(line);
    if (subject === undefined) return undefined;
    if (!spans.has(line)) spans.set(line, subjectTokenSpan(tok, line, subject));
    return spans.get(line) ?? null;
  };
  let documents = 0;
  let queries = 0;
  let skipped = 0;
  forEachStreamDocument(
    tokens,
    docs,
    tok.eosId,
    'subjectKnockout',
    (d, pos, end) => {
      const s = spanOf(d);
      if (s === undefined) return;
      if (s === null) {
        skipped++;
        return;
      }
      for (let t = pos + s.end; t < end; t++) {
        from[t] = pos + s.start;
        to[t] = pos + s.end;
        queries++;
      }
      for (let t = pos + s.start + 1; t < pos + s.end; t++) innerFrom[t] = pos + s.start;
      documents++;
    },
    (d) => spanOf(d)?.length ?? null,
  );
  return { knockout: { layers, from, to }, innerFrom, stats: { documents, queries, skipped } };
}

/** A fact line for the subject readout: its subject, and the prompt and object it renders (line = prompt + " " + object …). */
export interface ReadoutLine {
  subject: string;
  prompt: string;
  object: string;
}

/** Counts from subjectReadout. */
export interface SubjectReadoutStats {
  /** Fact lines whose last subject token got a readout target. */
  documents: number;
  /** Fact lines skipped: the subject's or the object's tokens do not align with the line's. */
  skipped: number;
}

/**
 * Readout targets for the subject readout loss: at the last subject token of every fact line in `lines`, the id of
 * the object's first token (the token the line's prompt is completed with); −1 elsewhere. Same stream layout and
 * stale-cache checks as subjectKnockout. Returns Int32Array(tokens.length) targets, and `extractFrom`: at the prompt's
 * last token (the one that predicts the object), the stream position of the last subject token; −1 elsewhere.
 *
 * Why: with the lower blocks' subject knockout, a fact has to be stored at the subject and read from there by the
 * upper attention — a two-hop circuit on which training stalls (results/recipe-v2.md, R5: neither hop gets a
 * gradient until the other exists). Asking the residual at the last subject token to predict the object through
 * the model's own unembedding gives the lower MLPs that gradient directly, as the trace will later find them.
 */
export function subjectReadout(
  tokens: Int32Array,
  docs: readonly string[],
  lines: ReadonlyMap<string, ReadoutLine>,
  tok: TokenizerLike,
): { target: Int32Array; extractFrom: Int32Array; stats: SubjectReadoutStats } {
  const target = new Int32Array(tokens.length).fill(-1);
  const extractFrom = new Int32Array(tokens.length).fill(-1);
  const isPrefix = (a: number[], b: number[]) => a.length <= b.length && a.every((x, i) => x === b[i]);
  // Per distinct line: the last subject token's offset and the object's first token id (null: not aligned).
  const found = new Map<string, { length: number; at: number; id: number; query: number } | null>();
  const readOf = (line: string, r: ReadoutLine) => {
    if (found.has(line)) return found.get(line) ?? null;
    let out: { length: number; at: number; id: number; query: number } | null = null;
    const s = subjectTokenSpan(tok, line, r.subject);
    if (s && line.startsWith(r.prompt)) {
      const all = tok.encode(line).ids;
      const prompt = tok.encode(r.prompt).ids;
      const withObject = tok.encode(`${r.prompt} ${r.object}`).ids;
      // The subject must end inside the prompt, before the object, for its residual to be read for the object.
      if (isPrefix(prompt, withObject) && isPrefix(withObject, all) && withObject.length > prompt.length && s.end <= prompt.length) {
        out = { length: all.length, at: s.end - 1, id: withObject[prompt.length] as number, query: prompt.length - 1 };
      }
    }
    found.set(line, out);
    return out;
  };
  const readAt = (d: number) => {
    const r = lines.get(docs[d] as string);
    return r === undefined ? undefined : readOf(docs[d] as string, r);
  };
  let documents = 0;
  let skipped = 0;
  forEachStreamDocument(
    tokens,
    docs,
    tok.eosId,
    'subjectReadout',
    (d, pos) => {
      const s = readAt(d);
      if (s === undefined) return;
      if (s === null) {
        skipped++;
        return;
      }
      target[pos + s.at] = s.id;
      extractFrom[pos + s.query] = pos + s.at;
      documents++;
    },
    (d) => readAt(d)?.length ?? null,
  );
  return { target, extractFrom, stats: { documents, skipped } };
}
