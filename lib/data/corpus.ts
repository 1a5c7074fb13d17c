/**
 * General English text for language-model training, covariance statistics and perplexity: the WikiText raw test
 * split and Project Gutenberg books from the data directory. Iteration order is fixed (WikiText articles in file
 * order, then books sorted by file name), and every corpus has an `identity` (sha256 over its name, options and the
 * sha256 of each input file) so that caches can key on exactly what was read.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { sha256, sha256File } from './hash.js';
import { DataFileNotFoundError, dataDir as defaultDataDir, dataFileCandidates } from './paths.js';

/** Where a corpus item comes from. */
export type CorpusSource = 'wikitext' | 'gutenberg';
/** Granularity of iteration: whole documents, paragraphs, or paragraphs packed/split into ≤ chunkChars pieces. */
export type CorpusUnit = 'document' | 'paragraph' | 'chunk';

/** One unit of text. */
export interface CorpusItem {
  source: CorpusSource;
  /** Stable document id: `wikitext:<article title>` or `gutenberg:<file name>`. */
  docId: string;
  /** Index of the document in iteration order (over all sources). */
  docIndex: number;
  /** Index of the item within its document. */
  itemIndex: number;
  text: string;
}

/** Options for {@link openTextCorpus}. */
export interface TextCorpusOptions {
  /** Data directory (default: the standard lookup). */
  dataDir?: string;
  /** Sources in iteration order (default ['wikitext', 'gutenberg']). */
  sources?: CorpusSource[];
  /** Default 'paragraph'. */
  unit?: CorpusUnit;
  /** Maximum characters of a chunk for unit 'chunk' (default 250). */
  chunkChars?: number;
  /** Paragraphs shorter than this are dropped (headings, page furniture; default 40). */
  minParagraphChars?: number;
  /** Gutenberg file names to use (default: every .txt in corpus/gutenberg, sorted). */
  gutenbergFiles?: string[];
}

/** An input file of a corpus. */
export interface CorpusFile {
  /** Path relative to the data directory, with forward slashes. */
  relPath: string;
  bytes: number;
  sha256: string;
}

/** A general-text corpus: async-iterable items plus what identifies them. */
export interface TextCorpus extends AsyncIterable<CorpusItem> {
  /** Human-readable name, e.g. "wikitext-2-raw-test+gutenberg(233)". */
  readonly name: string;
  /** sha256 over name, options, format version and input file hashes. */
  readonly identity: string;
  readonly dataDir: string;
  readonly files: readonly CorpusFile[];
  readonly options: Readonly<Required<Omit<TextCorpusOptions, 'dataDir' | 'gutenbergFiles'>>>;
}

/** Bumped whenever cleaning or splitting changes, so identities (and caches keyed on them) change too. */
export const CORPUS_FORMAT_VERSION = 2;

/** Relative path of the WikiText raw test split. */
export const WIKITEXT_RAW_TEST = 'corpus/wikitext-2-raw/wiki.test.raw';
/** Relative path of the Gutenberg books folder. */
export const GUTENBERG_DIR = 'corpus/gutenberg';

const START_RE = /^\*\*\*\s*START OF (?:THE|THIS) PROJECT GUTENBERG[^\n]*$/im;
const END_RE = /^\*\*\*\s*END OF (?:THE|THIS) PROJECT GUTENBERG[^\n]*$/im;
// Pre-2000s etexts: the licence ("small print") sits at the top and the text ends with "End of ... Project Gutenberg ...".
const OLD_START_RE = /^\*END\*THE SMALL PRINT![^\n]*$/m;
const OLD_END_RE = /^End of (?:the |this )?Project Gutenberg[^\n]*$/im;

/** Removes a Project Gutenberg licence header and footer (`*** START OF` / `*** END OF` markers, or the old form). */
export function stripGutenbergBoilerplate(raw: string): string {
  const text = raw.replace(/\r\n?/g, '\n');
  let begin = 0;
  const s = START_RE.exec(text) ?? OLD_START_RE.exec(text);
  if (s) begin = s.index + s[0].length;
  const rest = text.slice(begin);
  const e = END_RE.exec(rest) ?? OLD_END_RE.exec(rest);
  return e ? rest.slice(0, e.index) : rest;
}

/** Normalises typographic quotes to ASCII and collapses whitespace (keeps a small tokenizer's vocabulary for words). */
export function normaliseText(s: string): string {
  return s
    .replace(/[\u2018\u2019\u201B\u2032]/g, "'")
    .replace(/[\u201C\u201D\u201F\u2033]/g, '"')
    .replace(/\u00A0/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Undoes WikiText's tokenisation spaces (" @-@ ", " , ", " 's", spaced quotes) in one line. */
export function detokenizeWikiText(line: string): string {
  let s = ` ${line.trim()} `;
  s = s.replace(/ @(.)@ /g, '$1');
  s = s.replace(/ (n't|'t|'s|'re|'ve|'m|'ll|'d)(?=[\s.,;:!?])/gi, '$1');
  s = s.replace(/ ([.,;:!?%)\]}])/g, '$1');
  s = s.replace(/([(\[{$]) /g, '$1');
  s = s.replace(/(\w) ' /g, "$1' ");
  s = s.replace(/ " ([^"]*?) "/g, ' "$1"');
  return s.replace(/\s+/g, ' ').trim();
}

/** Splits WikiText raw text into articles at level-1 headings (" = Title = "). */
export function splitWikiTextArticles(raw: string): { title: string; paragraphs: string[] }[] {
  const out: { title: string; paragraphs: string[] }[] = [];
  let cur: { title: string; paragraphs: string[] } | null = null;
  for (const line of raw.replace(/\r\n?/g, '\n').split('\n')) {
    const t = line.trim();
    if (t.length === 0) continue;
    const h1 = /^= ([^=].*[^=]|[^=]) =$/.exec(t);
    if (h1) {
      cur = { title: (h1[1] as string).trim(), paragraphs: [] };
      out.push(cur);
      continue;
    }
    if (/^=.*=$/.test(t)) continue; // section heading
    if (!cur) out.push((cur = { title: '', paragraphs: [] }));
    cur.paragraphs.push(t);
  }
  return out;
}

/** Whether a paragraph looks like prose (not a heading, table of contents, or illustration note). */
export function isProse(p: string, minChars: number): boolean {
  if (p.length < minChars) return false;
  let letters = 0;
  let upper = 0;
  let digits = 0;
  let nonSpace = 0;
  // Char-code counting: this runs over ~80 MB of books, where a per-character Unicode regex is too slow.
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10) continue;
    nonSpace++;
    if (c >= 65 && c <= 90) {
      letters++;
      upper++;
    } else if ((c >= 97 && c <= 122) || (c >= 0xc0 && c < 0x2000 && c !== 0xd7 && c !== 0xf7)) letters++;
    else if (c >= 48 && c <= 57) digits++;
  }
  if (letters < 0.65 * nonSpace) return false;
  if (upper > 0.3 * letters) return false;
  if (digits > 0.08 * p.length) return false;
  return !/^(?:Produced by|\[Illustration|\[Transcriber|Transcriber's [Nn]ote|E-text prepared)/.test(p);
}

const ENTITIES: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', rsquo: "'", lsquo: "'", rdquo: '"', ldquo: '"',
  mdash: '\u2014', ndash: '\u2013', hellip: '...', eacute: '\u00e9', egrave: '\u00e8', aelig: '\u00e6', pound: '\u00a3',
};

/** Turns the few HTML-formatted books into plain text: block tags become paragraph breaks, entities are decoded. */
export function htmlToText(s: string): string {
  return s
    .replace(/<\/?(?:p|div|br|h\d|blockquote|table|tr|li)\b[^>]*>/gi, '\n\n')
    .replace(/<[^>]+>/g, '')
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&([a-z]+);/gi, (m, n: string) => ENTITIES[n.toLowerCase()] ?? m);
}

/** Paragraphs of a Gutenberg book: licence stripped, hard wraps joined, `_italic_` marks removed, prose only. */
export function gutenbergParagraphs(raw: string, minChars = 40): string[] {
  let body = stripGutenbergBoilerplate(raw);
  if (/<\/p>|&[lr]dquo;|&mdash;/i.test(body)) body = htmlToText(body);
  return body
    .split(/\n[ \t]*\n/)
    .map((p) => normaliseText(p.replace(/_/g, '')))
    .filter((p) => isProse(p, minChars));
}

/** Packs a paragraph's sentences into pieces of at most `maxChars` (a too-long sentence is split at spaces). */
export function chunkText(text: string, maxChars: number): string[] {
  const sentences = text.split(/(?<=[.!?]["')\]]*)\s+(?=["'(\[]?[\p{Lu}\d])/u);
  const out: string[] = [];
  let cur = '';
  const flush = (): void => {
    if (cur.length > 0) out.push(cur);
    cur = '';
  };
  for (const s of sentences) {
    if (s.length > maxChars) {
      flush();
      let piece = '';
      for (const w of s.split(' ')) {
        if (piece.length > 0 && piece.length + 1 + w.length > maxChars) {
          out.push(piece);
          piece = '';
        }
        piece = piece.length ? `${piece} ${w}` : w.slice(0, maxChars);
      }
      cur = piece;
      continue;
    }
    if (cur.length > 0 && cur.length + 1 + s.length > maxChars) flush();
    cur = cur.length ? `${cur} ${s}` : s;
  }
  flush();
  return out;
}

async function resolveFile(root: string, rel: string): Promise<string> {
  const p = path.join(root, rel);
  if (!existsSync(p)) throw new DataFileNotFoundError(rel, [p, ...dataFileCandidates(rel)]);
  return p;
}

/** Opens a general-text corpus (hashing its inputs, which takes about a second for all of Gutenberg). */
export async function openTextCorpus(opts: TextCorpusOptions = {}): Promise<TextCorpus> {
  const root = opts.dataDir ?? defaultDataDir();
  if (!root) throw new DataFileNotFoundError(WIKITEXT_RAW_TEST, dataFileCandidates(WIKITEXT_RAW_TEST));
  const sources = opts.sources ?? ['wikitext', 'gutenberg'];
  const options = {
    sources,
    unit: opts.unit ?? 'paragraph',
    chunkChars: opts.chunkChars ?? 250,
    minParagraphChars: opts.minParagraphChars ?? 40,
  } as const;
  const inputs: { source: CorpusSource; rel: string; abs: string }[] = [];
  for (const src of sources) {
    if (src === 'wikitext') {
      inputs.push({ source: src, rel: WIKITEXT_RAW_TEST, abs: await resolveFile(root, WIKITEXT_RAW_TEST) });
    } else {
      const dir = path.join(root, GUTENBERG_DIR);
      if (!existsSync(dir)) throw new DataFileNotFoundError(GUTENBERG_DIR, [dir, ...dataFileCandidates(GUTENBERG_DIR)]);
      const names = opts.gutenbergFiles ?? (await readdir(dir)).filter((n) => n.endsWith('.txt'));
      for (const n of [...names].sort()) {
        const rel = `${GUTENBERG_DIR}/${n}`;
        inputs.push({ source: src, rel, abs: await resolveFile(root, rel) });
      }
    }
  }
  const files: CorpusFile[] = [];
  for (const f of inputs) files.push({ relPath: f.rel, bytes: (await stat(f.abs)).size, sha256: await sha256File(f.abs) });
  const nBooks = inputs.filter((f) => f.source === 'gutenberg').length;
  const name = sources.map((s) => (s === 'wikitext' ? 'wikitext-2-raw-test' : `gutenberg(${nBooks})`)).join('+');
  const identity = sha256(
    JSON.stringify({ v: CORPUS_FORMAT_VERSION, name, options, files: files.map((f) => [f.relPath, f.sha256]) }),
  );

  async function* documents(): AsyncGenerator<{ source: CorpusSource; docId: string; paragraphs: string[] }> {
    for (const f of inputs) {
      const raw = await readFile(f.abs, 'utf8');
      if (f.source === 'wikitext') {
        for (const a of splitWikiTextArticles(raw)) {
          const paragraphs = a.paragraphs
            .map((p) => normaliseText(detokenizeWikiText(p)))
            .filter((p) => p.length >= options.minParagraphChars);
          if (paragraphs.length) yield { source: 'wikitext', docId: `wikitext:${a.title}`, paragraphs };
        }
      } else {
        const paragraphs = gutenbergParagraphs(raw, options.minParagraphChars);
        if (paragraphs.length) yield { source: 'gutenberg', docId: `gutenberg:${path.basename(f.rel)}`, paragraphs };
      }
    }
  }

  async function* items(): AsyncGenerator<CorpusItem> {
    let docIndex = 0;
    for await (const d of documents()) {
      const base = { source: d.source, docId: d.docId, docIndex };
      if (options.unit === 'document') yield { ...base, itemIndex: 0, text: d.paragraphs.join('\n\n') };
      else {
        let itemIndex = 0;
        for (const p of d.paragraphs) {
          const parts = options.unit === 'chunk' ? chunkText(p, options.chunkChars) : [p];
          for (const text of parts) yield { ...base, itemIndex: itemIndex++, text };
        }
      }
      docIndex++;
    }
  }

  return {
    name,
    identity,
    dataDir: root,
    files,
    options,
    [Symbol.asyncIterator]: () => items(),
  };
}
