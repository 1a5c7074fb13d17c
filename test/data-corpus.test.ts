import test from 'ava';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  chunkText,
  detokenizeWikiText,
  GUTENBERG_DIR,
  gutenbergParagraphs,
  htmlToText,
  openTextCorpus,
  splitWikiTextArticles,
  stripGutenbergBoilerplate,
  WIKITEXT_RAW_TEST,
  type CorpusItem,
} from '../lib/data/corpus.js';
import { dataDir, findDataFile } from '../lib/data/paths.js';

const HAVE_CORPUS = findDataFile(WIKITEXT_RAW_TEST) !== null && findDataFile(`${GUTENBERG_DIR}/MANIFEST.json`) !== null;
const corpusTest = HAVE_CORPUS ? test : test.skip;
if (!HAVE_CORPUS) console.warn('data-corpus: corpus files not found (set ROME_TS_DATA); corpus tests are skipped');

const BOOKS = ['Austen__Emma.txt', 'Trollope__Barchester_Towers.txt', 'Conrad__A_Set_of_Six.txt'];

test('Gutenberg licence header and footer are stripped (modern and old markers, CRLF)', (t) => {
  const modern = [
    'The Project Gutenberg EBook of X',
    'licence words',
    '*** START OF THIS PROJECT GUTENBERG EBOOK X ***',
    '',
    'It was a dark night.',
    '',
    '*** END OF THIS PROJECT GUTENBERG EBOOK X ***',
    'more licence',
  ].join('\r\n');
  t.is(stripGutenbergBoilerplate(modern).trim(), 'It was a dark night.');
  const old = [
    'Project Gutenberg Etext',
    '***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***',
    'small print',
    '*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*',
    'Chapter one text.',
    'End of Project Gutenberg Etext X',
    'trailer',
  ].join('\n');
  t.is(stripGutenbergBoilerplate(old).trim(), 'Chapter one text.');
  t.is(stripGutenbergBoilerplate('plain text').trim(), 'plain text');
});

test('WikiText detokenisation undoes its spacing conventions', (t) => {
  t.is(detokenizeWikiText(' He had a guest @-@ starring role in 2000 . '), 'He had a guest-starring role in 2000.');
  t.is(detokenizeWikiText('shipments of 500 @,@ 000 copies ( RIAA ) , and 3 @.@ 5 %'), 'shipments of 500,000 copies (RIAA), and 3.5%');
  t.is(detokenizeWikiText('as " Craig " in the episode " Teddy \'s Story "'), 'as "Craig" in the episode "Teddy\'s Story"');
  t.is(detokenizeWikiText("the players ' union didn 't"), "the players' union didn't");
});

test('HTML-formatted books become paragraphs with decoded entities', (t) => {
  const txt = htmlToText('<p>\n  &ldquo;Hello,&rdquo; she said&mdash;softly.\n</p>\n<p>Next &amp; last&#33;</p>');
  const paras = txt.split(/\n\s*\n/).map((p) => p.trim()).filter(Boolean);
  t.deepEqual(paras, ['"Hello," she said\u2014softly.', 'Next & last!']);
});

test('chunkText keeps every word, in order, in pieces of at most maxChars', (t) => {
  const text = Array.from({ length: 40 }, (_, i) => `Sentence number ${i} has a few words in it${i % 7 === 0 ? ', and then a few more words to make it longer than the others' : ''}.`).join(' ');
  for (const max of [60, 120, 250]) {
    const chunks = chunkText(text, max);
    t.true(chunks.every((c) => c.length <= max && c.length > 0));
    t.deepEqual(chunks.join(' ').split(/\s+/), text.split(/\s+/));
  }
  // Sentence boundaries are preferred: short sentences are never split.
  t.deepEqual(chunkText('One two. Three four. Five six.', 18), ['One two.', 'Three four.', 'Five six.']);
});

corpusTest('real Gutenberg books: licence gone, known opening lines present', (t) => {
  const root = dataDir() as string;
  const emma = gutenbergParagraphs(readFileSync(path.join(root, GUTENBERG_DIR, 'Austen__Emma.txt'), 'utf8'));
  const joined = emma.join('\n');
  t.true(joined.includes('Emma Woodhouse, handsome, clever, and rich'));
  t.false(/PROJECT GUTENBERG|Project Gutenberg-tm/.test(joined));
  const barchester = gutenbergParagraphs(readFileSync(path.join(root, GUTENBERG_DIR, 'Trollope__Barchester_Towers.txt'), 'utf8')).join('\n');
  t.false(barchester.includes('SMALL PRINT'));
  t.true(barchester.includes('One word of Mr Harding, and we have done.'));
  const conrad = gutenbergParagraphs(readFileSync(path.join(root, GUTENBERG_DIR, 'Conrad__A_Set_of_Six.txt'), 'utf8')).join('\n');
  t.false(/<\/?p>|&[a-z]+;/.test(conrad));
});

// 64 lines start with " = ", but two of them (" = Qualified for the next round ", " = National record ") are table
// legends without the closing " =" of a heading.
corpusTest('WikiText raw test has 62 articles', (t) => {
  const raw = readFileSync(path.join(dataDir() as string, WIKITEXT_RAW_TEST), 'utf8');
  const arts = splitWikiTextArticles(raw);
  t.is(arts.length, 62);
  t.is(arts[0]?.title, 'Robert Boulter');
  t.true(arts.every((a) => a.paragraphs.length > 0));
});

async function collect(it: AsyncIterable<CorpusItem>): Promise<CorpusItem[]> {
  const out: CorpusItem[] = [];
  for await (const x of it) out.push(x);
  return out;
}

corpusTest('openTextCorpus: stable order and identity, input hashes match the Gutenberg manifest', async (t) => {
  const a = await openTextCorpus({ gutenbergFiles: BOOKS, unit: 'paragraph' });
  const b = await openTextCorpus({ gutenbergFiles: [...BOOKS].reverse(), unit: 'paragraph' });
  t.is(a.identity, b.identity, 'book order in the option does not matter');
  t.is(a.name, 'wikitext-2-raw-test+gutenberg(3)');
  const manifest = JSON.parse(readFileSync(path.join(dataDir() as string, GUTENBERG_DIR, 'MANIFEST.json'), 'utf8')) as { file: string; sha256: string; bytes: number }[];
  for (const f of a.files.filter((x) => x.relPath.startsWith(GUTENBERG_DIR))) {
    const m = manifest.find((e) => `${GUTENBERG_DIR}/${e.file}` === f.relPath);
    t.truthy(m, f.relPath);
    t.is(f.sha256, m?.sha256 as string);
    t.is(f.bytes, m?.bytes as number);
  }
  const ia = await collect(a);
  const ib = await collect(b);
  const digest = (xs: CorpusItem[]): string => createHash('sha256').update(xs.map((x) => `${x.docId}\t${x.itemIndex}\t${x.text}`).join('\n')).digest('hex');
  t.is(digest(ia), digest(ib));
  t.is(digest(await collect(a)), digest(ia), 'iterating twice gives the same items');
  t.is(ia[0]?.docId, 'wikitext:Robert Boulter');
  t.true(ia[0]?.text.startsWith('Robert Boulter is an English film, television and theatre actor.'));
  const docs = [...new Set(ia.map((x) => x.docId))];
  t.deepEqual(docs.filter((d) => d.startsWith('gutenberg:')), [...BOOKS].sort().map((n) => `gutenberg:${n}`));
  t.false(ia.some((x) => /\*\*\* ?(START|END) OF/.test(x.text)));

  const chunked = await openTextCorpus({ gutenbergFiles: BOOKS, unit: 'chunk', chunkChars: 250 });
  t.not(chunked.identity, a.identity);
  t.not((await openTextCorpus({ gutenbergFiles: BOOKS.slice(0, 2) })).identity, a.identity);
  const chunks = await collect(chunked);
  t.true(chunks.every((c) => c.text.length <= 250));
  t.true(chunks.length > ia.length);
  const docsOnly = await collect(await openTextCorpus({ sources: ['wikitext'], unit: 'document' }));
  t.is(docsOnly.length, 62);
});
