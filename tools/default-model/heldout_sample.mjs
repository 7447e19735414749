// The items of models/default/heldout-sample.json, which the engine's test
// (test/unit/default-model.test.ts) reads: the first SAMPLE_FILES held-out
// files, sorted by name; for each, the window [BOS] + encode(text) cut to
// N_CTX tokens, and the text that window covers. The cut text is re-encoded
// and must give exactly the window's ids (if cutting mid-word changes the last
// tokens, the window loses tokens from its end until it does), so the engine
// tokenizing `text` with BOS must reproduce `ids`.
//
// Writes CACHE/sample/items.json; evaluate.py adds the loss and writes the
// shipped file.
//
//   node tools/default-model/heldout_sample.mjs [CACHE] [OUT]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const tk = require('tokenizers');

const CACHE = process.argv[2] ?? '.cache/default-model';
const OUT = process.argv[3] ?? 'models/default';
const SAMPLE_FILES = 24;

const tokenizer = tk.Tokenizer.fromFile(path.join(OUT, 'tokenizer.json'));
const cfg = JSON.parse(fs.readFileSync(path.join(OUT, 'tokenizer_config.json'), 'utf8'));
const bosId = tokenizer.tokenToId(cfg.bos_token);
const nCtx = cfg.model_max_length;
const enc = async (s) => (await tokenizer.encode(s, null, { addSpecialTokens: false })).getIds();

// a file's first piece is the start of the file
const firstPiece = new Map();
for (const line of fs.readFileSync(path.join(CACHE, 'corpus', 'heldout.jsonl'), 'utf8').split('\n')) {
  if (!line) continue;
  const d = JSON.parse(line);
  const m = /^(.*)#(\d+)$/.exec(d.path);
  const file = m ? m[1] : d.path;
  if (!m || m[2] === '0') firstPiece.set(file, d.text);
}
const files = [...firstPiece.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).slice(0, SAMPLE_FILES);

const items = [];
for (const file of files) {
  const full = firstPiece.get(file);
  const ids = await enc(full);
  let k = Math.min(ids.length, nCtx - 1);
  let text = full;
  for (;;) {
    if (k === ids.length) break; // the whole text fits
    const prefix = await tokenizer.decode(ids.slice(0, k), false);
    if (full.startsWith(prefix)) {
      const again = await enc(prefix);
      if (again.length === k && again.every((v, i) => v === ids[i])) {
        text = prefix;
        break;
      }
    }
    k--;
  }
  const window = [bosId, ...ids.slice(0, k)];
  const check = await enc(text);
  if (check.length !== k || check.some((v, i) => v !== window[i + 1]))
    throw new Error(`${file}: re-encoding differs`);
  items.push({ path: file, text, ids: window });
}
fs.mkdirSync(path.join(CACHE, 'sample'), { recursive: true });
fs.writeFileSync(
  path.join(CACHE, 'sample', 'items.json'),
  JSON.stringify({ n_ctx: nCtx, bos_id: bosId, items }),
);
console.log(
  `sample: ${items.length} held-out files, ${items.reduce((n, it) => n + it.ids.length - 1, 0)} predictions, ` +
    `windows of ${Math.min(...items.map((it) => it.ids.length))}..${Math.max(...items.map((it) => it.ids.length))} tokens`,
);
