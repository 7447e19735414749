/**
 * A saved probe read out on a text, token by token (the editor's heat map),
 * and a probe's direction as a vector in the hook's activation space (to
 * export, or to steer along).
 */
import { LoupeError } from '../errors';
import { planWindows } from '../host/windows';
import { HookedModel } from '../model';
import { Token } from '../tokenizer';
import { classifierLogits, softmaxInPlace } from './logistic';
import { SavedProbe, probeHook } from './store';

export interface ProbeTokenScore {
  readonly id: number;
  readonly text: string;
  readonly start: number;
  readonly end: number;
  /** Probability of the scored label. */
  readonly score: number;
  /** The most likely label. */
  readonly label: string;
  /** Probability of each label, in the probe's label order. */
  readonly probs: number[];
}

export interface ProbeTextScores {
  readonly hook: string;
  readonly labels: string[];
  /** The label whose probability `score` is. */
  readonly scored: string;
  readonly tokens: ProbeTokenScore[];
}

export interface ApplyOptions {
  /** Hook to read; default the one with the best held-out accuracy. */
  readonly hook?: string;
  /** Label to score; default labels[1] (for two classes, the concept). */
  readonly label?: string;
  readonly prependBos?: boolean;
}

/**
 * Scores every token of a text. Texts longer than the context run in windows
 * that each start with BOS and overlap by an eighth, so every token has context.
 */
export async function scoreText(
  model: HookedModel,
  probe: SavedProbe,
  text: string,
  options: ApplyOptions = {},
): Promise<ProbeTextScores> {
  const hook = probeHook(model, probe, options.hook);
  const labels = probe.meta.labels;
  const scored = options.label ?? labels[1];
  const k = labels.indexOf(scored);
  if (k < 0) throw new LoupeError(`the probe has no label '${scored}'; its labels are ${labels.join(', ')}`);
  const classifier = probe.classifiers.get(hook)!;
  const tokens = await model.tokenize(text, { prependBos: options.prependBos ?? true });
  const first = tokens[0];
  const bos = options.prependBos !== false && first && first.start === 0 && first.end === 0 ? first : null;
  const body = bos ? tokens.slice(1) : tokens;
  const ctx = model.spec.nCtx - (bos ? 1 : 0);
  const windows = planWindows(body.length, ctx, Math.floor(ctx / 8));
  const K = labels.length;
  const out: ProbeTokenScore[] = [];
  const push = (t: Token, row: Float32Array): void => {
    softmaxInPlace(row);
    let best = 0;
    for (let c = 1; c < K; c++) if (row[c] > row[best]) best = c;
    out.push({
      id: t.id,
      text: t.text,
      start: t.start,
      end: t.end,
      score: row[k],
      label: labels[best],
      probs: [...row],
    });
  };
  for (const w of windows) {
    const ids = [...(bos ? [bos.id] : []), ...body.slice(w.start, w.end).map((t) => t.id)];
    const [result] = await model.run([ids], { hooks: [hook] });
    const acts = result.hooks.get(hook)!.data;
    const logits = classifierLogits(classifier, acts, ids.length);
    const offset = bos ? 1 : 0;
    if (bos && out.length === 0) push(bos, logits.slice(0, K));
    for (let i = w.keepFrom; i < w.end; i++) {
      const p = i - w.start + offset;
      push(body[i], logits.slice(p * K, (p + 1) * K));
    }
  }
  return { hook, labels, scored, tokens: out };
}

/**
 * The probe's direction for a label in the hook's raw activation space: the
 * weight vector along which that label's logit rises fastest. Two classes:
 * the binary probe's weight (negated for labels[0]); more: the label's row
 * minus the mean row (softmax ignores what all rows share).
 */
export function probeDirection(
  model: HookedModel,
  probe: SavedProbe,
  options: { readonly hook?: string; readonly label?: string } = {},
): { hook: string; label: string; direction: Float32Array } {
  const hook = probeHook(model, probe, options.hook);
  const labels = probe.meta.labels;
  const label = options.label ?? labels[1];
  const k = labels.indexOf(label);
  if (k < 0) throw new LoupeError(`the probe has no label '${label}'; its labels are ${labels.join(', ')}`);
  const c = probe.classifiers.get(hook)!;
  const d = c.dim;
  const direction = new Float32Array(d);
  if (labels.length === 2) {
    for (let j = 0; j < d; j++) direction[j] = (k === 1 ? 1 : -1) * c.weight[j];
  } else {
    for (let j = 0; j < d; j++) {
      let mean = 0;
      for (let r = 0; r < labels.length; r++) mean += c.weight[r * d + j];
      direction[j] = c.weight[k * d + j] - mean / labels.length;
    }
  }
  return { hook, label, direction };
}
