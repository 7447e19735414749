/**
 * Token spans (UTF-16 offsets, as the engine reports them) ↔ editor
 * positions. Kept free of `vscode` so the tests can pin it: it follows
 * VS Code's own TextDocument rules (lines end at \r\n, \r or \n; an offset
 * inside a line break clamps to the end of its line), so the ranges drawn are
 * exactly the engine's tokens, with emoji, CJK, tabs and CRLF alike.
 */

export interface LinePosition {
  readonly line: number;
  readonly character: number;
}

export class LineIndex {
  /** Offset where each line starts. */
  private readonly starts: number[] = [0];
  /** Each line's length without its line break. */
  private readonly lengths: number[] = [];

  constructor(text: string) {
    let lineStart = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 13 && c !== 10) continue;
      this.lengths.push(i - lineStart);
      if (c === 13 && text.charCodeAt(i + 1) === 10) i++;
      lineStart = i + 1;
      this.starts.push(lineStart);
    }
    this.lengths.push(text.length - lineStart);
  }

  get lineCount(): number {
    return this.starts.length;
  }

  positionAt(offset: number): LinePosition {
    const o = Math.max(0, Math.floor(offset));
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= o) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo, character: Math.min(o - this.starts[lo], this.lengths[lo]) };
  }

  offsetAt(position: LinePosition): number {
    const line = Math.min(Math.max(0, position.line), this.starts.length - 1);
    return this.starts[line] + Math.min(Math.max(0, position.character), this.lengths[line]);
  }
}

/** The tokens of one analysed text, by index as the engine numbers them (BOS included). */
export class TokenSpans {
  readonly lines: LineIndex;

  constructor(
    readonly text: string,
    readonly ids: Int32Array,
    readonly starts: Int32Array,
    readonly ends: Int32Array,
  ) {
    if (ids.length !== starts.length || ids.length !== ends.length) {
      throw new Error(`token arrays differ in length (${ids.length}, ${starts.length}, ${ends.length})`);
    }
    this.lines = new LineIndex(text);
  }

  get count(): number {
    return this.ids.length;
  }

  /** Whether token i covers any text (a prepended BOS does not). */
  visible(i: number): boolean {
    return this.ends[i] > this.starts[i];
  }

  /**
   * The token under a caret at `offset`: the one holding the character after
   * it; at the end of a non-empty line or of the text, the one before it (a
   * click past the end of a line means its last word, not the line break).
   * Where two tokens share a character (a split emoji), the later one. -1 when none.
   */
  tokenAt(offset: number): number {
    const next = this.text.charCodeAt(offset);
    const previous = this.text.charCodeAt(offset - 1);
    const atLineEnd = Number.isNaN(next) || next === 10 || next === 13;
    if (atLineEnd && offset > 0 && previous !== 10 && previous !== 13) return this.containing(offset - 1);
    return this.containing(offset);
  }

  /** The token whose span holds the character at `offset`, or -1. */
  containing(offset: number): number {
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid] <= offset) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    // Spans are in order and tile the text, so only the last start ≤ offset can hold it.
    return found >= 0 && offset < this.ends[found] ? found : -1;
  }

  /** The first token that ends after `offset` (count when none): where a stretch of text starting there begins. */
  firstEndingAfter(offset: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ends[mid] > offset) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  range(i: number): { start: LinePosition; end: LinePosition } {
    return { start: this.lines.positionAt(this.starts[i]), end: this.lines.positionAt(this.ends[i]) };
  }

  tokenText(i: number): string {
    return this.text.slice(this.starts[i], this.ends[i]);
  }
}
