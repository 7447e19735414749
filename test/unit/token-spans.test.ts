/**
 * Token spans → editor ranges: the ranges the extension draws hold exactly
 * the engine's tokens, by VS Code's own line rules (CRLF, CR, LF; an offset
 * inside a line break clamps to the line's end), for emoji, CJK, tabs and
 * combining marks; and the caret finds the token a user means.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { TextTokenizer } from '../../src/engine/tokenizer';
import { LineIndex, TokenSpans } from '../../src/extension/tokenSpans';
import { tempDir, writeByteLevelTokenizer } from './helpers';

const HARD_TEXT = 'héllo the 世界 🙂👍🏽\r\n\tx\u0301 end\r\nlast\rline\n';

describe('line index (VS Code positions)', () => {
  it('splits lines at CRLF, CR and LF and maps offsets both ways', () => {
    const lines = new LineIndex('ab\r\ncd\ref\ngh');
    assert.equal(lines.lineCount, 4);
    assert.deepEqual(lines.positionAt(0), { line: 0, character: 0 });
    assert.deepEqual(lines.positionAt(2), { line: 0, character: 2 });
    assert.deepEqual(lines.positionAt(3), { line: 0, character: 2 }, 'inside \\r\\n clamps to the line end');
    assert.deepEqual(lines.positionAt(4), { line: 1, character: 0 });
    assert.deepEqual(lines.positionAt(7), { line: 2, character: 0 });
    assert.deepEqual(lines.positionAt(10), { line: 3, character: 0 });
    assert.deepEqual(lines.positionAt(99), { line: 3, character: 2 }, 'past the end clamps to the end');
    assert.equal(lines.offsetAt({ line: 1, character: 1 }), 5);
    assert.equal(lines.offsetAt({ line: 0, character: 9 }), 2, 'a column past the line end clamps');
  });

  it('counts UTF-16 units: an emoji is two columns, a CJK character and a tab one each', () => {
    const lines = new LineIndex('\t世🙂x');
    assert.deepEqual(lines.positionAt(1), { line: 0, character: 1 });
    assert.deepEqual(lines.positionAt(2), { line: 0, character: 2 });
    assert.deepEqual(lines.positionAt(4), { line: 0, character: 4 });
  });

  it('has one empty line for an empty text and a last empty line after a final break', () => {
    assert.equal(new LineIndex('').lineCount, 1);
    const lines = new LineIndex('a\n');
    assert.equal(lines.lineCount, 2);
    assert.deepEqual(lines.positionAt(2), { line: 1, character: 0 });
  });
});

describe('token spans in the editor', () => {
  let dir: string;
  let spans: TokenSpans;
  before(async () => {
    dir = tempDir();
    writeByteLevelTokenizer(dir);
    const tokenizer = await TextTokenizer.load(dir, null);
    const tokens = await tokenizer.encode(HARD_TEXT);
    spans = new TokenSpans(
      HARD_TEXT,
      Int32Array.from(tokens, (t) => t.id),
      Int32Array.from(tokens, (t) => t.start),
      Int32Array.from(tokens, (t) => t.end),
    );
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("draws each token's range over exactly its text", () => {
    const lines = spans.lines;
    // VS Code has no position between \r and \n: an offset there means the end of the line.
    const clamp = (o: number): number => (HARD_TEXT[o - 1] === '\r' && HARD_TEXT[o] === '\n' ? o - 1 : o);
    for (let i = 0; i < spans.count; i++) {
      if (!spans.visible(i)) continue;
      const { start, end } = spans.range(i);
      const drawn = HARD_TEXT.slice(lines.offsetAt(start), lines.offsetAt(end));
      assert.equal(drawn, HARD_TEXT.slice(clamp(spans.starts[i]), clamp(spans.ends[i])), `token ${i}`);
    }
  });

  it('leaves BOS out: it covers no text', () => {
    assert.equal(spans.visible(0), false);
    assert.notEqual(spans.tokenAt(0), 0);
  });

  it('finds the token under the caret, the one before it at a line end, and the later of two sharing an emoji', () => {
    const at = (s: string): number => HARD_TEXT.indexOf(s);
    assert.equal(spans.tokenText(spans.tokenAt(at('the'))), ' th');
    const lineEnd = at('\r\n');
    assert.equal(spans.tokenText(spans.tokenAt(lineEnd)), '🏽', 'at a line end: the last token of the line');
    const emptyLine = new TokenSpans(
      'a\n\nb',
      Int32Array.of(1, 2, 3, 4),
      Int32Array.of(0, 1, 2, 3),
      Int32Array.of(1, 2, 3, 4),
    );
    assert.equal(emptyLine.tokenAt(2), 2, 'on an empty line: its line break');
    assert.equal(emptyLine.tokenAt(4), 3, 'at the end of the text: the last token');
    assert.equal(spans.tokenAt(HARD_TEXT.length), -1, 'on the empty line after a final line break: none');
    const emoji = at('🙂');
    const sharing = [];
    for (let i = 0; i < spans.count; i++)
      if (spans.starts[i] <= emoji && spans.ends[i] > emoji) sharing.push(i);
    assert.equal(spans.tokenAt(emoji), sharing[sharing.length - 1]);
    assert.equal(spans.tokenAt(emoji + 1), sharing[sharing.length - 1], 'inside the surrogate pair too');
  });

  it('puts an emoji token on one line with two columns, and a tab at column 0', () => {
    const emoji = HARD_TEXT.indexOf('🙂');
    const t = spans.containing(emoji);
    const { start, end } = spans.range(t);
    assert.equal(start.line, 0);
    assert.equal(end.line, 0);
    assert.equal(end.character - start.character, spans.ends[t] - spans.starts[t]);
    const tab = spans.containing(HARD_TEXT.indexOf('\t'));
    const tabRange = spans.range(tab);
    assert.equal(spans.tokenText(tab).includes('\t'), true);
    assert.ok(tabRange.end.line === 1 && tabRange.end.character >= 1);
  });
});
