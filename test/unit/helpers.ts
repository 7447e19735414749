/** Shared test helpers: temporary folders and tiny checkpoints written on the fly. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tk from 'tokenizers';
import { ProbeMetadata } from '../../src/engine/probes/store';
import { TensorToWrite, writeSafetensors } from '../../src/engine/safetensors';

export const FIXTURES = path.join(__dirname, '..', 'fixtures');

/** The built `loupe` command line (the test command builds it before mocha runs). */
export const CLI = path.join(__dirname, '..', '..', 'dist', 'cli.js');

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `loupe ...args` in a child process, its compiled-model cache in `cacheDir`. */
export function runCli(args: readonly string[], cacheDir: string): CliRun {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, LOUPE_CACHE_DIR: cacheDir },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function tempDir(prefix = 'loupe-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A deterministic generator, so tests that make weights are repeatable. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

export interface TinyGpt2 {
  readonly dir: string;
  readonly config: Record<string, unknown>;
  readonly tensors: Map<string, TensorToWrite>;
}

/** A random 2-layer GPT-2 in the original upload's key layout (no `transformer.` prefix). */
export function writeTinyGpt2(
  dir: string,
  seed = 1,
  overrides: Record<string, unknown> = {},
  V = 40,
): TinyGpt2 {
  const d = 16;
  const L = 2;
  const C = typeof overrides.n_positions === 'number' ? overrides.n_positions : 32;
  const rand = seededRandom(seed);
  const t = (shape: number[]): TensorToWrite => ({
    dtype: 'F32',
    shape,
    data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() * 0.5),
  });
  const tensors = new Map<string, TensorToWrite>();
  tensors.set('wte.weight', t([V, d]));
  tensors.set('wpe.weight', t([C, d]));
  for (let l = 0; l < L; l++) {
    const p = `h.${l}.`;
    tensors.set(`${p}ln_1.weight`, t([d]));
    tensors.set(`${p}ln_1.bias`, t([d]));
    tensors.set(`${p}attn.c_attn.weight`, t([d, 3 * d]));
    tensors.set(`${p}attn.c_attn.bias`, t([3 * d]));
    tensors.set(`${p}attn.c_proj.weight`, t([d, d]));
    tensors.set(`${p}attn.c_proj.bias`, t([d]));
    tensors.set(`${p}ln_2.weight`, t([d]));
    tensors.set(`${p}ln_2.bias`, t([d]));
    tensors.set(`${p}mlp.c_fc.weight`, t([d, 4 * d]));
    tensors.set(`${p}mlp.c_fc.bias`, t([4 * d]));
    tensors.set(`${p}mlp.c_proj.weight`, t([4 * d, d]));
    tensors.set(`${p}mlp.c_proj.bias`, t([d]));
  }
  tensors.set('ln_f.weight', t([d]));
  tensors.set('ln_f.bias', t([d]));
  fs.mkdirSync(dir, { recursive: true });
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  const config = {
    model_type: 'gpt2',
    n_embd: d,
    n_layer: L,
    n_head: 4,
    n_positions: C,
    vocab_size: V,
    ...overrides,
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  return { dir, config, tensors };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue; // equal infinities (masked attention scores) match
    const d = Math.abs(x - y);
    if (Number.isNaN(d)) return Infinity; // NaN, or infinities of different sign
    if (d > m) m = d;
  }
  return m;
}

/** A byte-level BPE tokenizer like GPT-2's, with a few merges, one of them inside a CJK character. */
export function writeByteLevelTokenizer(dir: string): void {
  const alphabet = tk.byteLevelAlphabet();
  const vocab: Record<string, number> = {};
  alphabet.forEach((c, i) => (vocab[c] = i));
  const merges: [string, string][] = [
    ['Ġ', 't'],
    ['Ġt', 'h'],
    ['ä', '¸'], // first two bytes of 世 (e4 b8 96): a token that holds part of a character
    ['l', 'l'],
    ['ll', 'o'],
  ];
  for (const [a, b] of merges) vocab[a + b] = Object.keys(vocab).length;
  const tokenizer = new tk.Tokenizer(tk.BPE.init(vocab, merges));
  tokenizer.setPreTokenizer(tk.byteLevelPreTokenizer(false, true));
  tokenizer.setPostProcessor(tk.byteLevelProcessing(true));
  tokenizer.addSpecialTokens(['<|endoftext|>']);
  const file = path.join(dir, 'tokenizer.json');
  tokenizer.save(file, false);
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  json.decoder = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
  fs.writeFileSync(file, JSON.stringify(json));
  fs.writeFileSync(
    path.join(dir, 'tokenizer_config.json'),
    JSON.stringify({ bos_token: '<|endoftext|>', eos_token: '<|endoftext|>' }),
  );
}

export interface RandomSaeOptions {
  readonly dIn: number;
  readonly dSae: number;
  readonly hook: string;
  /** Written as the cfg's context_size (the analysis windows follow it); null leaves it out. */
  readonly contextSize: number | null;
  /** TopK with this k (as sparse as a trained SAE); standard (ReLU) when absent. */
  readonly k?: number;
  readonly seed?: number;
}

/** An SAE with random weights in SAELens's newer folder layout. */
export function writeRandomSae(dir: string, o: RandomSaeOptions): void {
  const rand = seededRandom(o.seed ?? 5);
  const t = (shape: number[], scale: number): TensorToWrite => ({
    dtype: 'F32',
    shape,
    data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() * scale),
  });
  fs.mkdirSync(dir, { recursive: true });
  writeSafetensors(
    path.join(dir, 'sae_weights.safetensors'),
    new Map([
      ['W_enc', t([o.dIn, o.dSae], 1)],
      ['b_enc', t([o.dSae], 0.2)],
      ['W_dec', t([o.dSae, o.dIn], 1)],
      ['b_dec', t([o.dIn], 0.1)],
    ]),
  );
  const metadata: Record<string, unknown> = {
    hook_name: o.hook,
    model_from_pretrained_kwargs: { center_writing_weights: false },
  };
  if (o.contextSize !== null) metadata.context_size = o.contextSize;
  fs.writeFileSync(
    path.join(dir, 'cfg.json'),
    JSON.stringify({
      architecture: o.k ? 'topk' : 'standard',
      ...(o.k ? { k: o.k } : {}),
      d_in: o.dIn,
      d_sae: o.dSae,
      dtype: 'float32',
      apply_b_dec_to_input: true,
      normalize_activations: 'none',
      metadata,
    }),
  );
}

/** A probe's saved metadata with every field loadProbe checks; tests give what they vary. */
export function probeMetadata(given: {
  dataset: string;
  labels: string[];
  model: ProbeMetadata['model'];
  hooks: { hook: string; layer: number; width: number; accuracy: number }[];
}): ProbeMetadata {
  return {
    format: 'loupe-probe',
    version: 1,
    model: given.model,
    dataset: given.dataset,
    labels: given.labels,
    counts: Object.fromEntries(given.labels.map((l) => [l, 10])),
    split: { trainDocuments: 3, testDocuments: 1, trainExamples: 30, testExamples: 10 },
    options: { l2: 1e-3, testFraction: 0.25, seed: 0, control: false },
    hooks: given.hooks.map((h) => ({
      ...h,
      trainAccuracy: h.accuracy,
      majorityBaseline: 0.5,
      controlAccuracy: null,
      selectivity: null,
      trainLoss: 0.5,
      iterations: 10,
      converged: true,
    })),
    seconds: 1,
  };
}
