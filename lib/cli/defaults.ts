/**
 * Where the default model lives: $ROME_TS_MODEL, else the bundled model shipped in the package.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Name of the bundled model directory under models/. */
export const BUNDLED_MODEL = 'rome-fact-gpt2';

/** Repository / package root (works from lib/ sources and from dist/lib). */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

/** Path of the bundled model directory (may not exist in a fresh checkout before training). */
export function bundledModelDir(): string {
  return path.join(packageRoot(), 'models', BUNDLED_MODEL);
}

/** The model a command uses when none is named. */
export function defaultModelSource(): string {
  const env = process.env.ROME_TS_MODEL;
  if (env) return env;
  const dir = bundledModelDir();
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    throw new Error(`no model given and the bundled model is missing at ${dir}; pass a model directory or hub id, or set ROME_TS_MODEL`);
  }
  return dir;
}
