/**
 * Figure 5-style sweep: apply ROME at each layer to the same CounterFact cases and measure efficacy, paraphrase
 * and neighbourhood scores (and magnitudes) per layer. Each case is edited, evaluated and restored.
 */
import type { CounterFactRecord } from '../data/counterfact.js';
import type { GPT2Model } from '../model/model.js';
import { edit, type RomeEditOptions } from '../rome/index.js';
import type { RomeHparams } from '../rome/hparams.js';
import { evalCounterFactCase } from './counterfact.js';
import { counterFactRow, type SummaryRow } from './summarize.js';

/** One layer's row of the sweep. */
export interface SweepPoint {
  layer: number;
  row: SummaryRow;
}

/** Runs the sweep over `layers` (default all); `onProgress(layer, caseIndex)` after each case. */
export async function layerSweep(
  model: GPT2Model,
  records: readonly CounterFactRecord[],
  opts: { layers?: number[]; hparams?: Partial<RomeHparams>; romeOptions?: RomeEditOptions; onProgress?: (layer: number, i: number) => void } = {},
): Promise<SweepPoint[]> {
  const layers = opts.layers ?? Array.from({ length: model.config.nLayer }, (_, l) => l);
  const out: SweepPoint[] = [];
  for (const layer of layers) {
    const evals = [];
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      const h = await edit(model, { prompt: r.prompt, subject: r.subject, target: r.targetNew }, { ...opts.hparams, layer }, opts.romeOptions);
      try {
        evals.push(await evalCounterFactCase(model, r));
      } finally {
        h.restore();
      }
      opts.onProgress?.(layer, i);
    }
    out.push({ layer, row: counterFactRow(`ROME@${layer}`, evals) });
  }
  return out;
}
