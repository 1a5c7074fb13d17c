/**
 * Command-line value parsing shared by the subcommands: every count, index and choice is checked before a model
 * loads, so a typo fails in milliseconds with the flag named (never "layer NaN" or a silent empty run).
 */
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
