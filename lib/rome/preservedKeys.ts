/**
 * An extension of ROME's step 3 (not in the paper): keys the update must leave unchanged.
 *
 * ROME's u = C⁻¹k* is the least C-weighted change of W that writes v* at k*. Any other key k receives the fraction
 * r = kᵀC⁻¹k* / k*ᵀC⁻¹k* of that change. When the keys of subjects that share an object share a direction (a small
 * model that stores each subject's one fact partly in its token embeddings), C⁻¹ cannot remove it, and editing one
 * subject moves the others that have the same true object (results/counterfact-table.md, "Why the neighbours move").
 * Adding the constraint ΔP = 0 for the keys P of other subjects the model knows with that object gives, by the same
 * least-squares argument, u ∝ C⁻¹k⊥ with k⊥ = k* − P (PᵀC⁻¹P)⁻¹ PᵀC⁻¹k*, the part of k* that is C⁻¹-orthogonal to
 * span(P). k* (or the right-vector key) still gets v* exactly; the preserved keys get nothing.
 *
 * Which subjects to preserve comes from a facts file (`preserveFacts`): a JSON array of { subject, object } (or an
 * object whose `facts` field is one, e.g. rome-ts's corpus facts.json), read once per path.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../data/paths.js';
import type { GPT2Model } from '../model/model.js';
import { keysAtSubject } from './computeKey.js';
import { choleskyInPlace, choleskySolve, type CovarianceSolver } from './covariance.js';
import { fillPrompt, type EditRequest } from './types.js';

/** One known fact: a subject and its (true) object. */
export interface PreservedFact {
  subject: string;
  object: string;
}

const cache = new Map<string, PreservedFact[]>();

/** Reads a facts file (relative paths against the package root); throws naming the file and the entry. */
export function loadPreservedFacts(file: string, field = 'preserveFacts'): PreservedFact[] {
  const root = repoRoot();
  const abs = path.isAbsolute(file) || !root ? path.resolve(file) : path.join(root, file);
  const hit = cache.get(abs);
  if (hit) return hit;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(abs, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`${field}: ${abs} ${err.code === 'ENOENT' ? 'does not exist' : `is not readable JSON (${err.message})`}`);
  }
  const list = Array.isArray(raw) ? raw : raw !== null && typeof raw === 'object' ? (raw as { facts?: unknown }).facts : undefined;
  if (!Array.isArray(list)) throw new Error(`${field}: ${abs} must hold an array of { subject, object } or an object with such a "facts" array`);
  const facts = list.map((f, i) => {
    const o = f as { subject?: unknown; object?: unknown };
    if (o === null || typeof o !== 'object' || typeof o.subject !== 'string' || typeof o.object !== 'string' || !o.subject.trim() || !o.object.trim()) {
      throw new Error(`${field}: ${abs} entry ${i} must have non-empty string "subject" and "object" fields`);
    }
    return { subject: o.subject, object: o.object };
  });
  cache.set(abs, facts);
  return facts;
}

/**
 * The facts whose keys an edit preserves: up to `count` facts with the request's true object, other subjects than
 * the edited one, in file order. Needs request.targetTrue.
 */
export function preservedFactsFor(facts: readonly PreservedFact[], request: EditRequest, count: number): PreservedFact[] {
  if (request.targetTrue === undefined) throw new Error('preserveFacts: the edit request has no targetTrue, so no subjects with the same object can be chosen');
  const object = request.targetTrue.trim();
  const seen = new Set<string>([request.subject]);
  const out: PreservedFact[] = [];
  for (const f of facts) {
    if (out.length >= count) break;
    if (f.object.trim() !== object || seen.has(f.subject) || f.subject.includes('{}')) continue;
    seen.add(f.subject);
    out.push(f);
  }
  return out;
}

/** The keys of `facts` at `layer`, each subject put into the request's prompt. */
export function preservedKeys(model: GPT2Model, layer: number, request: EditRequest, facts: readonly PreservedFact[]): Float32Array[] {
  if (facts.length === 0) return [];
  return keysAtSubject(
    model,
    layer,
    facts.map((f) => ({ text: fillPrompt(request.prompt, f.subject), subject: f.subject })),
  );
}

/** C⁻¹k⊥ and how much of k* survives the projection: ρ = k⊥ᵀC⁻¹k⊥ / k*ᵀC⁻¹k* (1 = nothing removed). */
export interface PreservedDirection {
  x: Float64Array;
  rho: number;
}

/**
 * C⁻¹k⊥ for k* and preserved keys P (see the module comment), in float64. Throws when k* lies (almost) in the span
 * of P (ρ < 1e-3): no rank-one update can then change k* without changing them.
 */
export function preservedDirection(solver: CovarianceSolver, kStar: ArrayLike<number>, keys: readonly ArrayLike<number>[]): PreservedDirection {
  const x = solver.solve(kStar);
  const n = x.length;
  const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
    let s = 0;
    for (let i = 0; i < n; i++) s += (a[i] as number) * (b[i] as number);
    return s;
  };
  const full = dot(kStar, x);
  if (keys.length === 0) return { x, rho: 1 };
  const m = keys.length;
  const xs = keys.map((k) => solver.solve(k));
  const g = new Float64Array(m * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) g[i * m + j] = dot(keys[i]!, xs[j]!);
  // Duplicate or parallel preserved keys make PᵀC⁻¹P singular; a ridge of 1e-9 of its mean diagonal keeps the
  // projection defined (it then removes their common direction once).
  let tr = 0;
  for (let i = 0; i < m; i++) tr += g[i * m + i]!;
  for (let i = 0; i < m; i++) g[i * m + i] = g[i * m + i]! + 1e-9 * (tr / m || 1);
  if (!choleskyInPlace(g, m)) throw new Error('preserveFacts: the preserved keys\' Gram matrix PᵀC⁻¹P is not positive definite');
  const a = choleskySolve(g, m, xs.map((xi) => dot(kStar, xi)));
  const out = Float64Array.from(x);
  for (let j = 0; j < m; j++) {
    const aj = a[j]!;
    const xj = xs[j]!;
    for (let i = 0; i < n; i++) out[i] = out[i]! - aj * xj[i]!;
  }
  // k⊥ᵀC⁻¹k⊥ = k⊥ᵀC⁻¹k* because C⁻¹k⊥ is C⁻¹-orthogonal to span(P).
  const rho = dot(kStar, out) / full;
  if (!(rho >= 1e-3)) {
    throw new Error(`preserveFacts: k* lies in the span of the ${m} preserved keys (ρ = ${rho.toExponential(2)}): the edit cannot leave them unchanged`);
  }
  return { x: out, rho };
}
