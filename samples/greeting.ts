/**
 * A tiny greeter with a cache, to try Loupe on TypeScript.
 * Open it with the Loupe sidebar showing and move the cursor through it:
 * the Token Inspector follows, token by token.
 */

export interface Greeting {
  /** BCP 47 language tag, e.g. "ja" or "zh-Hans". */
  readonly lang: string;
  readonly text: string;
}

// Greetings in a few scripts: Latin, Japanese (kana and kanji), Chinese, and an emoji.
const GREETINGS: readonly Greeting[] = [
  { lang: 'en', text: 'Hello, world! 👋' },
  { lang: 'ja', text: 'こんにちは、世界 🌏' },
  { lang: 'zh-Hans', text: '你好，世界' },
];

const cache = new Map<string, string>();

/** Returns the greeting for `lang`, falling back to English. */
export function greet(lang: string, name?: string): string {
  const key = `${lang}:${name ?? ''}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const greeting = GREETINGS.find((g) => g.lang === lang) ?? GREETINGS[0];
  const text = name ? `${greeting.text} (${name})` : greeting.text;
  cache.set(key, text);
  return text;
}

/** Counts user-perceived characters, so "👋" is one, not two UTF-16 code units. */
export function graphemeCount(text: string): number {
  const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
  return [...segmenter.segment(text)].length;
}
