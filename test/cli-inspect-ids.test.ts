import test from 'ava';
import { runInspectCommand } from '../lib/cli/inspectCommand.js';
import { maxAbsDiff } from './helpers/fixture.js';
import { FAMILY_FIXTURES, familyDir, familyExpected } from './helpers/families.js';

/** Runs inspect in this process and returns what it printed. */
async function inspect(args: string[]): Promise<string> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string | Uint8Array) => {
    chunks.push(typeof s === 'string' ? s : Buffer.from(s).toString());
    return true;
  }) as typeof process.stdout.write;
  try {
    const code = await runInspectCommand(args);
    if (code !== 0) throw new Error(`exit ${code}`);
  } finally {
    process.stdout.write = write;
  }
  return chunks.join('');
}

test.serial('inspect --ids --json prints the reference last-position logits for every family fixture', async (t) => {
  for (const name of FAMILY_FIXTURES) {
    const exp = familyExpected(name);
    const out = JSON.parse(await inspect([familyDir(name), '--ids', exp.ids.join(','), '--json', '--top', '3'])) as {
      ids: number[];
      tokens: string[];
      logits: number[];
      topk: { id: number; logit: number }[];
    };
    t.deepEqual(out.ids, exp.ids);
    t.deepEqual(out.tokens, exp.ids.map(String), 'no tokenizer: tokens are the ids');
    const ref = exp.logits[exp.logits.length - 1]!;
    const d = maxAbsDiff(out.logits, ref);
    t.true(d < 1e-4, `${name}: max |logit diff| ${d}`);
    t.is(out.topk[0]!.id, ref.indexOf(Math.max(...ref)));
  }
});

test.serial('inspect rejects --ids with --prompt, malformed ids and out-of-range ids', async (t) => {
  const dir = familyDir('tiny-llama');
  await t.throwsAsync(() => inspect([dir, '--ids', '1,2', '--prompt', 'x']), { message: /exactly one of/ });
  await t.throwsAsync(() => inspect([dir, '--ids', '1,a']), { message: /comma-separated token ids/ });
  await t.throwsAsync(() => inspect([dir, '--ids', '1,64']), { message: /out of range \[0, 64\)/ });
  await t.throwsAsync(() => inspect([dir, '--prompt', 'hello']), { message: /no tokenizer\.json \(pass --ids instead\)/ });
});
