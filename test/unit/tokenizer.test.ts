/**
 * Token spans are UTF-16 offsets into the source text, exact for emoji, CJK,
 * combining marks, tabs and CRLF; BOS is prepended as documented.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { TextTokenizer, Token } from '../../src/engine/tokenizer';
import { tempDir, writeByteLevelTokenizer } from './helpers';

const HARD_TEXT = 'héllo the 世界 🙂👍🏽\r\n\tx\u0301 end\r\n';

/** Checks the span invariants against the text; returns the non-BOS tokens. */
function checkSpans(text: string, tokens: readonly Token[]): Token[] {
  const body = tokens.filter((t) => !(t.start === 0 && t.end === 0));
  let covered = 0;
  for (const t of body) {
    assert.ok(t.start < t.end, `token ${JSON.stringify(t)} has an empty span`);
    assert.ok(t.start <= covered, `gap before ${JSON.stringify(t)}`);
    assert.ok(t.end >= covered, `token ${JSON.stringify(t)} goes backwards`);
    // No span boundary splits a surrogate pair.
    for (const at of [t.start, t.end]) {
      const prev = text.charCodeAt(at - 1);
      assert.ok(!(prev >= 0xd800 && prev <= 0xdbff), `span boundary at ${at} splits a surrogate pair`);
    }
    assert.equal(t.text, text.slice(t.start, t.end));
    covered = t.end;
  }
  assert.equal(covered, text.length, 'the spans reach the end of the text');
  return body;
}

describe('tokenizer spans', () => {
  let dir: string;
  let tokenizer: TextTokenizer;
  before(async () => {
    dir = tempDir();
    writeByteLevelTokenizer(dir);
    tokenizer = await TextTokenizer.load(dir, null);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('prepends BOS with an empty span, and can leave it out', async () => {
    const withBos = await tokenizer.encode('the');
    assert.equal(withBos[0].id, tokenizer.bosTokenId);
    assert.deepEqual([withBos[0].start, withBos[0].end], [0, 0]);
    const without = await tokenizer.encode('the', { prependBos: false });
    assert.equal(without.length, withBos.length - 1);
    assert.deepEqual(
      without.map((t) => t.id),
      withBos.slice(1).map((t) => t.id),
    );
  });

  it('tiles emoji, CJK, combining marks, tabs and CRLF exactly in UTF-16 units', async () => {
    const tokens = await tokenizer.encode(HARD_TEXT);
    const body = checkSpans(HARD_TEXT, tokens);
    const decoded = await tokenizer.decode(body.map((t) => t.id));
    assert.equal(decoded, HARD_TEXT, 'the tokens decode back to the text');
    const emoji = HARD_TEXT.indexOf('🙂');
    const onEmoji = body.filter((t) => t.start <= emoji && t.end > emoji);
    assert.ok(onEmoji.length >= 2, 'the emoji is split over several byte tokens');
    for (const t of onEmoji)
      assert.deepEqual([t.start, t.end], [emoji, emoji + 2], 'each spans the whole emoji');
    const cr = HARD_TEXT.indexOf('\r');
    assert.ok(body.some((t) => t.start === cr && t.text.startsWith('\r')));
    assert.ok(
      body.some((t) => t.text === ' th'),
      'leading spaces belong to their token (no trimming)',
    );
  });

  it('spans a CJK character split inside a merge on both tokens', async () => {
    const text = '世';
    const body = checkSpans(text, await tokenizer.encode(text));
    assert.equal(body.length, 2, 'a merged prefix token and a byte token');
    for (const t of body) assert.deepEqual([t.start, t.end], [0, 1]);
  });

  it('handles an empty text and a text of only a BOM-free newline', async () => {
    const empty = await tokenizer.encode('');
    assert.equal(empty.length, 1, 'just the BOS');
    checkSpans('\n', await tokenizer.encode('\n'));
  });
});
