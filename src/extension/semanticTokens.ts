/**
 * The editor's semantic tokens as a probe's labelled spans. Kept free of
 * `vscode` so the tests can pin the decoding: VS Code hands tokens over as
 * one flat array, five numbers a token (line delta, start delta, length,
 * type index, modifier bits), each token's line and start relative to the
 * token before it, columns in UTF-16 units as the document counts them.
 */
import { LineIndex } from './tokenSpans';

/** A labelled part of a text: UTF-16 offsets, as the engine reads them. */
export interface LabelledSpan {
  readonly start: number;
  readonly end: number;
  readonly label: string;
}

/** A text and its labelled spans; `source` names it (the unit of the train/test split). */
export interface LabelledDocument {
  readonly source: string;
  readonly text: string;
  readonly spans: readonly LabelledSpan[];
}

/**
 * Every token of the relative-encoded `data` as a span labelled with its
 * type's name in `types` (the provider's legend). A token of a type the
 * legend lacks is left out; a length past its line's end stops at the end,
 * as VS Code's own document does.
 */
export function decodeSemanticTokens(
  text: string,
  data: ArrayLike<number>,
  types: readonly string[],
): LabelledSpan[] {
  const lines = new LineIndex(text);
  const spans: LabelledSpan[] = [];
  let line = 0;
  let char = 0;
  for (let i = 0; i + 4 < data.length; i += 5) {
    const lineDelta = data[i];
    line += lineDelta;
    // The start is relative to the previous token's only on the same line.
    char = lineDelta === 0 ? char + data[i + 1] : data[i + 1];
    const label = types[data[i + 3]];
    if (label === undefined) continue;
    const start = lines.offsetAt({ line, character: char });
    const end = lines.offsetAt({ line, character: char + data[i + 2] });
    if (end > start) spans.push({ start, end, label });
  }
  return spans;
}

/**
 * The document cut at blank lines into at most `parts` pieces of about equal
 * length, each its own document (named with its lines, from 1), its spans
 * moved to its own offsets. A probe splits its data by document, so one file
 * alone can still be trained on and scored on text it did not see; a
 * document with fewer blank lines gives fewer pieces.
 */
export function splitAtBlankLines(doc: LabelledDocument, parts: number): LabelledDocument[] {
  const { text } = doc;
  const lines = new LineIndex(text);
  // Offsets where a piece may start: the start of a line after a blank one.
  const cuts: number[] = [];
  for (let line = 1; line < lines.lineCount; line++) {
    const start = lines.offsetAt({ line, character: 0 });
    if (text.slice(lines.offsetAt({ line: line - 1, character: 0 }), start).trim().length === 0)
      cuts.push(start);
  }
  const bounds = [0];
  for (let k = 1; k < parts; k++) {
    const target = (k * text.length) / parts;
    // The cut nearest the k-th equal share, after the last one taken.
    let best: number | null = null;
    for (const c of cuts) {
      if (c <= bounds[bounds.length - 1] || c >= text.length) continue;
      if (best === null || Math.abs(c - target) < Math.abs(best - target)) best = c;
    }
    if (best !== null && best > bounds[bounds.length - 1]) bounds.push(best);
  }
  bounds.push(text.length);
  const unique = bounds.filter((b, i) => i === 0 || b > bounds[i - 1]);
  if (unique.length <= 2) return [doc];
  const pieces: LabelledDocument[] = [];
  for (let k = 0; k + 1 < unique.length; k++) {
    const from = unique[k];
    const to = unique[k + 1];
    const spans = doc.spans
      .filter((s) => s.start >= from && s.end <= to)
      .map((s) => ({ start: s.start - from, end: s.end - from, label: s.label }));
    const first = lines.positionAt(from).line + 1;
    const last = lines.positionAt(Math.max(from, to - 1)).line + 1;
    pieces.push({
      source: `${doc.source}:${first === last ? first : `${first}-${last}`}`,
      text: text.slice(from, to),
      spans,
    });
  }
  return pieces;
}
