/**
 * Token spans and BOS for the second-wave families' tokenizers (the fixtures'
 * tokenizer.json files, written in each family's real configuration by
 * tools/reference/family_tokenizers.py): Qwen's byte-level BPE with NFC,
 * Llama 3's byte-level BPE with its BOS template, Gemma's SentencePiece BPE
 * with byte fallback, and Llama 2's (Mistral, Phi-3) with its dummy prefix.
 *
 * The expected spans are computed here, not by the engine: each token's bytes
 * are decoded from the vocabulary in tokenizer.json (byte-level characters
 * through GPT-2's byte table, `<0xNN>` pieces as that byte, `▁` as a space),
 * and walked along the text as the family's normalizer sees it (NFC; a
 * space prepended to each stretch of text between added tokens, which comes
 * from no character of the text); a token spans
 * the characters its bytes come from.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HookedModel } from '../../src/engine/model';
import { TextTokenizer, Token } from '../../src/engine/tokenizer';
import { FIXTURES, tempDir } from './helpers';

/** What the tokenizer does to the text before its model: nothing, NFC, a dummy prefix before each
 * stretch between added tokens (a Prepend normalizer), or before the text's first stretch only
 * (a Metaspace pre-tokenizer with prepend_scheme "first"). */
type Normalizer = 'none' | 'nfc' | 'dummy-prefix' | 'metaspace-first';
type Pieces = 'byte-level' | 'sentencepiece';

interface Family {
  readonly name: string;
  readonly fixture: string;
  /** Changes to the fixture's tokenizer.json (written to a copy) for a variant of it. */
  readonly rewrite?: Record<string, unknown>;
  readonly pieces: Pieces;
  readonly normalizer: Normalizer;
  /** The BOS token text must start with, or null for none (tokenizer_config.json / template). */
  readonly bos: string | null;
  readonly specialText: string;
}

const FAMILIES: readonly Family[] = [
  {
    name: 'qwen3',
    fixture: 'qwen3',
    pieces: 'byte-level',
    normalizer: 'nfc',
    bos: null,
    specialText: '<|im_start|>user\nhi<|im_end|>',
  },
  {
    name: 'llama3',
    fixture: 'llama3',
    pieces: 'byte-level',
    normalizer: 'none',
    bos: '<|begin_of_text|>',
    specialText: '<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>',
  },
  {
    name: 'gemma2',
    fixture: 'gemma2',
    pieces: 'sentencepiece',
    normalizer: 'none',
    bos: '<bos>',
    specialText: '<start_of_turn>user\nhi<end_of_turn>\n',
  },
  {
    name: 'mistral',
    fixture: 'mistral',
    pieces: 'sentencepiece',
    normalizer: 'dummy-prefix',
    bos: '<s>',
    specialText: 'x </s>',
  },
  {
    name: 'phi3',
    fixture: 'phi3',
    pieces: 'sentencepiece',
    normalizer: 'dummy-prefix',
    bos: null, // add_bos_token: false, though the template names <s>
    specialText: '<|user|>\nhi<|end|>\n<|assistant|>',
  },
  {
    // Newer Llama 2-style saves (legacy: false): the dummy prefix comes from a Metaspace pre-tokenizer.
    name: 'mistral with a Metaspace pre-tokenizer',
    fixture: 'mistral',
    rewrite: {
      normalizer: null,
      pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false },
    },
    pieces: 'sentencepiece',
    normalizer: 'metaspace-first',
    bos: '<s>',
    specialText: 'x </s> y',
  },
];

const TEXTS = [
  'Thé heads  read 世界 🙂👍🏽\r\n\tx\u0301 e\u0301nd 1234',
  ' leading space, then\r\nCRLF\r\n',
  '🙂',
  'e\u0301',
  '1 x',
];

/** GPT-2's byte-level alphabet (the published bytes_to_unicode table), character → byte. */
const BYTE_OF_CHAR: ReadonlyMap<string, number> = (() => {
  const printable = (b: number): boolean =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const map = new Map<string, number>();
  let n = 0;
  for (let b = 0; b < 256; b++) map.set(String.fromCodePoint(printable(b) ? b : 256 + n++), b);
  return map;
})();

const utf8 = (s: string): number[] => [...Buffer.from(s, 'utf8')];

/** Id → (piece, whether it is an added token) from tokenizer.json itself. */
function readVocab(dir: string): Map<number, { piece: string; added: boolean }> {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as {
    model: { vocab: Record<string, number> };
    added_tokens: { id: number; content: string }[];
  };
  const vocab = new Map<number, { piece: string; added: boolean }>();
  for (const [piece, id] of Object.entries(json.model.vocab)) vocab.set(id, { piece, added: false });
  for (const t of json.added_tokens) vocab.set(t.id, { piece: t.content, added: true });
  return vocab;
}

function tokenBytes(family: Family, piece: string, added: boolean): number[] {
  if (added) return utf8(piece);
  if (family.pieces === 'byte-level') {
    return [...piece].map((ch) => {
      const b = BYTE_OF_CHAR.get(ch);
      assert.ok(b !== undefined, `${JSON.stringify(piece)} is not byte-level`);
      return b;
    });
  }
  const byte = /^<0x([0-9A-F]{2})>$/.exec(piece);
  return byte ? [parseInt(byte[1], 16)] : utf8(piece.replace(/\u2581/g, ' '));
}

/** The bytes the model reads for `text` (after the family's normalizer), each with the UTF-16 range of
 * the characters of `text` it comes from. Added tokens in the text are not normalized. */
function normalizedBytes(
  family: Family,
  text: string,
  specials: readonly string[],
): [number, number, number][] {
  const out: [number, number, number][] = [];
  // Units: an added token, or a character with the combining marks after it.
  const unit = new RegExp(
    `${[...specials]
      .sort((a, b) => b.length - a.length)
      .map((s) => s.replace(/[|\\[\]()^$.*+?{}/]/g, '\\$&'))
      .join('|')}|.\\p{M}*`,
    'gsu',
  );
  let segmentStart = true;
  for (const m of text.matchAll(unit)) {
    const s = m.index;
    const u = m[0];
    // The text between added tokens is normalized piece by piece: each piece gets its own dummy
    // prefix (Prepend); Metaspace's "first" gives one to a stretch that starts the text, unless
    // it starts with a space already.
    const prefixed =
      family.normalizer === 'dummy-prefix' ||
      (family.normalizer === 'metaspace-first' && s === 0 && u !== ' ');
    if (specials.includes(u)) segmentStart = true;
    else if (segmentStart && prefixed) out.push([0x20, s, s]);
    if (!specials.includes(u)) segmentStart = false;
    const composed = family.normalizer === 'nfc' && !specials.includes(u) ? u.normalize('NFC') : u;
    if (composed !== u) {
      for (const b of utf8(composed)) out.push([b, s, s + u.length]); // folded: the whole unit
      continue;
    }
    let at = s;
    for (const ch of u) {
      for (const b of utf8(ch)) out.push([b, at, at + ch.length]);
      at += ch.length;
    }
  }
  return out;
}

/** The spans each token must have, from its bytes walked along the normalized text. */
function expectedSpans(
  family: Family,
  text: string,
  ids: readonly number[],
  vocab: Map<number, { piece: string; added: boolean }>,
): [number, number][] {
  const specials = [...vocab.values()].filter((v) => v.added).map((v) => v.piece);
  const stream = normalizedBytes(family, text, specials);
  let at = 0;
  const spans = ids.map((id): [number, number] => {
    const entry = vocab.get(id);
    assert.ok(entry, `id ${id} is not in tokenizer.json`);
    const bytes = tokenBytes(family, entry.piece, entry.added);
    const mine = stream.slice(at, at + bytes.length);
    assert.deepEqual(
      mine.map((b) => b[0]),
      bytes,
      `token ${id} (${JSON.stringify(entry.piece)}) is not the text's next bytes at ${at}`,
    );
    at += bytes.length;
    const covering = mine.filter((b) => b[2] > b[1]);
    if (covering.length === 0) return [mine[0][1], mine[0][1]]; // the dummy prefix: no character of the text
    return [Math.min(...covering.map((b) => b[1])), Math.max(...covering.map((b) => b[2]))];
  });
  assert.equal(at, stream.length, 'the tokens hold every byte of the text');
  return spans;
}

function configBos(dir: string): number | null {
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as {
    bos_token_id?: number;
  };
  return config.bos_token_id ?? null;
}

/** A copy of a fixture's tokenizer files (and config.json) with some tokenizer.json fields replaced. */
function rewrittenCopy(dir: string, changes: Record<string, unknown>): string {
  const out = tempDir('loupe-tok-');
  for (const f of ['tokenizer_config.json', 'config.json'])
    fs.copyFileSync(path.join(dir, f), path.join(out, f));
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  fs.writeFileSync(path.join(out, 'tokenizer.json'), JSON.stringify({ ...json, ...changes }));
  return out;
}

describe('family tokenizers: spans and BOS', () => {
  for (const family of FAMILIES) {
    describe(family.name, () => {
      let dir = path.join(FIXTURES, family.fixture);
      let tokenizer: TextTokenizer;
      let vocab: Map<number, { piece: string; added: boolean }>;
      before(async () => {
        if (family.rewrite) dir = rewrittenCopy(dir, family.rewrite);
        // As HookedModel.open loads it: the config's bos_token_id as the fallback.
        tokenizer = await TextTokenizer.load(dir, configBos(dir));
        vocab = readVocab(dir);
      });

      const bosId = (): number | null => {
        if (family.bos === null) return null;
        const id = [...vocab].find(([, v]) => v.piece === family.bos)?.[0];
        assert.ok(id !== undefined);
        return id;
      };

      const body = (tokens: readonly Token[]): Token[] => {
        const bos = bosId();
        if (bos === null) return [...tokens];
        assert.equal(tokens[0].id, bos, 'the text starts with BOS');
        assert.deepEqual([tokens[0].start, tokens[0].end], [0, 0]);
        assert.notEqual(tokens[1]?.id, bos, 'BOS is not added twice');
        return tokens.slice(1);
      };

      it('starts with BOS as tokenizer_config.json and the template say, once, and can leave it out', async () => {
        assert.equal(tokenizer.bosTokenId, bosId());
        const tokens = await tokenizer.encode('hi');
        const rest = body(tokens);
        if (family.bos === null)
          assert.ok(
            tokens.every((t) => !(vocab.get(t.id)?.added ?? false)),
            'no BOS',
          );
        const without = await tokenizer.encode('hi', { prependBos: false });
        assert.deepEqual(
          without.map((t) => t.id),
          rest.map((t) => t.id),
        );
        const empty = await tokenizer.encode('');
        assert.equal(empty.length, family.bos === null ? 0 : 1);
      });

      for (const [i, text] of [...TEXTS, family.specialText].entries()) {
        it(`spans text ${i} exactly in UTF-16 units: ${JSON.stringify(text).slice(0, 40)}`, async () => {
          const tokens = body(await tokenizer.encode(text));
          const want = expectedSpans(
            family,
            text,
            tokens.map((t) => t.id),
            vocab,
          );
          assert.deepEqual(
            tokens.map((t) => [t.start, t.end]),
            want,
          );
          for (const t of tokens) assert.equal(t.text, text.slice(t.start, t.end));
          if (i < TEXTS.length && !family.rewrite) {
            // The family's decoder chain gives the text back (NFC'd where the normalizer composes).
            const decoded = await tokenizer.decode(tokens.map((t) => t.id));
            assert.equal(decoded, family.normalizer === 'nfc' ? text.normalize('NFC') : text);
          }
        });
      }
    });
  }

  it('covers byte fallback, a lone dummy prefix, NFC folding and CRLF in these texts', async () => {
    const gemma = await TextTokenizer.load(path.join(FIXTURES, 'gemma2'), 2);
    const emoji = await gemma.encode('🙂', { prependBos: false });
    assert.deepEqual(
      emoji.map((t) => gemma.idToToken(t.id)),
      ['<0xF0>', '<0x9F>', '<0x99>', '<0x82>'],
    );
    const phi3 = await TextTokenizer.load(path.join(FIXTURES, 'phi3'), 1);
    const digits = await phi3.encode('1 x');
    assert.equal(
      phi3.idToToken(digits[0].id),
      '\u2581',
      'the dummy prefix is a token of its own before a digit',
    );
    const qwen = await TextTokenizer.load(path.join(FIXTURES, 'qwen3'), null);
    const folded = await qwen.encode('e\u0301');
    assert.equal(folded.length, 2, 'NFC makes é, two bytes');
    const crlf = await gemma.encode('a\r\nb', { prependBos: false });
    assert.ok(crlf.some((t) => t.text === '\r') && crlf.some((t) => t.text === '\n'));
  });
});

describe("the model's BOS is the one its tokenizer prepends", () => {
  // The views that window text (lens, TextSpan, tuned-lens training) start each window with
  // HookedModel.bosTokenId; it must agree with what `tokenize` feeds the model.
  for (const [fixture, config] of [
    ['qwen3', 'no BOS, though config.json names a bos_token_id'],
    ['llama3', 'BOS from the template'],
    ['gemma2', 'BOS from tokenizer_config.json'],
  ] as const) {
    it(`${fixture}: ${config}`, async () => {
      const model = await HookedModel.open(path.join(FIXTURES, fixture), {
        cacheDir: tempDir('loupe-bos-'),
        threads: 1,
      });
      try {
        const tokens = await model.tokenize('a b');
        const first = tokens[0];
        const prepended = first.start === 0 && first.end === 0 ? first.id : null;
        assert.equal(model.bosTokenId, prepended);
      } finally {
        await model.dispose();
      }
    });
  }
});
