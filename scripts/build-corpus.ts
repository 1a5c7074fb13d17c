/**
 * Builds the bundled model's training corpus (facts + general text) into an ignored folder.
 *
 *   npx tsx scripts/build-corpus.ts [--data DIR] [--out build/corpus] [--seed 1] [--fact-chars N]
 *       [--general-chars N] [--valid-chars N] [--cf-cases 600] [--tokens 1500000] [--chars-per-token 4]
 *       [--fact-share 0.65] [--max-templates 6] [--appositive-share 0] [--second-mention-share 0]
 *       [--synthetic-people 0] [--synthetic-share 0.3] [--synthetic-extra 2] [--synthetic-bios 6]
 *       [--synthetic-pronoun-share 0.6] [--synthetic-appositive-share 0.3] [--synthetic-question-share 0.25]
 *       [--cover-objects 0]
 *
 * Writes train.txt, valid-general.txt, tokenizer-input.txt, facts.json and manifest.json (see lib/data/factCorpus.ts
 * for the design) and prints the budget arithmetic.
 */
import path from 'node:path';
import { buildFactCorpus, writeFactCorpus, type FactCorpusOptions } from '../lib/data/factCorpus.js';
import { installErrorReporter } from '../lib/cli/exit.js';

// Uncaught errors print one readable line (not the WASM module's minified source).
installErrorReporter('build-corpus');

function usage(msg: string): never {
  process.stderr.write(
    `${msg}\nusage: build-corpus [--data DIR] [--out build/corpus] [--seed 1] [--fact-chars N] [--general-chars N] ` +
      '[--valid-chars N] [--cf-cases N] [--tokens N] [--chars-per-token X] [--fact-share X] [--max-templates N] ' +
      '[--appositive-share X] [--second-mention-share X] [--synthetic-people N] [--synthetic-share X] [--synthetic-extra N] ' +
      '[--synthetic-bios N] [--synthetic-pronoun-share X] [--synthetic-appositive-share X] [--synthetic-question-share X] ' +
      '[--cover-objects N]\n',
  );
  process.exit(2);
}

function parseArgs(argv: string[]): { out: string; opts: FactCorpusOptions } {
  const opts: FactCorpusOptions = {};
  let out = 'build/corpus';
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) usage(`missing value for ${flag}`);
      return v;
    };
    const num = (): number => {
      const v = Number(value());
      if (!Number.isFinite(v) || v < 0) usage(`bad number for ${flag}`);
      return v;
    };
    const share = (): number => {
      const v = num();
      if (v > 1) usage(`${flag} must be a share in [0, 1], got ${v}`);
      return v;
    };
    const count = (): number => {
      const v = num();
      if (!Number.isInteger(v)) usage(`${flag} must be a whole number, got ${v}`);
      return v;
    };
    switch (flag) {
      case '--data':
        opts.dataDir = path.resolve(value());
        break;
      case '--out':
        out = value();
        break;
      case '--seed':
        opts.seed = num();
        break;
      case '--fact-chars':
        opts.factChars = num();
        break;
      case '--general-chars':
        opts.generalChars = num();
        break;
      case '--valid-chars':
        opts.validChars = num();
        break;
      case '--cf-cases':
        opts.counterfactCases = num();
        break;
      case '--tokens':
        opts.targetTokens = num();
        break;
      case '--chars-per-token':
        opts.charsPerToken = num();
        break;
      case '--fact-share':
        opts.factShare = num();
        break;
      case '--max-templates':
        opts.maxTemplatesPerFact = num();
        break;
      case '--appositive-share':
        opts.appositiveShare = share();
        break;
      case '--second-mention-share':
        opts.secondMentionShare = share();
        break;
      case '--synthetic-people':
        opts.syntheticPeople = count();
        break;
      case '--synthetic-share':
        opts.syntheticShare = share();
        break;
      case '--synthetic-extra':
        opts.syntheticExtraAttributes = count();
        break;
      case '--synthetic-bios':
        opts.syntheticBiographies = count();
        break;
      case '--synthetic-pronoun-share':
        opts.syntheticPronounShare = share();
        break;
      case '--synthetic-appositive-share':
        opts.syntheticAppositiveShare = share();
        break;
      case '--synthetic-question-share':
        opts.syntheticQuestionShare = share();
        break;
      case '--cover-objects':
        opts.coverObjects = count();
        break;
      case '--help':
      case '-h':
        usage('');
        break;
      default:
        usage(`unknown argument ${flag}`);
    }
  }
  return { out, opts };
}

const { out, opts } = parseArgs(process.argv.slice(2));
const t0 = Date.now();
const log = (m: string): void => void process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}\n`);
const corpus = await buildFactCorpus({ ...opts, log });
const command = ['npx tsx scripts/build-corpus.ts', ...process.argv.slice(2)].join(' ');
const m = await writeFactCorpus(corpus, out, command);
const c = m.counts;
const b = m.budget;
const ch = m.chars;
const fmt = (n: number | undefined): string => (n ?? 0).toLocaleString('en-US');
const lines = [
  `corpus written to ${path.resolve(out)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  '',
  'facts',
  `  ${fmt(c['facts'])} facts: ${fmt(c['factsKnown'])} with a known_1000 prompt, ${fmt(c['factsCounterfactCase'])} CounterFact rewrite subjects, ` +
    `${fmt(c['factsCounterfactNeighbour'])} neighbourhood subjects (${fmt(c['counterfactCasesSelected'])} edit cases selected of ${fmt(c['counterfactCasesScanned'])} scanned)` +
    (m.options.coverObjects > 0
      ? `, ${fmt(c['factsCounterfactCoverage'])} coverage facts from the train split (${fmt(c['coveragePairsNeeded'])} uncovered (relation, object) pairs used ≥ ${m.options.coverObjects} times; ${fmt(c['coveragePairsWithoutSource'])} without a usable train-split fact)`
      : ''),
  `  skipped cases: ${JSON.stringify(m.skippedCases)}; dropped renderings: ${JSON.stringify(m.droppedRenderings)}`,
  `  real-fact exposures by rendering: ${JSON.stringify(m.renderings)}; synthetic population: ${JSON.stringify(m.synthetic)}`,
  `  ${fmt(c['relations'])} relations, ${fmt(c['templates'])} templates: ${fmt(c['templatesTrained'])} trained, ${fmt(c['templatesHeldOut'])} held out ` +
    `(in ${fmt(c['relationsWithHeldOut'])} relations; ${fmt(c['templatesSharedByRelations'])} templates belong to several relations)`,
  `  ${fmt(c['trainedPrompts'])} trained prompts, ${fmt(c['heldOutPrompts'])} held-out prompts over ${fmt(c['factsWithHeldOut'])} facts`,
  '',
  'budget',
  `  target ${fmt(b['targetTokens'])} tokens × ${b['charsPerToken']} chars/token = ${fmt((b['targetTokens'] ?? 0) * (b['charsPerToken'] ?? 0))} chars; ` +
    `fact share ${m.options.factShare} → ${fmt(m.options.factChars)} fact chars, ${fmt(m.options.generalChars)} general chars`,
  `  fact lines: ${fmt(c['factLines'])} (mean ${b['meanFactLineChars']} chars) = ${fmt(ch['factLines'])} chars ≈ ${fmt(b['estimatedFactTokens'])} tokens`,
  `  exposures: ${b['exposuresPerFact']} per fact (${fmt(c['facts'])} × ${b['exposuresPerFact']} = ${fmt(c['factLines'])} lines), ` +
    `${b['meanExposuresPerTrainedPrompt']} per trained prompt on average`,
  `  general text: ${fmt(c['generalTrainLines'])} lines, ${fmt(ch['generalTrain'])} chars; valid: ${fmt(c['validLines'])} lines, ${fmt(ch['valid'])} chars ` +
    `from ${fmt(c['validDocuments'])} held-out documents`,
  `  train.txt: ${fmt(c['trainLines'])} lines, ${fmt(ch['train'])} chars ≈ ${fmt(b['estimatedTrainTokens'])} tokens (fact share ${ch['factShareActual']})`,
  ...[1_200_000, 1_500_000, 1_800_000].map(
    (t) =>
      `  if training sees ${fmt(t)} tokens: ≈ ${(((b['exposuresPerFact'] ?? 0) * t) / Math.max(1, b['estimatedTrainTokens'] ?? 1)).toFixed(1)} exposures per fact`,
  ),
  `  tokenizer-input.txt: ${fmt(c['tokenizerLines'])} distinct lines, ${fmt(ch['tokenizerInput'])} chars`,
];
process.stdout.write(lines.join('\n') + '\n');
