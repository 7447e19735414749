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
 * SentencePiece-style tokenizers: a `▁` token stands for the space it replaced
 * and spans it; byte-fallback tokens (`<0xE4>`) span their whole character, as
 * byte-level ones do; the dummy prefix a Llama 2 normalizer prepends (to the
 * text, and again after each added token in it) covers no text, so when it is
 * a token of its own it has an empty span where it stands. A combining mark
 * that NFC folds into the character before it (e + U+0301 → é) belongs to
 * that character's tokens.
 *
 * BOS follows the checkpoint's tokenizer files, as Hugging Face's tokenizers do:
 * where the tokenizer class reads `add_bos_token` (Llama's and Gemma's, whose
 * fast tokenizers rebuild their template from it) it decides (Llama 2,
 * Mistral, Gemma: true; Phi-3: false, though its template names `<s>`); else a
 * post-processor template that adds BOS (Llama 3) adds it; else BOS is
 * prepended when tokenizer_config.json names a `bos_token` or, without one, the
 * config's `bos_token_id` (GPT-2, whose tokenizer ignores `add_bos_token`, as
 * TransformerLens does), and not at all when it sets `bos_token` to null
 * (Qwen). It is never added twice.
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
    /** The BOS id texts start with, or null when the checkpoint's tokenizer adds none. */
    private readonly bosId: number | null,
    /** Whether the tokenizer's post-processor adds that BOS itself (Llama 3-style templates). */
    private readonly addsBos: boolean,
    /** The dummy prefix a normalizer or Metaspace pre-tokenizer puts before the text (`▁`), or null. */
    private readonly dummyPrefix: string | null,
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
    const dummyPrefix = findDummyPrefix(json);
    let tokenizer: Tokenizer;
    try {
      tokenizer = Tokenizer.fromString(JSON.stringify(json));
    } catch (err) {
      throw new LoupeError(`${file}: the tokenizers library cannot load it (${(err as Error).message})`);
    }
    const settings = readBosSettings(dir);
    const named = typeof settings.bosToken === 'string' ? tokenizer.tokenToId(settings.bosToken) : undefined;
    const candidate = settings.bosToken === null ? null : (named ?? bosFromConfig);
    // Does the tokenizer's own post-processor add BOS? Encode an empty string and see.
    const probe = await tokenizer.encode('', null, { addSpecialTokens: true });
    const probeIds = probe.getIds();
    const templateAdds = probeIds.length > 0 && candidate !== null && probeIds[0] === candidate;
    const bosId = settings.addBosToken === false ? null : candidate;
    return new TextTokenizer(
      tokenizer,
      bosId,
      bosId !== null && templateAdds,
      dummyPrefix,
      tokenizer.getVocabSize(true),
    );
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
    const spans: [number, number][] = [];
    const body: number[] = []; // indices of the tokens that come from the text
    for (let i = 0; i < ids.length; i++) {
      if (special[i]) {
        spans.push([0, 0]);
        continue;
      }
      spans.push([toUtf16(offsets[i][0]), toUtf16(offsets[i][1])]);
      body.push(i);
    }
    if (this.dummyPrefix !== null) {
      for (const i of body) {
        const [s, e] = spans[i];
        const source = text.slice(s, e);
        // The prefix alone (before the text, or each stretch between added tokens) covers no character.
        if (
          this.tokenizer.idToToken(ids[i]) === this.dummyPrefix &&
          source !== ' ' &&
          source !== this.dummyPrefix
        ) {
          spans[i] = [s, s];
        }
      }
    }
    foldAbsorbedMarks(text, spans, body);
    const tokens: Token[] = [];
    if (prependBos && this.bosId !== null && !this.addsBos) {
      tokens.push({ id: this.bosId, text: this.tokenizer.idToToken(this.bosId) ?? '', start: 0, end: 0 });
    }
    for (let i = 0; i < ids.length; i++) {
      const [start, end] = spans[i];
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

/** Tokenizer classes whose BOS follows `add_bos_token` (GPT-2's fast tokenizer, for one, ignores it). */
const BOS_FLAG_CLASSES = /^(Llama|CodeLlama|Gemma)Tokenizer(Fast)?$/;

interface BosSettings {
  /** `bos_token`: its text, null where the file sets it to null (no BOS), undefined where it is not given. */
  readonly bosToken: string | null | undefined;
  /** `add_bos_token`, where the file gives it and its `tokenizer_class` reads it. */
  readonly addBosToken: boolean | undefined;
}

/** Reads `bos_token` (a string or an AddedToken object) and `add_bos_token` from tokenizer_config.json. */
function readBosSettings(dir: string): BosSettings {
  const file = path.join(dir, 'tokenizer_config.json');
  if (!isPresent(file)) return { bosToken: undefined, addBosToken: undefined };
  const cfg = readJsonObject(file, JSON_KINDS.tokenizerConfig);
  const b = cfg.bos_token;
  let bosToken: string | null | undefined;
  if (typeof b === 'string') bosToken = b;
  else if (b === null) bosToken = null;
  else if (b && typeof b === 'object' && typeof (b as { content?: unknown }).content === 'string') {
    bosToken = (b as { content: string }).content;
  }
  const add = cfg.add_bos_token;
  const reads = typeof cfg.tokenizer_class === 'string' && BOS_FLAG_CLASSES.test(cfg.tokenizer_class);
  return { bosToken, addBosToken: reads && typeof add === 'boolean' ? add : undefined };
}

/**
 * The dummy prefix the tokenizer puts before the text: a `Prepend` normalizer's
 * string (Llama 2, Mistral, Phi-3), or a Metaspace pre-tokenizer's replacement
 * when it prepends one (its `prepend_scheme`, or the older `add_prefix_space`).
 */
function findDummyPrefix(json: Record<string, unknown>): string | null {
  const parts = (node: unknown): Record<string, unknown>[] => {
    if (!node || typeof node !== 'object') return [];
    const o = node as Record<string, unknown>;
    const inner = o.normalizers ?? o.pretokenizers;
    return Array.isArray(inner) ? inner.flatMap(parts) : [o];
  };
  for (const n of parts(json.normalizer)) {
    if (n.type === 'Prepend' && typeof n.prepend === 'string') return n.prepend;
  }
  for (const p of parts(json.pre_tokenizer)) {
    if (p.type !== 'Metaspace') continue;
    const scheme = p.prepend_scheme ?? (p.add_prefix_space === false ? 'never' : 'always');
    if (scheme !== 'never') return typeof p.replacement === 'string' ? p.replacement : '\u2581';
  }
  return null;
}

/**
 * A combining mark a normalizer folded into the character before it (NFC: e +
 * U+0301 → é) gets no offsets of its own; it joins the span of the tokens that
 * end where it starts, so the spans still tile the text.
 */
function foldAbsorbedMarks(text: string, spans: [number, number][], body: readonly number[]): void {
  const marksOnly = /^\p{M}+$/u;
  let covered = 0;
  const extend = (to: number): void => {
    if (to > covered && marksOnly.test(text.slice(covered, to))) {
      for (const i of body) if (spans[i][1] === covered && spans[i][0] < covered) spans[i][1] = to;
      covered = to;
    }
  };
  for (const i of body) {
    extend(spans[i][0]);
    covered = Math.max(covered, spans[i][1]);
  }
  extend(text.length);
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
