/**
 * Labelled examples from the three sources a probe can learn from:
 *  - labelled texts: a JSONL file with `{"text", "label"}` per line (the whole
 *    text's label, read at its last token or averaged over its tokens) or
 *    `{"text", "spans": [{"start", "end", "label"}]}` (token-level labels;
 *    offsets in UTF-16 code units, as VS Code counts them);
 *  - the editor's semantic tokens, which arrive as labelled spans too;
 *  - a regular expression over the tokens of a corpus: each token whose text
 *    matches is `match`, every other token `other`.
 * Texts longer than the context are cut into windows that each start with
 * BOS (as the model was trained); BOS itself is never an example.
 */
import { CorpusDocument, jsonlLines } from '../corpus';
import { CancelledError, LoupeError } from '../errors';
import { HookedModel } from '../model';
import { Token } from '../tokenizer';
import { ProbeDataset, ProbeExample, ProbeSequence } from './dataset';

export interface LabelledSpan {
  /** UTF-16 offsets into the text. */
  readonly start: number;
  readonly end: number;
  readonly label: string;
}

export interface LabelledText {
  /** The document it belongs to (the unit of the train/test split). */
  readonly source: string;
  readonly text: string;
  /** One label for the whole text. */
  readonly label?: string;
  /** Labels for parts of the text; tokens take the label of the span they overlap most. */
  readonly spans?: readonly LabelledSpan[];
}

export interface LabelOptions {
  /** Tokens per window, BOS included; default the model's context. */
  readonly contextSize?: number;
  /** How a whole-text label reads the text: at its last token (default) or averaged over its tokens. */
  readonly pool?: 'last' | 'mean';
  /** Span labels: the label of tokens outside every span, or null to leave them out. Default 'other'. */
  readonly unlabelled?: string | null;
  /** Stop after this many examples. */
  readonly maxExamples?: number;
  /** Prepend BOS to each window (default true). */
  readonly prependBos?: boolean;
  readonly signal?: AbortSignal;
}

/** A document's tokens after BOS, and the BOS id when there is one. */
async function tokenizeBody(
  model: HookedModel,
  text: string,
  prependBos: boolean,
): Promise<{ bos: number | null; body: Token[] }> {
  const tokens = await model.tokenize(text, { prependBos });
  // A prepended BOS (Loupe's or the tokenizer's own template) covers no text.
  const first = tokens[0];
  if (prependBos && first && first.start === 0 && first.end === 0) {
    return { bos: first.id, body: tokens.slice(1) };
  }
  return { bos: null, body: tokens };
}

function windowLength(model: HookedModel, options: LabelOptions): number {
  const size = Math.min(options.contextSize ?? model.spec.nCtx, model.spec.nCtx);
  if (!Number.isInteger(size) || size < 2)
    throw new LoupeError(`the context size must be at least 2, not ${size}`);
  return size;
}

/** Collects sequences and examples, stopping at `maxExamples`. */
class DatasetBuilder {
  readonly sequences: ProbeSequence[] = [];
  readonly examples: ProbeExample[] = [];
  constructor(private readonly maxExamples: number) {}

  get full(): boolean {
    return this.examples.length >= this.maxExamples;
  }

  /** Adds body[start..end) as a window; `labelAt(i)` labels body token i (null: no example). */
  addWindow(
    document: string,
    bos: number | null,
    body: readonly Token[],
    start: number,
    end: number,
    labelAt: (i: number) => string | null,
  ): void {
    const offset = bos === null ? 0 : 1;
    const ids = [...(bos === null ? [] : [bos]), ...body.slice(start, end).map((t) => t.id)];
    const examples: ProbeExample[] = [];
    for (let i = start; i < end && this.examples.length + examples.length < this.maxExamples; i++) {
      const label = labelAt(i);
      if (label !== null) {
        examples.push({
          sequence: this.sequences.length,
          positions: [i - start + offset],
          label,
          tokenType: body[i].id,
        });
      }
    }
    if (examples.length === 0) return;
    this.sequences.push({ document, ids });
    this.examples.push(...examples);
  }

  addPooled(
    document: string,
    bos: number | null,
    body: readonly Token[],
    label: string,
    pool: 'last' | 'mean',
    size: number,
  ): void {
    const keep = body.slice(Math.max(0, body.length - (bos === null ? size : size - 1)));
    const offset = bos === null ? 0 : 1;
    const ids = [...(bos === null ? [] : [bos]), ...keep.map((t) => t.id)];
    const last = ids.length - 1;
    const positions = pool === 'last' ? [last] : Array.from({ length: keep.length }, (_, i) => i + offset);
    this.examples.push({ sequence: this.sequences.length, positions, label, tokenType: ids[last] });
    this.sequences.push({ document, ids });
  }

  result(description: string): ProbeDataset {
    if (this.examples.length === 0)
      throw new LoupeError(`${description}: no labelled tokens; nothing to train a probe on`);
    return { description, sequences: this.sequences, examples: this.examples };
  }
}

/** Examples from labelled texts (whole-text labels or labelled spans). */
export async function datasetFromTexts(
  model: HookedModel,
  texts: Iterable<LabelledText> | AsyncIterable<LabelledText>,
  description: string,
  options: LabelOptions = {},
): Promise<ProbeDataset> {
  const size = windowLength(model, options);
  const pool = options.pool ?? 'last';
  const unlabelled = options.unlabelled === undefined ? 'other' : options.unlabelled;
  const builder = new DatasetBuilder(options.maxExamples ?? Infinity);
  for await (const t of texts) {
    if (options.signal?.aborted) throw new CancelledError();
    if (builder.full) break;
    const { bos, body } = await tokenizeBody(model, t.text, options.prependBos ?? true);
    if (body.length === 0) continue;
    if (t.spans) {
      const labels = tokenLabels(body, t.spans, unlabelled);
      const step = bos === null ? size : size - 1;
      for (let s = 0; s < body.length && !builder.full; s += step) {
        builder.addWindow(t.source, bos, body, s, Math.min(body.length, s + step), (i) => labels[i]);
      }
    } else if (t.label !== undefined) {
      builder.addPooled(t.source, bos, body, t.label, pool, size);
    } else {
      throw new LoupeError(`${t.source}: the text has neither a label nor labelled spans`);
    }
  }
  return builder.result(description);
}

/** Examples from a regex over each token's text: `match` where it matches, else `other`. */
export async function datasetFromRegex(
  model: HookedModel,
  documents: AsyncIterable<CorpusDocument>,
  pattern: string,
  description: string,
  options: LabelOptions = {},
): Promise<ProbeDataset> {
  let regex: RegExp;
  try {
    regex = new RegExp(pattern, 'u');
  } catch (err) {
    throw new LoupeError(`the regex /${pattern}/ is not valid: ${(err as Error).message}`);
  }
  const size = windowLength(model, options);
  const builder = new DatasetBuilder(options.maxExamples ?? Infinity);
  for await (const doc of documents) {
    if (options.signal?.aborted) throw new CancelledError();
    if (builder.full) break;
    const { bos, body } = await tokenizeBody(model, doc.text, options.prependBos ?? true);
    const step = bos === null ? size : size - 1;
    for (let s = 0; s < body.length && !builder.full; s += step) {
      builder.addWindow(doc.source, bos, body, s, Math.min(body.length, s + step), (i) =>
        regex.test(body[i].text) ? 'match' : 'other',
      );
    }
  }
  return builder.result(description);
}

/**
 * Each token's label: that of the span it overlaps most (the first such span
 * on a tie), or `unlabelled` where it overlaps none.
 */
export function tokenLabels(
  tokens: readonly Token[],
  spans: readonly LabelledSpan[],
  unlabelled: string | null,
): (string | null)[] {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  let first = 0;
  return tokens.map((t) => {
    while (first < sorted.length && sorted[first].end <= t.start) first++;
    let best: LabelledSpan | null = null;
    let bestOverlap = 0;
    for (let k = first; k < sorted.length && sorted[k].start < t.end; k++) {
      const overlap = Math.min(t.end, sorted[k].end) - Math.max(t.start, sorted[k].start);
      if (overlap > bestOverlap) {
        best = sorted[k];
        bestOverlap = overlap;
      }
    }
    return best ? best.label : unlabelled;
  });
}

/**
 * Reads a JSONL dataset: `{"text": …, "label": …}` or `{"text": …, "spans":
 * [{"start", "end", "label"}]}` per line. Labels may be strings, numbers or
 * booleans; each line is its own document.
 */
export async function readLabelledJsonl(file: string): Promise<LabelledText[]> {
  const out: LabelledText[] = [];
  for await (const { line, number: n } of jsonlLines(file, 'dataset')) {
    if (line.trim().length === 0) continue;
    const where = `${file}:${n}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new LoupeError(
        `${where}: not valid JSON; each line must be {"text": ..., "label": ...} or {"text": ..., "spans": [...]}`,
      );
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new LoupeError(`${where}: not a JSON object`);
    }
    const record = value as { text?: unknown; label?: unknown; spans?: unknown };
    if (typeof record.text !== 'string') throw new LoupeError(`${where}: no string "text" field`);
    const text = record.text;
    if (record.spans !== undefined) {
      if (!Array.isArray(record.spans))
        throw new LoupeError(`${where}: "spans" must be a list of {"start", "end", "label"}`);
      const spans = record.spans.map((s: unknown, i): LabelledSpan => {
        const span = s as { start?: unknown; end?: unknown; label?: unknown };
        const { start, end } = span;
        if (
          typeof start !== 'number' ||
          typeof end !== 'number' ||
          !Number.isInteger(start) ||
          !Number.isInteger(end) ||
          start < 0 ||
          end <= start ||
          end > text.length
        ) {
          throw new LoupeError(
            `${where}: span ${i} needs integer 0 ≤ start < end ≤ ${text.length} (the text's length in UTF-16 units)`,
          );
        }
        return { start, end, label: labelText(span.label, `${where}: span ${i}`) };
      });
      out.push({ source: where, text, spans });
    } else if (record.label !== undefined) {
      out.push({ source: where, text, label: labelText(record.label, where) });
    } else {
      throw new LoupeError(`${where}: needs a "label" for the text or "spans" with token-level labels`);
    }
  }
  if (out.length === 0) throw new LoupeError(`${file}: the dataset is empty`);
  return out;
}

function labelText(value: unknown, where: string): string {
  if (typeof value === 'string' && value.length > 0) return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new LoupeError(`${where}: a label must be a non-empty string, a number or a boolean`);
}
