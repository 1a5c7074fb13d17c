/**
 * Small seeded PRNG (mulberry32) with a normal sampler, for reproducible initialisation and data order.
 *
 * The whole generator state is one uint32, so `createRng(rng.state())` continues the exact same stream: that is
 * what training checkpoints store. The normal sampler draws two uniforms per call and keeps no spare value, so
 * no hidden state survives between calls.
 */

/** A deterministic random stream; see the module comment. */
export interface Rng {
  /** Uniform float in [0, 1) with 32 bits of randomness. */
  next(): number;
  /** Standard normal (mean 0, std 1), Box-Muller. */
  normal(): number;
  /** Uniform integer in [0, n), n a positive integer < 2^32. */
  int(n: number): number;
  /** Fisher-Yates shuffle of `a` in place; returns `a`. */
  shuffle<T>(a: T[]): T[];
  /** The current uint32 state; `createRng(state)` resumes the stream from here. */
  state(): number;
}

/** Creates a generator from a seed (any finite number; taken mod 2^32). Same seed, same stream. */
export function createRng(seed: number): Rng {
  if (!Number.isFinite(seed)) throw new Error(`createRng: seed must be a finite number, got ${seed}`);
  let s = Math.trunc(seed) >>> 0;
  const nextU32 = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const next = (): number => nextU32() / 4294967296;
  return {
    next,
    normal(): number {
      // 1 - u keeps the log argument in (0, 1].
      const u1 = 1 - next();
      const u2 = next();
      return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    },
    int(n: number): number {
      if (!Number.isInteger(n) || n <= 0 || n > 0xffffffff) throw new Error(`Rng.int: n must be a positive integer, got ${n}`);
      return Math.floor(next() * n);
    },
    shuffle<T>(a: T[]): T[] {
      for (let i = a.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        const tmp = a[i] as T;
        a[i] = a[j] as T;
        a[j] = tmp;
      }
      return a;
    },
    state: () => s,
  };
}

/** Mixes several integers into one uint32 seed (for derived streams such as "seed, epoch 3"). */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h = Math.imul(h ^ (Math.trunc(p) >>> 0), 0x01000193) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0x5bd1e995) >>> 0;
    h ^= h >>> 15;
  }
  return h >>> 0;
}
