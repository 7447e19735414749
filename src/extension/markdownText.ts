/**
 * Text from the user's files, probe files and feature databases put into the
 * Markdown of hovers and tooltips. Such text can hold anything (`<img>`,
 * `[x](command:…)`, backtick runs, `$(icon)`), so it goes in escaped: it shows
 * as written and never becomes markup, HTML or a link. Free of `vscode`, so
 * the tests call it directly.
 */

/** Text shown as itself in Markdown, HTML enabled or not. */
export function escapeMarkdown(text: string): string {
  // One pass: HTML's three as entities (rendered as the characters, never as tags), every
  // other ASCII punctuation mark backslash-escaped (CommonMark allows it for all of them).
  return text.replace(/[!-/:-@[-`{-~]/g, (c) => HTML_ENTITIES[c] ?? `\\${c}`).replace(/\r\n|\n|\r/g, ' ');
}

const HTML_ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' };

/**
 * A code span holding `text` exactly: its fence is one backtick longer than
 * the longest run inside, so no run can close it early, and a space pads text
 * that starts or ends with a backtick (CommonMark strips one from each side).
 */
export function inlineCode(text: string): string {
  const oneLine = text.replace(/\r\n|\n|\r/g, ' ');
  if (oneLine === '') return '` `';
  const longest = Math.max(0, ...(oneLine.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const pad = oneLine.startsWith('`') || oneLine.endsWith('`') || /^ .* $/.test(oneLine) ? ' ' : '';
  return `${fence}${pad}${oneLine}${pad}${fence}`;
}
