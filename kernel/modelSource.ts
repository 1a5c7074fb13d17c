/**
 * Which model the kernel loads at start: `ROME_TS_MODEL` (a local directory or a hub id; "none" disables
 * loading), else the bundled `models/rome-fact-gpt2/` when the package has it, else the test fixture
 * `test/fixtures/tiny-gpt2` (a random 3-layer model without a tokenizer) so the kernel still has a model to poke at.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';

/** The chosen model source and why it was chosen. */
export interface ModelSource {
  /** Directory path or hub id passed to loadModel; null when loading is disabled. */
  source: string | null;
  /** Human-readable origin of the choice (for messages). */
  origin: 'ROME_TS_MODEL' | 'bundled' | 'test fixture' | 'disabled' | 'none found';
}

/** Resolve the default model source for a kernel started from `cwd`, with rome-ts installed at `pkgRoot`. */
export function resolveModelSource(pkgRoot: string, env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): ModelSource {
  const fromEnv = env.ROME_TS_MODEL?.trim();
  if (fromEnv) {
    if (fromEnv.toLowerCase() === 'none') return { source: null, origin: 'disabled' };
    // A relative path that exists is a directory (relative to the notebook); anything else is a hub id.
    const local = isAbsolute(fromEnv) ? fromEnv : resolve(cwd, fromEnv);
    return { source: existsSync(local) ? local : fromEnv, origin: 'ROME_TS_MODEL' };
  }
  const bundled = join(pkgRoot, 'models', 'rome-fact-gpt2');
  if (existsSync(join(bundled, 'config.json'))) return { source: bundled, origin: 'bundled' };
  const fixture = join(pkgRoot, 'test', 'fixtures', 'tiny-gpt2');
  if (existsSync(join(fixture, 'config.json'))) return { source: fixture, origin: 'test fixture' };
  return { source: null, origin: 'none found' };
}
