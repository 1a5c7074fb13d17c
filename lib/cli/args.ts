/**
 * Command-line value parsing shared by the subcommands: every count, index and choice is checked before a model
 * loads, so a typo fails in milliseconds with the flag named (never "layer NaN" or a silent empty run).
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from './inspectCommand.js';

/** An integer flag >= min (default 1): "abc", "2.7", "-5" and "" are refused; undefined gives `dflt`. */
export function parseIntFlag(name: string, v: string | undefined, dflt: number, min?: number): number;
export function parseIntFlag(name: string, v: string | undefined, dflt: undefined, min?: number): number | undefined;
export function parseIntFlag(name: string, v: string | undefined, dflt: number | undefined, min = 1): number | undefined {
  if (v === undefined) return dflt;
  const x = /^[+-]?\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(x) || x < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${v}"`);
  return x;
}

/** A flag that must be one of `choices`. */
export function parseChoice<T extends string>(name: string, v: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(v)) throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got "${v}"`);
  return v as T;
}

/**
 * Checks an output file flag before any computation: the extension is one of `exts` (".json", ...), and an existing
 * file is refused unless `force` (a long run must not end by silently replacing a user's file).
 */
export function checkOutFile(flag: string, file: string, exts: readonly string[], force: boolean): void {
  if (!exts.some((e) => file.toLowerCase().endsWith(e))) throw new UsageError(`--${flag} must end in ${exts.join(' or ')}, got "${file}"`);
  if (!force && existsSync(file)) throw new UsageError(`--${flag} ${file} already exists; pass --force to overwrite it`);
  const dir = path.dirname(path.resolve(file));
  if (!existsSync(dir)) throw new UsageError(`--${flag} ${file}: directory ${dir} does not exist`);
}

/** Writes a file through a temporary name and a rename, so an interrupted write never leaves half a file. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}
