/**
 * Writes a copy of a transcoder set with f16 weights (through the one
 * transcoder-set reader and writer), keeping the files beside them:
 *
 *   npx tsx tools/default-transcoders/to_f16.ts SET_DIR OUT_DIR
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openTranscoderSet, saveTranscoderSet } from '../../src/engine/dictionaries/transcoderSet';

const [from, to] = process.argv.slice(2);
if (!from || !to) throw new Error('usage: to_f16.ts SET_DIR OUT_DIR');
const set = openTranscoderSet(from);
const all = Array.from({ length: set.dTranscoder }, (_, i) => i);
const layers = set.layers.map((l) => ({
  W_enc: l.readEncoder(),
  b_enc: l.readEncoderBias(),
  W_dec: l.readDecoderRows(all),
  b_dec: l.readDecoderBias(),
  threshold: l.readThreshold(),
  W_skip: l.readSkip(),
}));
fs.mkdirSync(to, { recursive: true });
for (const entry of fs.readdirSync(from)) {
  if (/^layer_\d+\.safetensors$/.test(entry) || entry === 'config.yaml') continue;
  const file = path.join(from, entry);
  if (fs.statSync(file).isFile()) fs.copyFileSync(file, path.join(to, entry));
}
saveTranscoderSet(to, set.config, set, layers, 'F16');
