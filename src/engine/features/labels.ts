/**
 * Automatic feature labels from the tokens that carry a feature's activation,
 * contrasted against where it does not fire; the idea of Kalibhat et al. 2023
 * (FALCON: words common in the descriptions of highly activating inputs score
 * up, words that also describe lowly activating inputs score down), with
 * tokens in place of caption words. A heuristic: it names the feature's most
 * typical tokens, not what the feature means; `coverage` says how much of the
 * activation those tokens account for, and a low coverage means the label
 * explains little.
 *
 * For each feature, over its top-activating contexts:
 *  - high(t): the activation mass on token t: the sum of the feature's
 *    activation over every position of every top context where the token is
 *    t, divided by the total (a distribution over tokens);
 *  - low(t): how common t is where the feature does not fire: half the
 *    token's frequency at the non-firing positions of the same contexts (the
 *    counterfactual: same neighbourhood, no activation), half its frequency
 *    in the whole pass (random contexts), with add-½ smoothing;
 *  - score(t) = high(t) · ln(high(t) / low(t)): large for a token that carries
 *    much of the mass and is rare where the feature is silent (a term of the
 *    KL divergence between the two distributions).
 * The same is done one position back ('previous': the token before each
 * firing token, for features that fire after a trigger), and for the
 * two-token phrase ending at the top activation of each context. The label is
 * a phrase when one (of two non-blank tokens) carries most (60%) of the top
 * activations' mass, else the view with the larger
 * best score (the previous-token view must beat the token view by 25%): its
 * best token, and up to two more scoring at least 40% of the best.
 */
import { FeatureLabel, LabelToken } from './types';

export interface LabelContext {
  readonly ids: ArrayLike<number>;
  readonly texts: readonly string[];
  readonly acts: ArrayLike<number>;
  readonly focus: number;
}

export interface TokenBaseline {
  /** Occurrences of each token id in the pass. */
  readonly counts: ArrayLike<number>;
  readonly total: number;
}

const PREVIOUS_MARGIN = 1.25;
const PHRASE_SHARE = 0.6;
const SECONDARY = 0.4;
const MIN_SHARE = 0.05;
const MAX_TOKENS = 3;

interface Scored {
  readonly id: number;
  readonly text: string;
  readonly share: number;
  readonly score: number;
}

export function labelFeature(contexts: readonly LabelContext[], baseline: TokenBaseline): FeatureLabel {
  if (contexts.length === 0) return { text: '', kind: 'none', tokens: [], coverage: 0 };
  const current = scoreView(contexts, baseline, 0);
  const previous = scoreView(contexts, baseline, -1);
  const phrase = topPhrase(contexts);
  if (phrase && phrase.share >= PHRASE_SHARE && phrase.prevText.trim() !== '' && phrase.text.trim() !== '') {
    const text = `"${display(phrase.prevText + phrase.text, true)}"`;
    return {
      text,
      kind: 'phrase',
      tokens: [
        { text: phrase.prevText, id: phrase.prevId, share: phrase.share, score: phrase.share },
        { text: phrase.text, id: phrase.id, share: phrase.share, score: phrase.share },
      ],
      coverage: round(phrase.share),
    };
  }
  const best = (v: Scored[]): number => (v.length ? v[0].score : -Infinity);
  const usePrevious = previous.length > 0 && best(previous) > PREVIOUS_MARGIN * Math.max(0, best(current));
  const view = usePrevious ? previous : current;
  if (view.length === 0 || !(view[0].score > 0)) {
    // Nothing stands out against the baseline: name the heaviest token, honestly marked as weak by coverage.
    const heavy = heaviest(contexts);
    if (!heavy) return { text: '', kind: 'none', tokens: [], coverage: 0 };
    return {
      text: `"${display(heavy.text)}"`,
      kind: 'token',
      tokens: [{ text: heavy.text, id: heavy.id, share: round(heavy.share), score: 0 }],
      coverage: round(heavy.share),
    };
  }
  // Tokens that read the same (" Re" and "Re") count once, under the better-scoring one.
  const seen = new Set<string>();
  const chosen = view
    .filter((s, i) => i === 0 || s.score >= SECONDARY * view[0].score)
    .filter((s) => {
      const key = display(s.text);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .slice(0, MAX_TOKENS);
  const tokens: LabelToken[] = chosen.map((s) => ({
    text: s.text,
    id: s.id,
    share: round(s.share),
    score: round(s.score),
  }));
  const list = chosen.map((s) => `"${display(s.text)}"`).join(' · ');
  return {
    text: usePrevious ? `after ${list}` : list,
    kind: usePrevious ? 'previous' : 'token',
    tokens,
    coverage: round(chosen.reduce((a, s) => a + s.share, 0)),
  };
}

function scoreView(contexts: readonly LabelContext[], baseline: TokenBaseline, offset: number): Scored[] {
  const mass = new Map<number, number>();
  const silent = new Map<number, number>();
  const texts = new Map<number, string>();
  let total = 0;
  let silentTotal = 0;
  for (const c of contexts) {
    for (let p = 0; p < c.ids.length; p++) {
      const q = p + offset;
      if (q < 0 || q >= c.ids.length) continue;
      const id = c.ids[q];
      if (!texts.has(id)) texts.set(id, c.texts[q]);
      const a = c.acts[p];
      if (a > 0) {
        mass.set(id, (mass.get(id) ?? 0) + a);
        total += a;
      } else {
        silent.set(id, (silent.get(id) ?? 0) + 1);
        silentTotal++;
      }
    }
  }
  if (total <= 0) return [];
  const V = baseline.counts.length;
  const out: Scored[] = [];
  for (const [id, m] of mass) {
    const high = m / total;
    if (high < MIN_SHARE) continue;
    const inContexts = ((silent.get(id) ?? 0) + 0.5) / (silentTotal + 0.5 * V);
    const inPass = ((baseline.counts[id] ?? 0) + 0.5) / (baseline.total + 0.5 * V);
    const low = 0.5 * inContexts + 0.5 * inPass;
    out.push({ id, text: texts.get(id) ?? '', share: high, score: high * Math.log(high / low) });
  }
  return out.sort((a, b) => b.score - a.score || a.id - b.id);
}

function topPhrase(
  contexts: readonly LabelContext[],
): { prevId: number; prevText: string; id: number; text: string; share: number } | null {
  const mass = new Map<string, { prevId: number; prevText: string; id: number; text: string; m: number }>();
  let total = 0;
  for (const c of contexts) {
    const a = c.acts[c.focus];
    if (!(a > 0)) continue;
    total += a;
    if (c.focus < 1) continue;
    const key = `${c.ids[c.focus - 1]},${c.ids[c.focus]}`;
    const e = mass.get(key) ?? {
      prevId: c.ids[c.focus - 1],
      prevText: c.texts[c.focus - 1],
      id: c.ids[c.focus],
      text: c.texts[c.focus],
      m: 0,
    };
    e.m += a;
    mass.set(key, e);
  }
  let best: { prevId: number; prevText: string; id: number; text: string; m: number } | null = null;
  for (const e of mass.values()) if (!best || e.m > best.m) best = e;
  return best && total > 0 ? { ...best, share: best.m / total } : null;
}

function heaviest(contexts: readonly LabelContext[]): { id: number; text: string; share: number } | null {
  const mass = new Map<number, { text: string; m: number }>();
  let total = 0;
  for (const c of contexts) {
    for (let p = 0; p < c.ids.length; p++) {
      const a = c.acts[p];
      if (!(a > 0)) continue;
      const e = mass.get(c.ids[p]) ?? { text: c.texts[p], m: 0 };
      e.m += a;
      total += a;
      mass.set(c.ids[p], e);
    }
  }
  let best: [number, { text: string; m: number }] | null = null;
  for (const entry of mass) if (!best || entry[1].m > best[1].m) best = entry;
  return best && total > 0 ? { id: best[0], text: best[1].text, share: best[1].m / total } : null;
}

/**
 * A token's text for a label: trimmed, whitespace-only tokens spelled out
 * (`\n`, `␣`, `␣×8` for a run of eight spaces), at most 24 characters. A
 * phrase keeps its inner spaces.
 */
export function display(text: string, phrase = false): string {
  const trimmed = phrase ? text.replace(/^\s+|\s+$/g, '') : text.trim();
  let shown: string;
  if (trimmed.length === 0) {
    shown = text
      .replace(/\n/g, '\\n')
      .replace(/\t/g, '\\t')
      .replace(/\r/g, '\\r')
      .replace(/ {4,}/g, (run) => `␣×${run.length}`)
      .replace(/ /g, '␣');
  } else {
    shown = trimmed.replace(/\n/g, '\\n').replace(/\t/g, '\\t').replace(/\r/g, '\\r');
  }
  shown = shown.replace(/"/g, '\\"');
  return shown.length > 24 ? `${shown.slice(0, 23)}…` : shown;
}

function round(x: number): number {
  return Number(x.toPrecision(4));
}

/**
 * A cluster's label from its members' labels: the label tokens weighted by
 * each member's share, the two heaviest texts.
 */
export function labelCluster(members: readonly FeatureLabel[]): string {
  const weight = new Map<string, number>();
  for (const l of members) {
    if (l.kind === 'phrase') {
      const t = display(l.tokens.map((x) => x.text).join(''), true);
      weight.set(t, (weight.get(t) ?? 0) + l.coverage);
      continue;
    }
    for (const t of l.tokens) {
      const key = display(t.text);
      weight.set(key, (weight.get(key) ?? 0) + t.share);
    }
  }
  const top = [...weight.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 2);
  return top.map(([t]) => `"${t}"`).join(' · ');
}
