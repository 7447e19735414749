/**
 * The engine requests behind the probe and causal commands (issue #7),
 * declared once and spread into src/engine/host/protocol.ts's `engineMethods`; the engine
 * process answers them in src/engine/host/causalRequests.ts. Probe training and TCAV are long
 * and run in the jobs engine (they open the model themselves, like the other
 * jobs); the rest are quick and use the model (and SAE) the engine has loaded.
 *
 * Token positions travel as UTF-16 offsets into the text sent, so the editor
 * never has to agree with the engine on token indices; tokens come back with
 * their spans in the same text.
 */
import {
  Infer,
  arrayOf,
  bool,
  float32Array,
  int32Array,
  literal,
  nonNegInt,
  nullable,
  num,
  object,
  str,
  variants,
} from './schema';

/** The model every job opens itself, and how (protocol.ts's jobs spread it too). */
export const jobModel = { model: str, threads: nonNegInt, cacheDir: nullable(str) };

/** A token as the views name it: its id and display text. */
export const tokenRef = object({ id: nonNegInt, text: str });
export type TokenRef = Infer<typeof tokenRef>;

/** Where a probe's labels come from. */
export const probeLabelSource = variants('kind', {
  /** {"text", "label"} or {"text", "spans"} per line. */
  jsonl: { file: str },
  /** Tokens of a corpus (folder, .jsonl or text) whose text matches the pattern are 'match', the rest 'other'. */
  regex: { pattern: str, corpus: str },
  /** Token-level spans the editor collected (its semantic tokens), one entry per document. */
  spans: {
    description: str,
    documents: arrayOf(
      object({
        source: str,
        text: str,
        spans: arrayOf(object({ start: nonNegInt, end: nonNegInt, label: str })),
      }),
    ),
  },
});
export type ProbeLabelSource = Infer<typeof probeLabelSource>;

/** One hook's result, as a saved probe's probe.json holds it. */
export const probeHookResult = object({
  hook: str,
  layer: num,
  width: nonNegInt,
  accuracy: num,
  trainAccuracy: num,
  majorityBaseline: num,
  controlAccuracy: nullable(num),
  selectivity: nullable(num),
  trainLoss: num,
  iterations: nonNegInt,
  converged: bool,
});
export type ProbeHookResult = Infer<typeof probeHookResult>;

/** A saved probe's results (its folder and probe.json), what the Probe Results view draws. */
export const probeSummary = object({
  dir: str,
  model: str,
  dataset: str,
  labels: arrayOf(str),
  /** Examples per label, in the order of `labels`. */
  counts: arrayOf(nonNegInt),
  trainDocuments: nonNegInt,
  testDocuments: nonNegInt,
  trainExamples: nonNegInt,
  testExamples: nonNegInt,
  l2: num,
  seed: num,
  hooks: arrayOf(probeHookResult),
  seconds: num,
});
export type ProbeSummary = Infer<typeof probeSummary>;

/** A heat-map grid, flattened row-major. */
export const patchGrid = object({
  rowLabels: arrayOf(str),
  columnLabels: arrayOf(str),
  /** Normalised logit difference: 1 = the clean run's, 0 = the corrupted run's. */
  values: float32Array,
  /** The raw logit differences behind `values`. */
  logitDiffs: float32Array,
});
export type PatchGridMessage = Infer<typeof patchGrid>;

export const continuationPair = object({ unsteered: str, steered: str });

export const tcavHook = object({
  hook: str,
  meanScore: num,
  meanRandomScore: num,
  scores: arrayOf(num),
  randomScores: arrayOf(num),
  t: num,
  pValue: num,
  significant: bool,
  cavAccuracy: num,
});

export const causalMethods = {
  /** Trains a probe per hook in the jobs engine and saves it to outDir (probes/store.ts's layout). */
  trainProbe: {
    params: object({
      ...jobModel,
      labels: probeLabelSource,
      hooks: arrayOf(str),
      outDir: str,
      maxExamples: nonNegInt,
      seed: nullable(nonNegInt),
    }),
    result: probeSummary,
  },
  /** A saved probe's results; needs no model. */
  probeInfo: {
    params: object({ dir: str }),
    result: probeSummary,
  },
  /** A saved probe's score on every token of a text, at a hook (null: its most accurate). */
  applyProbe: {
    params: object({ dir: str, text: str, hook: nullable(str), label: nullable(str) }),
    result: object({
      hook: str,
      scored: str,
      starts: int32Array,
      ends: int32Array,
      scores: float32Array,
    }),
  },
  /** Writes a probe's direction as 'direction' [width] to a .safetensors file, as `loupe probe --export` does. */
  exportProbeDirection: {
    params: object({ dir: str, hook: nullable(str), label: nullable(str), out: str }),
    result: object({ out: str, hook: str, label: str, width: nonNegInt }),
  },
  /**
   * Occlusion: each token's effect on the prediction after the token that
   * ends at or holds `offset - 1` (the caret), as metric(clean) − metric(occluded).
   */
  occlusion: {
    params: object({ text: str, offset: nonNegInt, target: nullable(str), versus: nullable(str) }),
    result: object({
      starts: int32Array,
      ends: int32Array,
      effects: float32Array,
      /** The token whose prediction is explained (index into starts/ends). */
      position: nonNegInt,
      target: tokenRef,
      versus: nullable(tokenRef),
      metric: literal('logit', 'logprob', 'logit-diff'),
      clean: num,
    }),
  },
  /** The tokens of two texts, and each one's top next-token prediction: the patch command's defaults and checks. */
  patchPreview: {
    params: object({ clean: str, corrupted: str }),
    result: object({
      clean: arrayOf(str),
      corrupted: arrayOf(str),
      cleanTop: arrayOf(tokenRef),
      corruptedTop: arrayOf(tokenRef),
    }),
  },
  /** Activation patching of the residual stream (layer × position) and of heads (layer × head). */
  patch: {
    params: object({
      clean: str,
      corrupted: str,
      target: str,
      versus: str,
      site: literal('resid_pre', 'resid_mid', 'resid_post', 'attn_out', 'mlp_out'),
    }),
    result: object({
      cleanTokens: arrayOf(str),
      corruptedTokens: arrayOf(str),
      target: tokenRef,
      versus: tokenRef,
      position: nonNegInt,
      cleanLogitDiff: num,
      corruptedLogitDiff: num,
      site: str,
      residual: patchGrid,
      heads: patchGrid,
    }),
  },
  /** A continuation with a direction added at a hook, beside the unsteered one, greedy and sampled. */
  steer: {
    params: object({
      prompt: str,
      direction: variants('kind', {
        feature: { index: nonNegInt },
        probe: { dir: str, label: nullable(str) },
      }),
      hook: nullable(str),
      strength: num,
      tokens: nonNegInt,
      seed: nonNegInt,
      temperature: num,
    }),
    result: object({
      hook: str,
      direction: str,
      strength: num,
      seed: nonNegInt,
      temperature: num,
      prompt: str,
      greedy: continuationPair,
      sampled: continuationPair,
    }),
  },
  /**
   * Zero or mean ablation over a text, watching the prediction after the
   * token at `offset - 1`: model components (ablation.ts's L0H1, L1.mlp, L1N42,
   * or heads / attn / mlps, each alone) or features of the loaded SAE.
   */
  ablate: {
    params: object({
      text: str,
      offset: nonNegInt,
      what: variants('kind', { components: { spec: str }, features: { indices: arrayOf(nonNegInt) } }),
      mode: literal('zero', 'mean'),
      /** Texts the means are taken over (mean ablation); empty: the text itself. */
      meanTexts: arrayOf(str),
    }),
    result: object({
      mode: literal('zero', 'mean'),
      tokens: nonNegInt,
      position: nonNegInt,
      context: str,
      target: tokenRef,
      clean: object({
        loss: num,
        logit: num,
        prob: num,
        top: arrayOf(object({ ...tokenRef.shape, prob: num })),
      }),
      effects: arrayOf(
        object({
          name: str,
          loss: num,
          deltaLoss: num,
          deltaLogit: num,
          deltaProb: num,
          prob: num,
          top: arrayOf(object({ ...tokenRef.shape, prob: num })),
        }),
      ),
    }),
  },
  /** TCAV (Kim et al. 2018) in the jobs engine: concept examples against random pieces of a corpus. */
  tcav: {
    params: object({
      ...jobModel,
      concept: arrayOf(str),
      inputs: arrayOf(str),
      randomCorpus: str,
      target: str,
      hooks: arrayOf(str),
      runs: nonNegInt,
      seed: nullable(nonNegInt),
    }),
    result: object({
      target: tokenRef,
      runs: nonNegInt,
      alpha: num,
      concept: nonNegInt,
      random: nonNegInt,
      inputs: nonNegInt,
      hooks: arrayOf(tcavHook),
    }),
  },
} as const;

export type CausalMethod = keyof typeof causalMethods;
