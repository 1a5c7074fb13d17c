import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { renderVegaLiteSvg } from '../lib/display/render.js';
import { runTraceCommand, formatTraceTable } from '../lib/cli/traceCommand.js';
import {
  aieHeatmapSpec,
  aieLineSpec,
  averageIndirectEffect,
  causalTrace,
  severedSpec,
  severedTrace,
  traceHeatmapSpec,
  tracePanelsSpec,
  tokenLabels,
  tracePrompt,
} from '../lib/trace/index.js';
import { randomTextModel, writeRandomTextModel } from './helpers/traceModels.js';

const PROMPT = 'The Eiffel Tower is located in the city of';
const SUBJECT = 'Eiffel Tower';

test('tokenLabels stars subject tokens and shows whitespace', (t) => {
  t.deepEqual(tokenLabels(['The', ' E', 'iff', '\n'], { start: 1, end: 3 }), ['The', ' E*', 'iff*', '\\n']);
});

test('every figure spec compiles and renders to SVG; heatmap data carries the exact numbers', async (t) => {
  const m = await randomTextModel({ nLayer: 3, nEmbd: 32, scale: 60 });
  const o = { prompt: PROMPT, subject: SUBJECT, noise: 3, samples: 2 };
  const r = await tracePrompt(m, o);
  const hidden = r.results.hidden!;
  const spec = traceHeatmapSpec(hidden);
  const values = (spec.data as { values: { row: number; layer: number; score: number }[] }).values;
  t.is(values.length, hidden.tokens.length * 3);
  const v = values.find((x) => x.row === 2 && x.layer === 1)!;
  t.is(v.score, hidden.scores[2][1]);
  t.deepEqual((spec.encoding as { color: { scale: { domain: number[] } } }).color.scale.domain[0], hidden.pLow);
  const avg = await averageIndirectEffect(m, [{ prompt: PROMPT, subject: SUBJECT, attribute: m.topTokens(PROMPT, 1)[0].token }], { ...o, severed: true });
  const sev = await severedTrace(m, o);
  for (const s of [spec, tracePanelsSpec([r.results.hidden!, r.results.mlp!, r.results.attn!]), aieLineSpec(avg), aieHeatmapSpec(avg), severedSpec(sev), severedSpec(avg.severed!)]) {
    const svg = await renderVegaLiteSvg(s);
    t.true(svg.startsWith('<svg'), svg.slice(0, 80));
  }
  t.regex(formatTraceTable(hidden), /E\*/);
  const one = await causalTrace(m, { ...o, kind: 'attn' });
  t.is(one.window, 10);
  t.is(one.kind, 'attn');
});

test('rome-ts trace writes an SVG and a JSON result', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rome-ts-tracecli-'));
  try {
    const modelDir = path.join(dir, 'model');
    await writeRandomTextModel(modelDir, { nLayer: 2, nEmbd: 16 });
    const svg = path.join(dir, 'fig.svg');
    const json = path.join(dir, 'fig.json');
    const base = [PROMPT, '--subject', SUBJECT, '--model', modelDir, '--noise', '1', '--samples', '2'];
    t.is(await runTraceCommand([...base, '--out', svg]), 0);
    t.true((await readFile(svg, 'utf8')).startsWith('<svg'));
    t.is(await runTraceCommand([...base, '--kind', 'mlp', '--out', json]), 0);
    const parsed = JSON.parse(await readFile(json, 'utf8')) as { results: { kind: string; scores: number[][] }[] };
    t.is(parsed.results.length, 1);
    t.is(parsed.results[0].kind, 'mlp');
    t.is(parsed.results[0].scores[0].length, 2);
    await t.throwsAsync(() => runTraceCommand([PROMPT, '--model', modelDir]), { message: /--subject/ });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
