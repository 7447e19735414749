/**
 * How good a transcoder set is, on held-out text (a set Loupe trained, or
 * one published for circuit-tracer: each layer read where its config.yaml
 * says, checked against the model as `fitDictionary` checks every
 * dictionary). Per layer, on the clean
 * model's MLP inputs: the fraction of the MLP output's variance unexplained,
 * L0, and the fraction of features never active (dead). For the whole set,
 * the next-token loss with every covered MLP replaced by its transcoder (the
 * error term off, so each transcoder reads the input the replaced layers
 * below it produce: one pass per layer) against the clean model and against
 * the same MLPs zero-ablated: loss recovered = (CE_zero − CE_replaced) /
 * (CE_zero − CE_clean). Windows are built as in training (BOS + up to
 * contextSize − 1 tokens); BOS keeps its own MLP output and is left out of
 * every statistic, as in `evaluateSae`.
 */
import { readCorpus } from '../corpus';
import { fitDictionary } from '../dictionaries/fit';
import { openTranscoders } from '../dictionaries/open';
import { openTranscoderSet } from '../dictionaries/transcoderSet';
import { CancelledError, LoupeError } from '../errors';
import { HookEdit, HookedModel } from '../model';
import { contextWindows } from '../sae/activations';
import { nll } from '../sae/evaluate';
import { Tensor } from '../tensor';
import { TranscoderForward } from './forward';

export interface EvaluateTranscodersOptions {
  readonly corpus: string;
  readonly contextSize?: number;
  /** Stop after this many tokens (non-BOS positions). */
  readonly maxTokens?: number;
  readonly windowsPerRun?: number;
  readonly threads?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (tokens: number) => void;
}

export interface TranscoderLayerEvaluation {
  readonly layer: number;
  readonly fvu: number;
  readonly mse: number;
  readonly l0: number;
  readonly deadFraction: number;
}

export interface TranscoderSetEvaluation {
  readonly tokens: number;
  readonly layers: readonly TranscoderLayerEvaluation[];
  readonly ceClean: number;
  /** Every MLP of the set replaced by its transcoder, error term off. */
  readonly ceReplaced: number;
  /** Every MLP of the set zero-ablated. */
  readonly ceZeroAblated: number;
  /** Null where zero-ablating the MLPs does not change the loss (nothing to recover). */
  readonly lossRecovered: number | null;
}

export async function evaluateTranscoders(
  model: HookedModel,
  dir: string,
  options: EvaluateTranscodersOptions,
): Promise<TranscoderSetEvaluation> {
  const set = openTranscoderSet(dir);
  if (set.config.modelKind !== 'transcoder_set') {
    throw new LoupeError(
      `${dir}: is a ${set.config.modelKind}; eval-transcoder replaces each MLP by one layer's transcoder`,
    );
  }
  // Where each layer reads (and the RMSNorm weight that makes ln2.hook_normalized the MLP's input), checked against the model.
  const fitted = fitDictionary(model, openTranscoders(dir));
  const hooks = fitted.coders.map((c, i) => {
    const output = `blocks.${set.layers[i].layer}.hook_mlp_out`;
    if (c.coder.outputHooks[0] !== output) {
      throw new LoupeError(
        `${dir}: layer ${i} writes ${c.coder.outputHooks[0]}; eval-transcoder replaces MLPs, whose output is ${output}`,
      );
    }
    return { input: c.hook.name, output, scale: c.inputScale };
  });
  const d = set.dModel;
  const s = set.dTranscoder;
  /** A layer's MLP inputs from its hook's values (scaled by the norm's weight where the hook is before it). */
  const mlpInput = (i: number, values: Float32Array): Float32Array => {
    const scale = hooks[i].scale;
    return scale ? values.map((v, j) => v * scale[j % d]) : values;
  };
  const forwards: TranscoderForward[] = [];
  try {
    for (const layer of set.layers)
      forwards.push(await TranscoderForward.create(layer, set, options.threads));
    const ctx = Math.min(options.contextSize ?? 128, model.spec.nCtx);
    const maxTokens = options.maxTokens ?? 100_000;
    const perRun = options.windowsPerRun ?? 8;
    const bos = model.tokenizer?.bosTokenId ?? null;
    const n = set.nLayers;
    const fires = new Float64Array(n * s);
    const l0Sum = new Float64Array(n);
    const sqErr = new Float64Array(n);
    const sum = new Float64Array(n * d);
    const sumSq = new Float64Array(n * d);
    const ce = { clean: 0, replaced: 0, zero: 0, count: 0 };
    let tokens = 0;

    const runBatch = async (windows: number[][]): Promise<void> => {
      const inputs = hooks.map((h) => h.input);
      const clean = await model.runPadded(windows, { hooks: [...inputs, ...hooks.map((h) => h.output)] });
      const T = clean.logits.dims[1];
      // BOS (and padding) keep the clean MLP output: mul 1 there, 0 elsewhere.
      const keepBos: Tensor = {
        dims: [windows.length, T, 1],
        data: Float32Array.from({ length: windows.length * T }, (_, i) => (i % T === 0 ? 1 : 0)),
      };
      const replacement = (prediction: Float32Array): Tensor => {
        const add = Float32Array.from(prediction);
        for (let b = 0; b < windows.length; b++) add.fill(0, b * T * d, (b * T + 1) * d);
        return { dims: [windows.length, T, d], data: add };
      };
      // Per layer on the clean inputs: reconstruction and sparsity.
      for (let i = 0; i < n; i++) {
        const out = await forwards[i].run(mlpInput(i, clean.hooks.get(hooks[i].input)!.data));
        const y = clean.hooks.get(hooks[i].output)!.data;
        windows.forEach((_, b) => {
          for (let t = 1; t < windows[b].length; t++) {
            const r = b * T + t;
            for (let j = 0; j < d; j++) {
              const v = y[r * d + j];
              const e = v - out.prediction[r * d + j];
              sqErr[i] += e * e;
              sum[i * d + j] += v;
              sumSq[i * d + j] += v * v;
            }
            for (let f = 0; f < s; f++) {
              if (out.features[r * s + f] !== 0) {
                fires[i * s + f]++;
                l0Sum[i]++;
              }
            }
          }
        });
      }
      // Every MLP replaced, bottom up: each transcoder reads the input the replaced layers below produce.
      const edits: HookEdit[] = [];
      for (let i = 0; i < n; i++) {
        const x =
          i === 0
            ? clean.hooks.get(hooks[0].input)!
            : (await model.runEditedHooksPadded(windows, [hooks[i].input], edits)).hooks.get(hooks[i].input)!;
        const out = await forwards[i].run(mlpInput(i, x.data));
        edits.push({ hook: hooks[i].output, mul: keepBos, add: replacement(out.prediction) });
      }
      const replaced = await model.runPadded(windows, { edits });
      const zero = await model.runPadded(windows, {
        edits: hooks.map((h) => ({ hook: h.output, mul: keepBos })),
      });
      const V = model.spec.dVocab;
      windows.forEach((w, b) => {
        for (let t = 1; t < w.length; t++) {
          tokens++;
          if (t + 1 < w.length) {
            const r = (b * T + t) * V;
            const next = w[t + 1];
            ce.clean += nll(clean.logits.data, r, V, next);
            ce.replaced += nll(replaced.logits.data, r, V, next);
            ce.zero += nll(zero.logits.data, r, V, next);
            ce.count++;
          }
        }
      });
      options.onProgress?.(tokens);
    };

    let pending: number[][] = [];
    outer: for await (const doc of readCorpus(options.corpus)) {
      if (options.signal?.aborted) throw new CancelledError();
      const ids = (await model.tokenize(doc.text, { prependBos: false })).map((t) => t.id);
      for (const window of contextWindows(ids, bos, ctx)) {
        pending.push(window);
        if (pending.length === perRun) {
          await runBatch(pending);
          pending = [];
          if (tokens >= maxTokens) break outer;
        }
      }
    }
    if (pending.length > 0) await runBatch(pending);
    if (ce.count === 0)
      throw new LoupeError(
        `${options.corpus}: no text to evaluate on (every window is shorter than 3 tokens)`,
      );

    const layers = set.layers.map((layer, i): TranscoderLayerEvaluation => {
      let variance = 0;
      for (let j = 0; j < d; j++) variance += sumSq[i * d + j] / tokens - (sum[i * d + j] / tokens) ** 2;
      let dead = 0;
      for (let f = 0; f < s; f++) if (fires[i * s + f] === 0) dead++;
      return {
        layer: layer.layer,
        fvu: sqErr[i] / tokens / (variance || 1),
        mse: sqErr[i] / tokens,
        l0: l0Sum[i] / tokens,
        deadFraction: dead / s,
      };
    });
    const ceClean = ce.clean / ce.count;
    const ceReplaced = ce.replaced / ce.count;
    const ceZero = ce.zero / ce.count;
    return {
      tokens,
      layers,
      ceClean,
      ceReplaced,
      ceZeroAblated: ceZero,
      lossRecovered: Math.abs(ceZero - ceClean) > 1e-9 ? (ceZero - ceReplaced) / (ceZero - ceClean) : null,
    };
  } finally {
    for (const f of forwards) await f.release();
  }
}
