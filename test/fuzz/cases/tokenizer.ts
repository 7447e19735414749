/**
 * A checkpoint's tokenizer.json and tokenizer_config.json damaged: deep
 * nesting, wrong types, ids the model's embedding does not have, a model
 * the tokenizers library does not know, files too large or not files at all.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FuzzCase } from '../case';
import { fifo, sparseFile, symlinkLoop, writeInput } from '../caseFiles';
import { TINY_GPT2, copyModel, deepJson } from '../checkpointCopies';

type TokenizerJson = Record<string, unknown> & {
  model: Record<string, unknown> & { vocab: Record<string, number> };
  added_tokens: { id: number; content: string }[];
};

const fixtureTokenizer = (): TokenizerJson =>
  JSON.parse(fs.readFileSync(path.join(TINY_GPT2, 'tokenizer.json'), 'utf8')) as TokenizerJson;

function tokenizeArgs(dir: string, model: string): string[] {
  const text = writeInput(dir, 'text.txt', 'hello world');
  return ['tokenize', '--model', model, '--text', text, '--json'];
}

/** A case whose tokenizer.json is what `write` leaves at the path it is given. */
function tokenizerFile(
  name: string,
  write: (file: string) => void,
  error: RegExp,
  maxRssMiB?: number,
): FuzzCase {
  return {
    name: `tokenizer/${name}`,
    area: 'tokenizer',
    setup: (dir) => {
      const model = copyModel(dir);
      const file = path.join(model, 'tokenizer.json');
      fs.rmSync(file);
      write(file);
      return tokenizeArgs(dir, model);
    },
    expect: { error },
    // Not for the huge file: the runner would read all of it to fingerprint it.
    ...(maxRssMiB ? { maxRssMiB } : { untouched: ['model'] }),
  };
}

/** A case whose tokenizer.json is the fixture's changed by `edit`. */
function edited(name: string, edit: (t: TokenizerJson) => unknown, error: RegExp): FuzzCase {
  return tokenizerFile(
    name,
    (file) => fs.writeFileSync(file, JSON.stringify(edit(fixtureTokenizer()))),
    error,
  );
}

export const cases: FuzzCase[] = [
  tokenizerFile(
    'nested-200k-deep',
    (file) => fs.writeFileSync(file, `{"model": ${deepJson(200_000)}}`),
    /tokenizer\.json: the tokenizer is nested more than 64 levels deep/,
  ),
  tokenizerFile(
    'not-json',
    (file) => fs.writeFileSync(file, '{"model": {"type": "BPE",'),
    /tokenizer\.json: the tokenizer is not valid JSON/,
  ),
  tokenizerFile(
    'top-level-array',
    (file) => fs.writeFileSync(file, '[1, 2]'),
    /tokenizer\.json: the top level must be an object, got an array of 2/,
  ),
  edited('model-missing', ({ model: _model, ...rest }) => rest, /tokenizer\.json: 'model' is missing/),
  edited(
    'model-a-string',
    (t) => ({ ...t, model: 'BPE' }),
    /tokenizer\.json: 'model' must be an object, got "BPE"/,
  ),
  edited(
    'model-type-unknown',
    (t) => ({ ...t, model: { ...t.model, type: 'Hexagonal' } }),
    /tokenizer\.json: the tokenizers library cannot load it/,
  ),
  edited(
    'model-type-a-number',
    (t) => ({ ...t, model: { ...t.model, type: 7 } }),
    /tokenizer\.json: 'model\.type' must be a string, got 7/,
  ),
  edited(
    'added-tokens-an-object',
    (t) => ({ ...t, added_tokens: { id: 1 } }),
    /tokenizer\.json: 'added_tokens' must be an array, got an object/,
  ),
  edited(
    'added-token-id-null',
    (t) => ({ ...t, added_tokens: [{ ...t.added_tokens[0], id: null }] }),
    /tokenizer\.json: 'added_tokens\[0\]\.id' must be an integer ≥ 0, got null/,
  ),
  edited(
    'added-token-id-beyond-vocab',
    (t) => ({ ...t, added_tokens: [{ ...t.added_tokens[0], id: 4000 }] }),
    /tokenizer\.json: token .* has id 4000, but the model's vocab_size is 300/,
  ),
  edited(
    'vocab-id-beyond-vocab',
    (t) => ({ ...t, model: { ...t.model, vocab: { ...t.model.vocab, zzzzzz: 300 } } }),
    /tokenizer\.json: token "zzzzzz" has id 300, but the model's vocab_size is 300 \(ids 0\.\.299\)/,
  ),
  edited(
    'vocab-id-a-string',
    (t) => ({ ...t, model: { ...t.model, vocab: { ...t.model.vocab, a: 'one' } } }),
    /tokenizer\.json: the tokenizers library cannot load it/,
  ),
  tokenizerFile(
    'larger-than-256-mib',
    (file) => sparseFile(path.dirname(file), 'tokenizer.json', 300 * 1024 * 1024, '{"model": '),
    /tokenizer\.json: tokenizer is 300\.0 MiB, more than the 256\.0 MiB Loupe reads/,
    300,
  ),
  tokenizerFile(
    'a-fifo',
    (file) => fifo(path.dirname(file), 'tokenizer.json'),
    /tokenizer\.json: tokenizer is not a regular file/,
  ),
  tokenizerFile(
    'a-folder',
    (file) => fs.mkdirSync(file),
    /tokenizer\.json: tokenizer is a folder, not a file/,
  ),
  tokenizerFile(
    'symlink-loop',
    (file) => symlinkLoop(path.dirname(file), 'tokenizer.json'),
    /tokenizer\.json: tokenizer is a symbolic link that loops/,
  ),
  {
    name: 'tokenizer/config-not-json',
    area: 'tokenizer',
    setup: (dir) => {
      const model = copyModel(dir);
      fs.writeFileSync(path.join(model, 'tokenizer_config.json'), "{'bos_token': 1}");
      return tokenizeArgs(dir, model);
    },
    expect: { error: /tokenizer_config\.json: the tokenizer config is not valid JSON/ },
  },
  {
    name: 'tokenizer/config-nested-deep',
    area: 'tokenizer',
    setup: (dir) => {
      const model = copyModel(dir);
      fs.writeFileSync(path.join(model, 'tokenizer_config.json'), `{"bos_token": ${deepJson(50_000)}}`);
      return tokenizeArgs(dir, model);
    },
    expect: { error: /tokenizer_config\.json: the tokenizer config is nested more than 64 levels deep/ },
  },
];
