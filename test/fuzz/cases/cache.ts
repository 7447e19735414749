/**
 * Loupe's compile cache damaged between two runs (a cut weights.bin, an
 * empty or lying manifest, a garbled graph, a fingerprint memo of the wrong
 * types): the next run rebuilds what is damaged and its logits still match
 * the independent PyTorch reference (tools/reference) for the same tokens.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SafetensorsFile } from '../../../src/engine/safetensors';
import type { FuzzCase } from '../case';
import { writeInput } from '../caseFiles';
import { TINY_GPT2, copyModel, deepJson } from '../checkpointCopies';
import { CASE_CACHE_FOLDER, REPO_ROOT } from '../generate';

const CLI = path.join(REPO_ROOT, 'dist', 'cli.js');

/** The first tokens of the reference's case0 text: exactly its input_ids [51, 258, 220, 258, 285, 284, 64, 67, 260]. */
const CASE0_TEXT = 'The heads read the';
const TOLERANCE = 1e-4;

/** Compiles the model into the case's cache, then lets `damage` loose on the compiled folder. */
function damaged(name: string, damage: (compiled: string, cache: string) => void): FuzzCase {
  return {
    name: `cache/${name}`,
    area: 'cache',
    setup: (dir) => {
      const model = copyModel(dir);
      const cache = path.join(dir, CASE_CACHE_FOLDER);
      const text = writeInput(dir, 'text.txt', CASE0_TEXT);
      const args = [
        'run',
        '--model',
        model,
        '--text',
        text,
        '--no-bos',
        '--out',
        path.join(dir, 'out.safetensors'),
      ];
      // The CLI under test fills the cache first, so the damage is to a cache it would trust.
      execFileSync(process.execPath, [CLI, ...args], { env: { ...process.env, LOUPE_CACHE_DIR: cache } });
      fs.rmSync(path.join(dir, 'out.safetensors'));
      const root = path.join(cache, 'compiled');
      damage(path.join(root, fs.readdirSync(root)[0]), cache);
      return args;
    },
    expect: { ok: true, check: (_stdout, dir) => matchesReference(path.join(dir, 'out.safetensors')) },
  };
}

function matchesReference(out: string): void {
  const ref = SafetensorsFile.open(path.join(TINY_GPT2, 'reference.safetensors'));
  const want = ref.readF32('case0.logits');
  const got = SafetensorsFile.open(out).readF32('logits');
  assert.equal(got.length, want.length, 'logits of the 9 reference tokens');
  let diff = 0;
  for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i] - want[i]));
  assert.ok(diff <= TOLERANCE, `logits differ from the reference by ${diff}`);
}

const file = (dir: string, name: string): string => path.join(dir, name);

function editManifest(
  compiled: string,
  edit: (m: { weights: Record<string, unknown> } & Record<string, unknown>) => unknown,
): void {
  const f = file(compiled, 'manifest.json');
  fs.writeFileSync(
    f,
    JSON.stringify(edit(JSON.parse(fs.readFileSync(f, 'utf8')) as { weights: Record<string, unknown> })),
  );
}

export const cases: FuzzCase[] = [
  damaged('weights-bin-truncated', (c) => fs.truncateSync(file(c, 'weights.bin'), 1000)),
  damaged('weights-bin-empty', (c) => fs.writeFileSync(file(c, 'weights.bin'), '')),
  damaged('weights-bin-missing', (c) => fs.rmSync(file(c, 'weights.bin'))),
  damaged('weights-bin-end-overwritten', (c) => {
    const f = file(c, 'weights.bin');
    const fd = fs.openSync(f, 'r+');
    fs.writeSync(fd, Buffer.alloc(64, 0x7f), 0, 64, fs.statSync(f).size - 64);
    fs.closeSync(fd);
  }),
  damaged('manifest-empty', (c) => fs.writeFileSync(file(c, 'manifest.json'), '')),
  damaged('manifest-missing', (c) => fs.rmSync(file(c, 'manifest.json'))),
  damaged('manifest-nested-deep', (c) => fs.writeFileSync(file(c, 'manifest.json'), deepJson(100_000))),
  damaged('manifest-weights-an-array', (c) => editManifest(c, (m) => ({ ...m, weights: [] }))),
  damaged('manifest-offset-a-string', (c) =>
    editManifest(c, (m) => ({
      ...m,
      weights: Object.fromEntries(
        Object.entries(m.weights).map(([k, v]) => [k, { ...(v as object), offset: '0' }]),
      ),
    })),
  ),
  damaged('manifest-tensor-past-the-end', (c) =>
    editManifest(c, (m) => {
      const [first] = Object.keys(m.weights);
      return { ...m, weights: { ...m.weights, [first]: { ...(m.weights[first] as object), offset: 1e9 } } };
    }),
  ),
  damaged('graph-garbled', (c) => {
    for (const g of fs.readdirSync(c).filter((n) => n.endsWith('.onnx')))
      fs.writeFileSync(file(c, g), 'garbage');
  }),
  damaged('fingerprint-memo-wrong-types', (_c, cache) =>
    fs.writeFileSync(file(cache, 'fingerprints.json'), JSON.stringify({ anything: 42, other: ['a'] })),
  ),
  damaged('fingerprint-memo-not-json', (_c, cache) =>
    fs.writeFileSync(file(cache, 'fingerprints.json'), '{"a": '),
  ),
];
