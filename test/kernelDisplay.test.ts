import test from 'ava';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { display, plot, renderVegaLiteSvg, setDisplayWriter, tensorStats, VEGA_LITE_MIME, type DisplayMessage } from '../lib/display/index.js';

const require = createRequire(import.meta.url);

function capture(): { msgs: { msg: DisplayMessage; update: boolean }[]; restore: () => void } {
  const msgs: { msg: DisplayMessage; update: boolean }[] = [];
  setDisplayWriter((msg, update) => msgs.push({ msg, update }));
  return { msgs, restore: () => setDisplayWriter(undefined) };
}

test('tslab is pinned and still exposes the internals rome-ts relies on', (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };
  t.is(pkg.dependencies.tslab, '1.0.22', 'tslab must stay pinned: lib/display and kernel/ use its internals');
  t.is((require('tslab/package.json') as { version: string }).version, '1.0.22');
  const jupyter = require('tslab/dist/jupyter.js') as Record<string, unknown>;
  t.true('lastWriteDisplayData' in jupyter, 'tslab/dist/jupyter.js no longer exports lastWriteDisplayData');
  const impl = jupyter.JupyterHandlerImpl as { prototype: Record<string, unknown> };
  t.is(typeof impl.prototype.handleExecuteImpl, 'function', 'kernel/executeGate.ts wraps JupyterHandlerImpl.handleExecuteImpl');
  t.is(typeof impl.prototype.handleExecute, 'function', 'kernel/executeGate.ts wraps JupyterHandlerImpl.handleExecute');
  t.is(typeof impl.prototype.handleKernel, 'function', 'kernel/protocol.ts wraps JupyterHandlerImpl.handleKernel');
  const server = jupyter.ZmqServer as { prototype: Record<string, unknown> };
  for (const m of ['handleExecute', 'handleCommInfoRequest']) t.is(typeof server.prototype[m], 'function', `kernel/protocol.ts replaces ZmqServer.${m}`);
  const main = require('tslab/dist/main.js') as Record<string, unknown>;
  t.is(typeof main.startKernel, 'function');
  // kernel/typedGlobals.ts overlays these calls of the TypeScript instance tslab type-checks cells with.
  const ts = createRequire(require.resolve('tslab/package.json'))('@tslab/typescript-for-tslab') as { sys: Record<string, unknown> };
  for (const m of ['readFile', 'fileExists', 'directoryExists', 'getDirectories', 'realpath', 'getCurrentDirectory']) t.is(typeof ts.sys[m], 'function', `ts.sys.${m}`);
});

test('plot.heatmap keeps input order and duplicate labels, one datum per cell', (t) => {
  const spec = plot.heatmap(
    [
      [1, 2, 3],
      [4, 5, 6],
    ],
    { rowLabels: ['a', 'a'], colLabels: ['x', 'y', 'x'], title: 'T' },
  );
  const values = (spec.data as { values: { r: number; c: number; value: number }[] }).values;
  t.is(values.length, 6);
  t.deepEqual(values[4], { r: 1, c: 1, value: 5 });
  t.is(spec.title, 'T');
  t.throws(() => plot.heatmap([[1, 2], [3]]), { message: /rectangular/ });
  t.throws(() => plot.heatmap([[1, 2]], { colLabels: ['a'] }), { message: /colLabels/ });
  const withNaN = plot.heatmap([[NaN, 1]], { showValues: false });
  t.is((withNaN.data as { values: { value: number | null }[] }).values[0]!.value, null);
});

test('heatmap renders to an SVG with one rect mark per cell', async (t) => {
  const svg = await renderVegaLiteSvg(plot.heatmap([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]], { showValues: false }));
  t.true(svg.startsWith('<svg'));
  const group = /<g class="mark-rect role-mark[^"]*"[^>]*>(.*?)<\/g>/s.exec(svg);
  t.truthy(group, 'no rect mark group in the SVG');
  t.is((group![1]!.match(/<path /g) ?? []).length, 12);
});

test('plot.line with named series renders one line per series', async (t) => {
  const spec = plot.line({ a: [1, 2, 3], b: [3, 2, 1] }, { x: ['p', 'q', 'r'], points: false });
  t.is((spec.data as { values: unknown[] }).values.length, 6);
  const svg = await renderVegaLiteSvg(spec);
  const lines = [...svg.matchAll(/<g class="mark-line role-mark[^"]*"[^>]*>(.*?)<\/g>/gs)];
  t.is(lines.length, 2, 'one line mark per series');
  t.true(lines.every((m) => (m[1]!.match(/<path /g) ?? []).length === 1));
  t.throws(() => plot.line({ a: [1], b: [1, 2] }), { message: /series "b"/ });
});

test.serial('display.vegaLite sends ONE message holding the spec, an SVG and text', async (t) => {
  const { msgs, restore } = capture();
  try {
    const spec = plot.bar(['a', 'b'], [1, 2], { title: 'bars' });
    await display.vegaLite(spec);
    t.is(msgs.length, 1);
    const { msg, update } = msgs[0]!;
    t.false(update);
    t.deepEqual(Object.keys(msg.data).sort(), ['application/vnd.vegalite.v5+json', 'image/svg+xml', 'text/plain']);
    t.is(msg.data[VEGA_LITE_MIME], spec, 'the spec travels as an object, not a string');
    t.regex(msg.data['image/svg+xml'] as string, /^<svg[\s\S]*<\/svg>$/);
    t.regex(msg.data['text/plain'] as string, /bars/);
  } finally {
    restore();
  }
});

test.serial('display.heatmap accepts a tensor-like and drops leading size-1 axes', async (t) => {
  const { msgs, restore } = capture();
  try {
    const handle = { name: 'blocks.0', shape: [1, 2, 2], dtype: 'float32', array: async () => [[[1, 2], [3, 4]]] };
    await display.heatmap(handle, { rowLabels: ['r0', 'r1'] });
    t.is(msgs.length, 1);
    const spec = msgs[0]!.msg.data[VEGA_LITE_MIME] as { title: string; data: { values: unknown[] } };
    t.is(spec.title, 'blocks.0');
    t.is(spec.data.values.length, 4);
    await t.throwsAsync(display.heatmap({ shape: [2, 2, 2], array: async () => [] }), { message: /2-D/ });
  } finally {
    restore();
  }
});

test.serial('display.tensor summarises name, shape and statistics', async (t) => {
  const { msgs, restore } = capture();
  try {
    await display.tensor({ name: 'logits', shape: [2, 3], dtype: 'float32', array: async () => [[1, 2, 3], [4, 5, 6]] });
    const text = msgs[0]!.msg.data['text/plain'] as string;
    t.regex(text, /^logits {2}shape \[2, 3\] {2}float32 {2}\(6 values\)/);
    t.regex(text, /min 1 {2}max 6 {2}mean 3\.5 {2}std 1\.708/); // population std of 1..6 = sqrt(35/12)
    t.regex(text, /\[0, :3\] = \[1, 2, 3\]/);
  } finally {
    restore();
  }
  const s = tensorStats([1, NaN, 3]);
  t.is(s.count, 2);
  t.is(s.nonFinite, 1);
  t.is(s.mean, 2);
});

test.serial('progress updates one display in place', (t) => {
  const { msgs, restore } = capture();
  try {
    const p = display.progress({ label: 'trace', total: 4, minIntervalMs: 0 });
    p.onProgress({ done: 1, total: 4 });
    p.onProgress(2);
    p.done();
    t.true(msgs.length >= 3);
    t.false(msgs[0]!.update);
    t.true(msgs.slice(1).every((m) => m.update));
    const ids = new Set(msgs.map((m) => m.msg.transient.display_id));
    t.is(ids.size, 1);
    t.truthy([...ids][0]);
    t.regex(msgs.at(-1)!.msg.data['text/plain'] as string, /100% 4\/4/);
  } finally {
    restore();
  }
});

test.serial('outside a kernel, display falls back to printed text', async (t) => {
  setDisplayWriter(null);
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    await display.vegaLite(plot.line([1, 2, 3], { title: 'fallback' }));
  } finally {
    console.log = orig;
    setDisplayWriter(undefined);
  }
  t.is(lines.length, 1);
  t.regex(lines[0]!, /Vega-Lite figure "fallback"/);
});

test.serial('in a kernel, library progress bars and log lines share one updating activity output; plain Node keeps stderr', async (t) => {
  const { progressBar } = await import('../lib/progress.js');
  const { logLine } = await import('../lib/log.js');
  const stderr: string[] = [];
  const realWrite = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => (stderr.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    const { msgs, restore } = capture();
    try {
      const a = progressBar('layerStats L1', { intervalMs: 0 });
      const b = progressBar('download f', { intervalMs: 0 });
      a.update(5, 10);
      logLine('rome-ts: downloading x -> y');
      b.update(1, 2);
      a.done();
      b.done();
      await new Promise((r) => setTimeout(r, 300)); // the trailing (throttled) update
    } finally {
      restore();
    }
    t.deepEqual(stderr, [], 'nothing may reach stderr inside a kernel');
    const ids = new Set(msgs.map((m) => m.msg.transient.display_id));
    t.is(ids.size, 1, 'one output for every bar and log line of the cell');
    t.false(msgs[0]!.update);
    t.true(msgs.slice(1).every((m) => m.update), 'later messages update the same output in place');
    const last = String(msgs.at(-1)!.msg.data['text/plain']);
    const lines = last.split('\n');
    t.is(lines.length, 3, last);
    t.regex(lines[0]!, /^layerStats L1 done: 5 in/);
    t.regex(lines[1]!, /^download f done: 1 in/);
    t.is(lines[2], 'rome-ts: downloading x -> y');
    setDisplayWriter(null); // plain Node
    try {
      const c = progressBar('plain', { tty: false, intervalMs: 0 });
      c.update(1, 2);
      c.done();
      logLine('a log line');
    } finally {
      setDisplayWriter(undefined);
    }
    t.deepEqual(stderr, ['plain  50.0% 1/2\n', 'plain done: 1 in 0s\n', 'a log line\n'], stderr.join(''));
  } finally {
    process.stderr.write = realWrite;
  }
});

test('display.progress bars line up: labels padded to one column', (t) => {
  const { msgs, restore } = capture();
  try {
    for (const label of ['rome', 'ft-l']) display.progress({ label, total: 2 }).done();
  } finally {
    restore();
  }
  const texts = msgs.map((m) => String(m.msg.data['text/plain']));
  t.is(texts[0]!.indexOf('['), texts.at(-1)!.indexOf('['));
  t.regex(String(msgs[0]!.msg.data['text/html']), /min-width:\d+ch/);
});
