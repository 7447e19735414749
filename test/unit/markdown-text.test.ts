/**
 * Text from files in hovers and tooltips: shown as written, never as markup.
 * Expected strings follow CommonMark: any ASCII punctuation may be
 * backslash-escaped, entities render as their characters, and a code span
 * closes only at a backtick run as long as the one that opened it.
 */
import { strict as assert } from 'node:assert';
import { escapeMarkdown, inlineCode } from '../../src/extension/markdownText';

describe('Markdown for text from files', () => {
  it('turns HTML into entities, so no tag reaches a hover that allows HTML', () => {
    assert.equal(
      escapeMarkdown('<img src=x onerror=alert(1)>'),
      '&lt;img src\\=x onerror\\=alert\\(1\\)&gt;',
    );
    assert.equal(escapeMarkdown('a & b'), 'a &amp; b');
    assert.equal(escapeMarkdown('&lt;'), '&amp;lt\\;', 'an entity in the text shows as written');
  });

  it('escapes links, emphasis, headings, code and theme icons', () => {
    assert.equal(escapeMarkdown('[x](command:rm)'), '\\[x\\]\\(command\\:rm\\)');
    assert.equal(escapeMarkdown('**bold** _it_'), '\\*\\*bold\\*\\* \\_it\\_');
    assert.equal(escapeMarkdown('# title'), '\\# title');
    assert.equal(escapeMarkdown('`code`'), '\\`code\\`');
    assert.equal(escapeMarkdown('$(alert)'), '\\$\\(alert\\)');
    assert.equal(escapeMarkdown('a\\b'), 'a\\\\b');
  });

  it('keeps letters, digits and other scripts as they are, and text on one line', () => {
    assert.equal(escapeMarkdown('def foo 42 héllo 日本'), 'def foo 42 héllo 日本');
    assert.equal(escapeMarkdown('one\ntwo\r\n==='), 'one two \\=\\=\\=');
  });

  it('fences a code span longer than any backtick run inside it', () => {
    assert.equal(inlineCode('x'), '`x`');
    assert.equal(inlineCode('a`b'), '``a`b``');
    // Two backticks used to close a two-backtick fence early and let the rest out as Markdown.
    assert.equal(inlineCode('a``b'), '```a``b```');
    assert.equal(inlineCode('```'), '```` ``` ````');
    assert.equal(inlineCode('`x'), '`` `x ``', 'a leading backtick is padded off the fence');
    assert.equal(inlineCode(''), '` `');
    assert.equal(inlineCode('<b>'), '`<b>`', 'a code span shows HTML as text already');
  });

  it('never lets a run inside match the fence', () => {
    for (const text of ['`', '``', 'a```b`', '````x``', '` ` `']) {
      const md = inlineCode(text);
      const fence = /^`+/.exec(md)![0].length;
      const inner = md.slice(fence, md.length - fence);
      const runs = (inner.match(/`+/g) ?? []).map((r) => r.length);
      assert.ok(
        runs.every((r) => r !== fence),
        `${JSON.stringify(text)} → ${md}`,
      );
      assert.equal(inner.trim() === text.trim() || inner === ` ${text} `, true, md);
    }
  });
});
