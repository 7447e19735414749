// Trains the default model's byte-level BPE tokenizer with Hugging Face's
// `tokenizers` library (the Node binding) on the training split, checks it,
// and tokenizes both splits.
//
// Whole documents, not lines. `Tokenizer.train(files)` reads its files line by
// line, so newline + indentation ("\n        ", one GPT-2 pre-token) would
// never be seen together. Each training document is therefore written on one
// line with "\n" replaced by U+E000 (absent from the corpus; build_corpus.mjs
// checks), and the training tokenizer carries a Replace normalizer that turns
// U+E000 back into "\n" before pre-tokenization. The shipped tokenizer has no
// normalizer.
//
// Vocabulary size. The binding trains with the BPE model's default trainer
// (30 000 tokens) and takes no size option, so the vocabulary is cut
// afterwards. BPE training is greedy: each merge is the most frequent pair
// given the merges before it, and the stopping size plays no part in choosing
// it, so the first k merges of a longer run are exactly the merges a run
// stopped at that size would learn. The vocabulary is the 256 byte symbols (in
// GPT-2's order), then the merges in order (a merge whose result is already a
// token, e.g. "a"+"bc" after "ab"+"c", is kept as a merge but adds no token),
// until VOCAB - 1 tokens, then <|endoftext|> (BOS and EOS).
//
// Writes OUT/tokenizer.json, OUT/tokenizer_config.json,
// CACHE/tokenizer/stats.json and CACHE/tokens/{train,val}.bin (uint16, nanoGPT
// style: each document as [BOS] + ids, concatenated) with
// CACHE/tokens/{train,val}.json (document paths and offsets).
//
//   node tools/default-model/train_tokenizer.mjs [CACHE] [OUT]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const tk = require('tokenizers');

const CACHE = process.argv[2] ?? '.cache/default-model';
const OUT = process.argv[3] ?? 'models/default';
const VOCAB = 8192;
const CANDIDATES = [1024, 2048, 4096, 6144, 8192, 12288, 16384];
const N_CTX = 256;
const EOT = '<|endoftext|>';
const NEWLINE_STAND_IN = '\uE000';

const corpus = (split) =>
  fs
    .readFileSync(path.join(CACHE, 'corpus', `${split}.jsonl`), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
const trainDocs = corpus('train');
const heldoutDocs = corpus('heldout');
const tokDir = path.join(CACHE, 'tokenizer');
fs.mkdirSync(tokDir, { recursive: true });

// ---- train (30 000 tokens, the binding's default) ----
const trainText = path.join(tokDir, 'train-documents.txt');
fs.writeFileSync(trainText, trainDocs.map((d) => d.text.replaceAll('\n', NEWLINE_STAND_IN) + '\n').join(''));
const trainer = new tk.Tokenizer(tk.BPE.empty());
trainer.setNormalizer(tk.replace(NEWLINE_STAND_IN, '\n'));
trainer.setPreTokenizer(tk.byteLevelPreTokenizer(false, true));
const t0 = Date.now();
trainer.train([trainText]);
const trainSeconds = (Date.now() - t0) / 1000;
const fullFile = path.join(tokDir, 'tokenizer-full.json');
trainer.save(fullFile, false);
const full = JSON.parse(fs.readFileSync(fullFile, 'utf8'));
const fullMerges = full.model.merges.map((m) => (Array.isArray(m) ? m : m.split(' ')));
console.log(
  `tokenizer: trained ${Object.keys(full.model.vocab).length} tokens, ${fullMerges.length} merges in ${trainSeconds.toFixed(1)} s`,
);

// ---- cut to a vocabulary size: 256 bytes + merges in order + EOT ----
// bytes_to_unicode's order (printable bytes first, the rest mapped to U+0100..)
// is the order of the symbols' code points.
const alphabet = tk
  .byteLevelAlphabet()
  .slice()
  .sort((a, b) => a.codePointAt(0) - b.codePointAt(0));
if (alphabet.length !== 256) throw new Error(`expected 256 byte symbols, got ${alphabet.length}`);

function cutTo(vocabSize) {
  const vocab = new Map(alphabet.map((c, i) => [c, i]));
  const merges = [];
  for (const [a, b] of fullMerges) {
    if (vocab.size >= vocabSize - 1) break;
    if (!vocab.has(a) || !vocab.has(b)) throw new Error(`merge ${a} ${b} uses an unknown symbol`);
    merges.push([a, b]);
    if (!vocab.has(a + b)) vocab.set(a + b, vocab.size);
  }
  if (vocab.size !== vocabSize - 1)
    throw new Error(`only ${vocab.size + 1} tokens available for ${vocabSize}`);
  const eotId = vocab.size;
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: eotId,
        content: EOT,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: '@VOCAB@',
      merges,
    },
  };
  // The vocabulary in id order (a JS object would put integer-like keys first).
  const vocabJson = '{' + [...vocab].map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',') + '}';
  const text = JSON.stringify(json).replace('"@VOCAB@"', () => vocabJson);
  return { text, eotId, merges: merges.length };
}

const enc = async (t, s) => (await t.encode(s, null, { addSpecialTokens: false })).getIds();
const heldoutBytes = heldoutDocs.reduce((n, d) => n + Buffer.byteLength(d.text), 0);

// held-out bytes per token for a few sizes: the numbers behind the choice of VOCAB
const candidates = [];
for (const size of CANDIDATES) {
  const t = tk.Tokenizer.fromString(cutTo(size).text);
  let tokens = 0;
  for (const d of heldoutDocs) tokens += (await enc(t, d.text)).length;
  candidates.push({
    vocab: size,
    heldout_tokens: tokens,
    bytes_per_token: +(heldoutBytes / tokens).toFixed(4),
  });
}
console.log(
  'tokenizer: held-out bytes/token ' + candidates.map((c) => `${c.vocab}: ${c.bytes_per_token}`).join(', '),
);

// ---- the shipped tokenizer ----
const chosen = cutTo(VOCAB);
const eotId = chosen.eotId;
fs.mkdirSync(OUT, { recursive: true });
fs.writeFileSync(path.join(OUT, 'tokenizer.json'), chosen.text + '\n');
fs.writeFileSync(
  path.join(OUT, 'tokenizer_config.json'),
  JSON.stringify(
    {
      tokenizer_class: 'GPT2TokenizerFast',
      bos_token: EOT,
      eos_token: EOT,
      unk_token: EOT,
      add_bos_token: false,
      add_prefix_space: false,
      model_max_length: N_CTX,
      clean_up_tokenization_spaces: false,
    },
    null,
    2,
  ) + '\n',
);
const tokenizer = tk.Tokenizer.fromFile(path.join(OUT, 'tokenizer.json'));
if (tokenizer.getVocabSize(true) !== VOCAB)
  throw new Error(`vocab ${tokenizer.getVocabSize(true)} != ${VOCAB}`);
if (tokenizer.tokenToId(EOT) !== eotId) throw new Error('EOT id');

// ---- checks: round trips, special token, byte coverage ----
const hard = [
  'def f(x):\r\n\treturn "héllo 世界 🙂"  # ok\r\n',
  '\t\tindent\twith\ttabs\n\n\n    spaces   \n',
  '日本語のテキスト、中文文本，한국어 텍스트',
  'emoji: 👩‍💻 🏳️‍🌈 🇫🇷 ❤️ 🙂🙃',
  'line\rcarriage\r\nreturn\n\r',
  'control \u0000\u0001\u007f bytes, combining e\u0301, ZWJ \u200d, BOM \ufeff, U+10FFFF \u{10FFFF}',
  '   leading and trailing   ',
  '',
];
for (const s of hard) {
  const back = await tokenizer.decode(await enc(tokenizer, s), false);
  if (back !== s) throw new Error(`round trip failed: ${JSON.stringify(s)} -> ${JSON.stringify(back)}`);
}
const special = await enc(tokenizer, `a${EOT}b`);
if (special.length !== 3 || special[1] !== eotId)
  throw new Error(`${EOT} is not one special token: ${special}`);
for (let b = 0; b < 256; b++) {
  const s = Buffer.from([b]).toString('latin1');
  if ((await tokenizer.decode(await enc(tokenizer, s), false)) !== s)
    throw new Error(`byte ${b} does not round-trip`);
}

// ---- tokenize the splits ----
const tokensDir = path.join(CACHE, 'tokens');
fs.mkdirSync(tokensDir, { recursive: true });
const stats = {};
for (const [split, file, docs] of [
  ['train', 'train', trainDocs],
  ['heldout', 'val', heldoutDocs],
]) {
  const chunks = [];
  const offsets = [];
  let n = 0;
  let bytes = 0;
  for (let i = 0; i < docs.length; i += 32) {
    const batch = docs.slice(i, i + 32);
    const encs = await tokenizer.encodeBatch(
      batch.map((d) => d.text),
      { addSpecialTokens: false },
    );
    for (let j = 0; j < batch.length; j++) {
      const ids = encs[j].getIds();
      if (split === 'heldout' && (await tokenizer.decode(ids, false)) !== batch[j].text) {
        throw new Error(`round trip failed on ${batch[j].path}`);
      }
      const arr = new Uint16Array(ids.length + 1);
      arr[0] = eotId;
      arr.set(ids, 1);
      chunks.push(arr);
      offsets.push({
        path: batch[j].path,
        start: n,
        length: arr.length,
        bytes: Buffer.byteLength(batch[j].text),
      });
      n += arr.length;
      bytes += Buffer.byteLength(batch[j].text);
    }
  }
  const all = new Uint16Array(n);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  fs.writeFileSync(path.join(tokensDir, `${file}.bin`), Buffer.from(all.buffer));
  fs.writeFileSync(
    path.join(tokensDir, `${file}.json`),
    JSON.stringify({ bos_id: eotId, tokens: n, bytes, documents: offsets }),
  );
  stats[split] = {
    documents: docs.length,
    tokens: n,
    bytes,
    bytes_per_token: +(bytes / (n - docs.length)).toFixed(4),
  };
}
const summary = {
  library: `tokenizers@${require('tokenizers/package.json').version}`,
  vocab: VOCAB,
  merges: chosen.merges,
  eot_id: eotId,
  trained_vocab: Object.keys(full.model.vocab).length,
  train_seconds: trainSeconds,
  candidates,
  ...stats,
};
fs.writeFileSync(path.join(tokDir, 'stats.json'), JSON.stringify(summary, null, 2) + '\n');
console.log(
  `tokenizer: vocab ${VOCAB} (${chosen.merges} merges), EOT ${eotId}; ` +
    `train ${stats.train.tokens} tokens, val ${stats.heldout.tokens} tokens, ${stats.heldout.bytes_per_token} bytes/token`,
);
