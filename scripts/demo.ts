/**
 * `npm run demo`: the bundled fact model in a few seconds — generation, next-token probabilities of a known fact,
 * and a first causal trace (MLP states) of that fact, printed as a small text heatmap.
 * Usage: npm run demo [-- <model-dir-or-hub-id>]
 */
import { loadModel } from '../lib/loadModel.js';
import { defaultModelSource } from '../lib/cli/defaults.js';
import { causalTrace } from '../lib/trace/index.js';
import { installErrorReporter } from '../lib/cli/exit.js';

// Uncaught errors print one readable line (not the WASM module's minified source).
installErrorReporter('demo');

const source = process.argv[2] ?? defaultModelSource();
const t0 = performance.now();
const model = await loadModel(source);
const say = (s = '') => process.stdout.write(s + '\n');
say(`model ${model.name}: ${model.config.nLayer} layers, d=${model.config.nEmbd}, vocab ${model.config.vocabSize}, ` +
  `${(model.params.count() / 1e6).toFixed(2)}M parameters (loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);

say('\n== generation (greedy)');
for (const p of ['The Eiffel Tower is located in the city of', 'Danielle Darrieux speaks the language', 'It was a dark and stormy night, and']) {
  say(`  ${JSON.stringify(await model.generate(p, { maxNewTokens: 12 }))}`);
}

const prompt = 'Vinson Massif is located in the continent of';
const subject = 'Vinson Massif';
// The paper's 10-layer window suits 48-layer models; a 6-layer model needs a narrower one.
const window = model.config.nLayer >= 24 ? 10 : 2;
say(`\n== next-token probabilities after ${JSON.stringify(prompt)}`);
for (const t of model.topTokens(prompt, 5)) say(`  ${(t.prob * 100).toFixed(1).padStart(5)}%  ${JSON.stringify(t.token)}`);

say(`\n== causal trace (MLP, window ${window}, 10 noise samples) of subject ${JSON.stringify(subject)}`);
const t1 = performance.now();
const tr = await causalTrace(model, { prompt, subject, kind: 'mlp', window, samples: 10, seed: 0 });
say(`  answer ${JSON.stringify(tr.answer.token)}: p* = ${tr.pStar.toFixed(3)}, corrupted p_low = ${tr.pLow.toFixed(3)} ` +
  `(${((performance.now() - t1) / 1000).toFixed(1)} s)`);
const shades = ' .:-=+*#%@';
const max = Math.max(...tr.scores.flat());
const span = Math.max(max - tr.pLow, 1e-9);
say(`  ${''.padEnd(18)} layer 0${' '.repeat(Math.max(0, model.config.nLayer - 8))} ${model.config.nLayer - 1}`);
tr.tokens.forEach((tok, i) => {
  const star = i >= tr.subjectRange.start && i < tr.subjectRange.end ? '*' : ' ';
  const row = tr.scores[i].map((s) => shades[Math.min(9, Math.max(0, Math.round(((s - tr.pLow) / span) * 9)))]).join('');
  say(`  ${(JSON.stringify(tok) + star).padEnd(18)} |${row}|  max ${Math.max(...tr.scores[i]).toFixed(3)}`);
});
say(`\n(darker = restoring that MLP state recovers more of p*; * = subject token)`);
say(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
model.dispose();
