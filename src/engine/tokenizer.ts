/**
 * Text → tokens with each token's span in the source text, in UTF-16 code
 * units (VS Code's unit). Uses Hugging Face's `tokenizers` library on the
 * checkpoint's own `tokenizer.json`.
 *
 * Spans: the library reports offsets in Unicode code points; they are mapped to
 * UTF-16 here, so an emoji (one code point, two UTF-16 units) is spanned
 * whole. Where a byte-level token holds only some of a character's UTF-8
 * bytes (an emoji or CJK character split over two tokens), each of those
 * tokens spans the whole character, so the spans overlap on it; no token has
 * an empty span unless it covers no text at all (a prepended BOS: start = end = 0).
 * Offset trimming (ByteLevel `trim_offsets`) is switched off, so a token such
 * as " foo" spans its leading space too and the spans tile the text exactly.
 */
import * as path from 'node:path';
import { Tokenizer } from 'tokenizers';
import {
  Infer,
  arrayOf,
  nonNegInt,
  nullable,
  openObject,
  optional,
  str,
  unknownValue,
} from '../shared/schema';
import { LoupeError } from './errors';
import { isPresent } from './inputFiles';
import { JSON_KINDS, readJsonFile, readJsonObject } from './untrustedJson';

export interface Token {
  readonly id: number;
  readonly text: string;
  /** UTF-16 offsets into the source text; a prepended BOS has start = end = 0. */
  readonly start: number;
  readonly end: number;
}

export interface EncodeOptions {
  /** Prepend BOS when the tokenizer does not add one itself (TransformerLens's default). Default true. */
  readonly prependBos?: boolean;
}

export class TextTokenizer {
  private constructor(
    private readonly tokenizer: Tokenizer,
    /** BOS id Loupe prepends itself, or null when the tokenizer's post-processor adds it or there is none. */
    private readonly bosId: number | null,
    /** Whether encoding with special tokens adds a BOS of its own (Llama-style templates). */
    private readonly addsBos: boolean,
    readonly vocabSize: number,
  ) {}

  /**
   * Loads the folder's tokenizer.json. With `vocabSize` (the model's), an id
   * in the vocabulary or the added tokens at or past it is refused here,
   * naming the file and the id, instead of failing later at the embedding.
   */
  static async load(dir: string, bosFromConfig: number | null, vocabSize?: number): Promise<TextTokenizer> {
    const file = path.join(dir, 'tokenizer.json');
    if (!isPresent(file)) {
      throw new LoupeError(
        `${dir}: no tokenizer.json; Loupe needs the checkpoint's Hugging Face tokenizer to read text`,
      );
    }
    const json = readJsonFile(file, JSON_KINDS.tokenizer, tokenizerFileSchema);
    if (vocabSize !== undefined) checkIdsBelow(json, vocabSize, file);
    disableOffsetTrimming(json);
    let tokenizer: Tokenizer;
    try {
      tokenizer = Tokenizer.fromString(JSON.stringify(json));
    } catch (err) {
      throw new LoupeError(`${file}: the tokenizers library cannot load it (${(err as Error).message})`);
    }
    const bosToken = readBosToken(dir);
    const bosId = (bosToken !== null ? tokenizer.tokenToId(bosToken) : null) ?? bosFromConfig;
    // Does the tokenizer's own post-processor add BOS? Encode an empty string and see.
    const probe = await tokenizer.encode('', null, { addSpecialTokens: true });
    const probeIds = probe.getIds();
    const addsBos = probeIds.length > 0 && bosId !== null && probeIds[0] === bosId;
    return new TextTokenizer(tokenizer, addsBos ? null : bosId, addsBos, tokenizer.getVocabSize(true));
  }

  get bosTokenId(): number | null {
    return this.bosId;
  }

  async encode(text: string, options: EncodeOptions = {}): Promise<Token[]> {
    const prependBos = options.prependBos ?? true;
    const enc = await this.tokenizer.encode(text, null, { addSpecialTokens: this.addsBos && prependBos });
    const ids = enc.getIds();
    const offsets = enc.getOffsets();
    const special = enc.getSpecialTokensMask();
    const toUtf16 = codePointToUtf16(text);
    const tokens: Token[] = [];
    if (prependBos && this.bosId !== null) {
      tokens.push({ id: this.bosId, text: this.tokenizer.idToToken(this.bosId) ?? '', start: 0, end: 0 });
    }
    for (let i = 0; i < ids.length; i++) {
      const [s, e] = special[i] ? [0, 0] : offsets[i];
      const start = toUtf16(s);
      const end = toUtf16(e);
      tokens.push({ id: ids[i], text: text.slice(start, end), start, end });
    }
    return tokens;
  }

  async decode(ids: readonly number[]): Promise<string> {
    return this.tokenizer.decode([...ids], false);
  }

  idToToken(id: number): string | null {
    return this.tokenizer.idToToken(id);
  }

  /**
   * One token as a person should read it: its decoded text, or, for a token
   * that holds only part of a character's UTF-8 bytes (which decodes to U+FFFD),
   * those bytes as `<0xE4><0xB8>`.
   */
  async displayText(id: number): Promise<string> {
    const text = await this.decode([id]);
    if (!text.includes('\uFFFD')) return text;
    const raw = this.idToToken(id) ?? '';
    if (/^(<0x[0-9A-Fa-f]{2}>)+$/.test(raw)) return raw; // SentencePiece byte fallback names them so already
    const bytes = [...raw].map((ch) => BYTE_LEVEL_DECODER.get(ch));
    if (raw === '' || bytes.some((b) => b === undefined)) return text;
    return bytes.map((b) => `<0x${b!.toString(16).toUpperCase().padStart(2, '0')}>`).join('');
  }
}

/** GPT-2's byte-level alphabet, reversed: the character that stands for each byte → the byte. */
const BYTE_LEVEL_DECODER: ReadonlyMap<string, number> = (() => {
  const printable = (b: number): boolean =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const map = new Map<string, number>();
  let n = 0;
  for (let b = 0; b < 256; b++) map.set(String.fromCharCode(printable(b) ? b : 256 + n++), b);
  return map;
})();

const addedToken = openObject({ id: nonNegInt, content: str });

/** The parts of tokenizer.json Loupe reads itself; the tokenizers library checks the rest. */
const tokenizerFileSchema = openObject({
  model: openObject({ type: optional(str), vocab: optional(unknownValue) }),
  added_tokens: optional(nullable(arrayOf(addedToken, 10_000_000))),
});

type TokenizerFile = Infer<typeof tokenizerFileSchema>;

/** Every id the vocabulary and the added tokens hold must index the model's embedding. */
function checkIdsBelow(json: TokenizerFile, vocabSize: number, file: string): void {
  const beyond = (id: unknown, token: string): void => {
    if (typeof id === 'number' && id >= vocabSize) {
      throw new LoupeError(
        `${file}: token ${JSON.stringify(token)} has id ${id}, but the model's vocab_size is ${vocabSize} (ids 0..${vocabSize - 1}); the tokenizer belongs to another model`,
      );
    }
  };
  const vocab = json.model.vocab;
  // BPE, WordPiece and WordLevel map token → id; Unigram lists [token, score] in id order.
  if (Array.isArray(vocab)) {
    if (vocab.length > vocabSize) beyond(vocabSize, String((vocab[vocabSize] as unknown[] | null)?.[0]));
  } else if (vocab && typeof vocab === 'object') {
    for (const [token, id] of Object.entries(vocab as Record<string, unknown>)) beyond(id, token);
  }
  for (const t of json.added_tokens ?? []) beyond(t.id, t.content);
}

/** Reads `bos_token` from tokenizer_config.json (a string or an AddedToken object), if any. */
function readBosToken(dir: string): string | null {
  const file = path.join(dir, 'tokenizer_config.json');
  if (!isPresent(file)) return null;
  const b = readJsonObject(file, JSON_KINDS.tokenizerConfig).bos_token;
  if (typeof b === 'string') return b;
  if (b && typeof b === 'object' && typeof (b as { content?: unknown }).content === 'string') {
    return (b as { content: string }).content;
  }
  return null;
}

/** Turns off ByteLevel offset trimming wherever it appears (ids do not change, only spans). */
function disableOffsetTrimming(node: unknown): void {
  if (Array.isArray(node)) {
    node.forEach(disableOffsetTrimming);
    return;
  }
  if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (o.type === 'ByteLevel' && 'trim_offsets' in o) o.trim_offsets = false;
    if (o.type === 'RobertaProcessing' && 'trim_offsets' in o) o.trim_offsets = false;
    for (const [k, v] of Object.entries(o)) {
      if (k !== 'model' && k !== 'added_tokens') disableOffsetTrimming(v);
    }
  }
}

/** Maps code-point offsets of `text` to UTF-16 offsets. */
function codePointToUtf16(text: string): (cp: number) => number {
  const table: number[] = [0];
  let u = 0;
  for (const ch of text) {
    u += ch.length;
    table.push(u);
  }
  return (cp) => table[Math.min(Math.max(cp, 0), table.length - 1)];
}
