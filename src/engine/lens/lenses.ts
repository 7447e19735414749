/**
 * What each layer thinks at each token: the residual stream at chosen layers
 * and positions read out as next-token distributions, three ways.
 *
 * - Logit lens: the stream itself through the final norm and the unembedding.
 * - Tuned lens: through the layer's affine translator first (tunedLens.ts).
 * - Attention-free projection (Chen et al. 2023): the position's latent from
 *   layer l run alone through blocks l..L-1, then read out. Variant 'self'
 *   lets each block's attention see only the token itself, so the attention
 *   sub-layer still adds W_O·(W_V·LN(x)) (+ biases); this is what the
 *   authors' code does (it masks attention to the diagonal). Variant 'skip'
 *   leaves the attention sub-layers out. Both run each latent as a length-1
 *   sequence: in a causal model that is exactly the diagonal mask, and
 *   rotary position does not matter when a query has one key. One graph
 *   serves every start layer and both variants: edits replace
 *   `blocks.l.hook_resid_pre` with the latent (mul 0, add latent) and, for
 *   'skip', zero `blocks.k.hook_attn_out` for k ≥ l.
 *
 * Layer L (after the last block) reads the same in all three: the model's
 * own prediction. Every cell also reports the probability and rank of the
 * token that actually comes next (none at the last position).
 */
import { HookEdit, HookedModel } from '../model';
import { Tensor } from '../tensor';
import { lensLayers, residualHook, tokenPositions } from './positions';
import { LensReadout, ReadoutRow } from './readout';
import { TunedLens } from './tunedLens';

export type AttentionFreeVariant = 'self' | 'skip';

export interface LensOptions {
  /** Lens layers 0..L (see positions.ts); default all. */
  readonly layers?: readonly number[];
  /** Token positions; default all. */
  readonly positions?: readonly number[];
  /** Most likely tokens per cell; default 10. */
  readonly topK?: number;
}

export interface LensCell extends ReadoutRow {
  readonly layer: number;
  readonly position: number;
}

export interface LensGrid {
  readonly kind: 'logit' | 'tuned' | 'attention-free';
  readonly variant: AttentionFreeVariant | null;
  /** Every token of the input, as a person reads it. */
  readonly tokens: readonly { readonly id: number; readonly text: string }[];
  readonly layers: readonly number[];
  readonly positions: readonly number[];
  /** cells[i][j]: layer layers[i] at position positions[j]. */
  readonly cells: readonly (readonly LensCell[])[];
}

/** Latents per attention-free graph run: bounds the edit tensors and activations. */
const LATENTS_PER_RUN = 256;

export class ModelLenses {
  readonly readout: LensReadout;

  constructor(
    readonly model: HookedModel,
    options: { readonly threads?: number } = {},
  ) {
    this.readout = new LensReadout(model, options.threads ?? 0);
  }

  logit(ids: readonly number[], options: LensOptions = {}): Promise<LensGrid> {
    return this.grid(ids, options, 'logit', null, async (_layer, latents, targets, k) =>
      this.readout.read(latents, targets, k),
    );
  }

  async tuned(ids: readonly number[], lens: TunedLens, options: LensOptions = {}): Promise<LensGrid> {
    lens.checkFits(this.model);
    return this.grid(ids, options, 'tuned', null, async (layer, latents, targets, k) =>
      this.readout.read(
        latents,
        targets,
        k,
        layer < this.model.spec.nLayers ? lens.translators[layer] : undefined,
      ),
    );
  }

  attentionFree(
    ids: readonly number[],
    variant: AttentionFreeVariant,
    options: LensOptions = {},
  ): Promise<LensGrid> {
    return this.grid(ids, options, 'attention-free', variant, async (layer, latents, targets, k) => {
      const projected =
        layer < this.model.spec.nLayers ? await this.runAlone(latents, layer, variant) : latents;
      return this.readout.read(projected, targets, k);
    });
  }

  /**
   * Latents [n × d] entering block `start`, each run alone (a length-1
   * sequence) through the remaining blocks; returns the stream after the
   * last block, [n × d].
   */
  async runAlone(latents: Float32Array, start: number, variant: AttentionFreeVariant): Promise<Float32Array> {
    const { nLayers: L, dModel: d } = this.model.spec;
    const n = latents.length / d;
    const out = new Float32Array(n * d);
    const zero: Tensor = { dims: [1], data: new Float32Array([0]) };
    const finalHook = residualHook(this.model.spec, L);
    for (let r0 = 0; r0 < n; r0 += LATENTS_PER_RUN) {
      const rows = Math.min(LATENTS_PER_RUN, n - r0);
      const edits: HookEdit[] = [];
      for (let k = 0; k < L; k++) {
        edits.push(
          k === start
            ? {
                hook: `blocks.${k}.hook_resid_pre`,
                mul: zero,
                add: { dims: [rows, 1, d], data: latents.subarray(r0 * d, (r0 + rows) * d) },
              }
            : { hook: `blocks.${k}.hook_resid_pre` },
        );
        edits.push(
          variant === 'skip' && k >= start
            ? { hook: `blocks.${k}.hook_attn_out`, mul: zero }
            : { hook: `blocks.${k}.hook_attn_out` },
        );
      }
      // The token id is irrelevant: block `start`'s input is replaced before anything reads it.
      const batch = Array.from({ length: rows }, () => [0]);
      const res = await this.model.runEditedHooksPadded(batch, [finalHook], edits);
      out.set(res.hooks.get(finalHook)!.data, r0 * d);
    }
    return out;
  }

  private async grid(
    ids: readonly number[],
    options: LensOptions,
    kind: LensGrid['kind'],
    variant: AttentionFreeVariant | null,
    decode: (
      layer: number,
      latents: Float32Array,
      targets: (number | null)[],
      k: number,
    ) => Promise<ReadoutRow[]>,
  ): Promise<LensGrid> {
    const spec = this.model.spec;
    const layers = lensLayers(spec, options.layers);
    const positions = tokenPositions(ids.length, options.positions);
    const k = options.topK ?? 10;
    const hooks = [...new Set(layers.map((l) => residualHook(spec, l)))];
    const { hooks: values } = await this.model.runHooksPadded([ids], hooks);
    const d = spec.dModel;
    const targets = positions.map((p) => (p + 1 < ids.length ? ids[p + 1] : null));
    const cells: LensCell[][] = [];
    for (const layer of layers) {
      const stream = values.get(residualHook(spec, layer))!.data; // [1, T, d]
      const latents = new Float32Array(positions.length * d);
      positions.forEach((p, i) => latents.set(stream.subarray(p * d, (p + 1) * d), i * d));
      const rows = await decode(layer, latents, targets, k);
      cells.push(rows.map((row, i) => ({ layer, position: positions[i], ...row })));
    }
    const tokens = await Promise.all(ids.map(async (id) => ({ id, text: await this.readout.tokenText(id) })));
    return { kind, variant, tokens, layers, positions, cells };
  }

  async dispose(): Promise<void> {
    await this.readout.dispose();
  }
}
