/**
 * Semantic tokens → a probe's labelled spans: VS Code's relative encoding
 * (line and start deltas, UTF-16 columns) decoded by hand-worked arrays, over
 * multi-line comments, CRLF and an emoji before a token; and a lone file cut
 * at blank lines into documents a probe can hold out.
 */
import { strict as assert } from 'node:assert';
import { decodeSemanticTokens, splitAtBlankLines } from '../../src/extension/semanticTokens';

const LEGEND = ['comment', 'variable', 'function', 'string'];

describe('semantic tokens as labelled spans', () => {
  // Line 0 starts at 0, line 1 at 9 (after "/** doc\r\n"), line 2 at 21.
  const text = "/** doc\r\n * more */\r\nconst s = '😀'; let x = f(s);\r\n";
  const data = [
    [0, 0, 7, 0, 0], // a comment token per line of the doc comment
    [1, 0, 10, 0, 0],
    [1, 6, 1, 1, 0], // s: a new line, so the start is from the line's start
    [0, 4, 4, 3, 0], // '😀': four UTF-16 units, the emoji two of them
    [0, 10, 1, 1, 0], // x: after the emoji, columns count UTF-16 units
    [0, 4, 1, 2, 0], // f
    [0, 2, 1, 1, 0], // s
  ].flat();

  it('decodes line and start deltas to UTF-16 offsets, across CRLF and an emoji', () => {
    const spans = decodeSemanticTokens(text, Uint32Array.from(data), LEGEND);
    assert.deepEqual(spans, [
      { start: 0, end: 7, label: 'comment' },
      { start: 9, end: 19, label: 'comment' },
      { start: 27, end: 28, label: 'variable' },
      { start: 31, end: 35, label: 'string' },
      { start: 41, end: 42, label: 'variable' },
      { start: 45, end: 46, label: 'function' },
      { start: 47, end: 48, label: 'variable' },
    ]);
    assert.deepEqual(
      spans.map((s) => text.slice(s.start, s.end)),
      ['/** doc', ' * more */', 's', "'😀'", 'x', 'f', 's'],
    );
  });

  it('reads LF and CR line ends as VS Code does', () => {
    for (const eol of ['\n', '\r']) {
      const t = `let a;${eol}let b;`;
      const spans = decodeSemanticTokens(t, [0, 4, 1, 1, 0, 1, 4, 1, 1, 0], LEGEND);
      assert.deepEqual(
        spans.map((s) => t.slice(s.start, s.end)),
        ['a', 'b'],
      );
    }
  });

  it('leaves out types the legend lacks and a trailing partial token; clamps a length at the line end', () => {
    const t = 'ab\r\ncd';
    const spans = decodeSemanticTokens(t, [0, 0, 9, 1, 0, 1, 0, 2, 7, 0, 0, 1, 1], LEGEND);
    assert.deepEqual(spans, [{ start: 0, end: 2, label: 'variable' }]);
  });
});

describe('a lone file cut at blank lines', () => {
  const doc = {
    source: 'f.ts',
    text: 'a\n\nb\n\nc\n',
    spans: [
      { start: 0, end: 1, label: 'variable' },
      { start: 3, end: 4, label: 'function' },
      { start: 6, end: 7, label: 'variable' },
    ],
  };

  it('gives pieces named by their lines, with their spans moved to their own offsets', () => {
    assert.deepEqual(splitAtBlankLines(doc, 3), [
      { source: 'f.ts:1-2', text: 'a\n\n', spans: [{ start: 0, end: 1, label: 'variable' }] },
      { source: 'f.ts:3-4', text: 'b\n\n', spans: [{ start: 0, end: 1, label: 'function' }] },
      { source: 'f.ts:5', text: 'c\n', spans: [{ start: 0, end: 1, label: 'variable' }] },
    ]);
  });

  it('keeps every character and span, and gives fewer pieces where there are fewer blank lines', () => {
    const two = splitAtBlankLines(doc, 2);
    assert.equal(two.map((p) => p.text).join(''), doc.text);
    assert.equal(two.flatMap((p) => p.spans).length, doc.spans.length);
    assert.equal(splitAtBlankLines(doc, 10).length, 3);
    const solid = { source: 'g.ts', text: 'a\nb\nc', spans: [] };
    assert.deepEqual(splitAtBlankLines(solid, 4), [solid]);
  });
});
