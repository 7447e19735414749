/**
 * SAEs against the independent PyTorch reference (tools/reference/sae_reference.py):
 * every architecture and cfg.json layout, f32/f16/bf16 weights, to 1e-5; bad
 * SAEs refused with one-line messages; saving SAELens's newer layout and
 * reading it back; splicing into a model; the `loupe features` CLI.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HookedModel } from '../../src/engine/model';
import { SafetensorsFile, writeSafetensors } from '../../src/engine/safetensors';
import { SaeConfig, parseSaeConfig } from '../../src/engine/sae/config';
import { Sae, SaeParams, saveSae } from '../../src/engine/sae/sae';
import { attachSae, saeFeatures, spliceSae, topFeatures } from '../../src/engine/sae/splice';
import { Tensor } from '../../src/engine/tensor';
import {
  CLI,
  CliRun,
  FIXTURES,
  maxAbsDiff,
  runCli,
  seededRandom,
  tempDir,
  writeByteLevelTokenizer,
  writeTinyGpt2,
} from './helpers';

const TOLERANCE = 1e-5;
const SAE_FIXTURES = path.join(FIXTURES, 'sae');

interface ReferenceCase {
  name: string;
  architecture: string;
  stored: string;
  center: boolean;
  edits: { index: number; value: number | null }[];
}
interface ReferenceIndex {
  d_in: number;
  d_sae: number;
  hook_name: string;
  cases: ReferenceCase[];
}

function readIndex(): ReferenceIndex {
  return JSON.parse(fs.readFileSync(path.join(SAE_FIXTURES, 'index.json'), 'utf8')) as ReferenceIndex;
}

function reference(name: string): (key: string) => Tensor {
  const st = SafetensorsFile.open(path.join(SAE_FIXTURES, name, 'reference.safetensors'));
  return (key) => ({ dims: st.info(key).shape, data: st.readF32(key) });
}

function close(label: string, actual: Tensor, want: Tensor, tol = TOLERANCE): void {
  assert.deepEqual(actual.dims, want.dims, `${label}: shape`);
  const diff = maxAbsDiff(actual.data, want.data);
  assert.ok(diff <= tol, `${label}: max abs diff ${diff}`);
}

/** Feature edits as the reference applied them: ablate (value null) or clamp, every row. */
function editTensors(edits: ReferenceCase['edits'], dSae: number): { mul: Tensor; add: Tensor } {
  const mul = new Float32Array(dSae).fill(1);
  const add = new Float32Array(dSae);
  for (const e of edits) {
    mul[e.index] = 0;
    add[e.index] = e.value ?? 0;
  }
  return { mul: { dims: [dSae], data: mul }, add: { dims: [dSae], data: add } };
}

/** Expects a LoupeError whose one-line message matches every pattern. */
function refuses(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: Error) => {
    assert.equal(err.name, 'LoupeError', err.message);
    assert.ok(!err.message.includes('\n'), 'one line');
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

async function refusesAsync(fn: () => Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(fn, (err: Error) => {
    assert.equal(err.name, 'LoupeError', err.message);
    assert.ok(!err.message.includes('\n'), 'one line');
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

/** A random SAE of the newer layout on `hook`, made in memory. */
function randomSae(
  hook: string,
  dIn: number,
  dSae: number,
  seed: number,
  extra: Record<string, unknown> = {},
  cacheDir?: string,
): Sae {
  const cfg = parseSaeConfig(
    {
      architecture: 'standard',
      d_in: dIn,
      d_sae: dSae,
      dtype: 'float32',
      apply_b_dec_to_input: true,
      normalize_activations: 'none',
      metadata: {
        model_name: 'tiny',
        hook_name: hook,
        sae_lens_version: '6.5.0',
        model_from_pretrained_kwargs: { center_writing_weights: false },
      },
      ...extra,
    },
    'cfg.json',
  );
  return Sae.fromParams(cfg, randomParams(cfg, seed), { cacheDir });
}

function randomParams(cfg: SaeConfig, seed: number): SaeParams {
  const rand = seededRandom(seed);
  const t = (dims: number[], scale: number, offset = 0): Tensor => ({
    dims,
    data: Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => offset + rand() * scale),
  });
  return new Map([
    ['W_enc', t([cfg.dIn, cfg.dSae], 1.2)],
    ['b_enc', t([cfg.dSae], 0.4, 0.05)],
    ['W_dec', t([cfg.dSae, cfg.dIn], 0.8)],
    ['b_dec', t([cfg.dIn], 0.2)],
  ]);
}

describe('SAEs', function () {
  const cacheDir = tempDir('loupe-sae-cache-');

  describe('against the PyTorch reference', () => {
    const index = fs.existsSync(path.join(SAE_FIXTURES, 'index.json')) ? readIndex() : null;

    it('has a fixture for every architecture, both cfg layouts and f16 weights', () => {
      assert.ok(index, 'missing test/fixtures/sae; run tools/reference/sae_reference.py');
      const archs = new Set(index.cases.map((c) => c.architecture));
      for (const a of ['standard', 'topk', 'jumprelu', 'gated']) assert.ok(archs.has(a), a);
      assert.ok(index.cases.some((c) => c.stored === 'F16'));
      const layouts: string[] = index.cases.map((c) => {
        const cfg = JSON.parse(
          fs.readFileSync(path.join(SAE_FIXTURES, c.name, 'cfg.json'), 'utf8'),
        ) as object;
        return 'metadata' in cfg ? 'metadata' : 'meta' in cfg ? 'meta' : 'flat';
      });
      for (const l of ['flat', 'metadata', 'meta']) assert.ok(layouts.includes(l), l);
    });

    for (const c of index?.cases ?? []) {
      it(`${c.name}: feature activations and reconstructions match`, async () => {
        const ref = reference(c.name);
        const sae = Sae.load(path.join(SAE_FIXTURES, c.name), { cacheDir });
        try {
          assert.equal(sae.config.architecture, c.architecture);
          assert.equal(sae.config.hookName, index!.hook_name);
          assert.equal(sae.config.dIn, index!.d_in);
          assert.equal(sae.config.dSae, index!.d_sae);
          assert.equal(sae.config.centerWritingWeights, c.center, 'centring decision read from cfg.json');
          assert.deepEqual(sae.warnings, []);
          const x = ref('x');
          const { mul, add } = editTensors(c.edits, sae.config.dSae);
          const out = await sae.forward(x, { center: c.center, featureMul: mul, featureAdd: add });
          close('feature_acts', out.featureActs, ref('feature_acts'));
          close('sae_out', out.saeOut, ref('sae_out'));
          close('sae_out_edited', out.saeOutEdited, ref('sae_out_edited'));
          close('encode', await sae.encode(x, { center: c.center }), ref('feature_acts'));
          const perToken = ['constant_norm_rescale', 'layer_norm'].includes(sae.config.normalizeActivations);
          if (!c.center && !perToken) close('decode', await sae.decode(ref('feature_acts')), ref('sae_out'));
          // Leading axes pass through: [2, 5, d_in] in, [2, 5, d_sae] out.
          const batched = await sae.encode(
            { dims: [2, x.dims[0] / 2, x.dims[1]], data: x.data },
            { center: c.center },
          );
          assert.deepEqual(batched.dims, [2, x.dims[0] / 2, sae.config.dSae]);
          assert.ok(maxAbsDiff(batched.data, ref('feature_acts').data) <= TOLERANCE);
        } finally {
          await sae.dispose();
        }
      });
    }

    it('reads the sparsity file and the activation scaler', () => {
      const sae = Sae.load(path.join(SAE_FIXTURES, 'standard-flat'), { cacheDir });
      assert.equal(sae.sparsity?.length, sae.config.dSae);
      assert.ok(
        sae.sparsity!.every((v) => v <= 0),
        'log10 of a firing rate',
      );
      assert.equal(Sae.load(path.join(SAE_FIXTURES, 'gated-meta'), { cacheDir }).normScalingFactor, 0.7);
      assert.equal(
        Sae.load(path.join(SAE_FIXTURES, 'standard-finetune'), { cacheDir }).normScalingFactor,
        1.3,
      );
    });

    it('decode refuses SAEs that normalize each input', async () => {
      const sae = Sae.load(path.join(SAE_FIXTURES, 'topk-nested'), { cacheDir });
      await refusesAsync(
        () => sae.decode({ dims: [1, 48], data: new Float32Array(48) }),
        /constant_norm_rescale/,
      );
    });
  });

  describe('cfg.json', () => {
    const flat = {
      d_in: 8,
      d_sae: 32,
      hook_point: 'blocks.1.hook_resid_post',
      hook_point_layer: 1,
      activation_fn_str: 'topk',
      activation_fn_kwargs: { k: 3 },
      model_name: 'gpt2-small',
      dtype: 'torch.float16',
      prepend_bos: false,
      context_size: 128,
      dataset_path: 'some/dataset',
      normalize_activations: false,
    };

    it('reads the flat layout (with its older key names)', () => {
      const cfg = parseSaeConfig(flat, 'cfg.json');
      assert.equal(cfg.architecture, 'topk');
      assert.equal(cfg.k, 3);
      assert.equal(cfg.hookName, 'blocks.1.hook_resid_post');
      assert.equal(cfg.hookLayer, 1);
      assert.equal(cfg.dtype, 'float16');
      assert.equal(cfg.prependBos, false);
      assert.equal(cfg.contextSize, 128);
      assert.equal(cfg.datasetPath, 'some/dataset');
      assert.equal(cfg.modelName, 'gpt2-small');
      assert.equal(cfg.normalizeActivations, 'none');
      assert.equal(cfg.applyBDecToInput, true);
    });

    it('reads the newer layout under metadata or meta', () => {
      for (const key of ['metadata', 'meta']) {
        const cfg = parseSaeConfig(
          {
            architecture: 'jumprelu',
            d_in: 8,
            d_sae: 32,
            apply_b_dec_to_input: false,
            normalize_activations: 'none',
            [key]: {
              hook_name: 'blocks.0.hook_mlp_out',
              model_name: 'm',
              prepend_bos: true,
              context_size: 64,
            },
          },
          'cfg.json',
        );
        assert.equal(cfg.architecture, 'jumprelu');
        assert.equal(cfg.hookName, 'blocks.0.hook_mlp_out');
        assert.equal(cfg.hookLayer, 0);
        assert.equal(cfg.applyBDecToInput, false);
        assert.equal(cfg.prependBos, true);
        assert.equal(cfg.contextSize, 64);
      }
    });

    it('decides centring as SAELens trained: explicit, no-processing default, or processed-model default', () => {
      const base = { d_in: 8, d_sae: 16, hook_name: 'blocks.0.hook_resid_pre' };
      const explicit = parseSaeConfig(
        { ...base, model_from_pretrained_kwargs: { center_writing_weights: true } },
        'cfg.json',
      );
      assert.deepEqual([explicit.centerWritingWeights, explicit.centerSource], [true, 'config']);
      const noProcessing = parseSaeConfig({ ...base, model_from_pretrained_kwargs: {} }, 'cfg.json');
      assert.deepEqual(
        [noProcessing.centerWritingWeights, noProcessing.centerSource],
        [false, 'no-processing-default'],
      );
      const old = parseSaeConfig(base, 'cfg.json');
      assert.deepEqual([old.centerWritingWeights, old.centerSource], [true, 'processed-model-default']);
      const newer = parseSaeConfig({ ...base, sae_lens_training_version: '3.20.0' }, 'cfg.json');
      assert.equal(newer.centerWritingWeights, false);
    });

    it('refuses what it cannot read, naming the file', () => {
      const base = { d_in: 8, d_sae: 16, hook_name: 'blocks.0.hook_resid_pre' };
      const cases: [Record<string, unknown>, RegExp][] = [
        [{ ...base, architecture: 'transcoder' }, /architecture 'transcoder' is not supported/],
        [{ ...base, activation_fn_str: 'tanh-relu' }, /activation function 'tanh-relu' is not supported/],
        [{ ...base, architecture: 'topk', k: 99 }, /k = 99 exceeds d_sae = 16/],
        [{ ...base, normalize_activations: 'sometimes' }, /normalize_activations "sometimes"/],
        [{ ...base, d_in: 0 }, /'d_in' must be a positive integer/],
        [{ d_in: 8, d_sae: 16 }, /no 'hook_name'/],
        [{ ...base, hook_head_index: 3 }, /single attention head/],
      ];
      for (const [json, pattern] of cases)
        refuses(() => parseSaeConfig(json, '/x/cfg.json'), /^\/x\/cfg\.json: /, pattern);
    });
  });

  describe('bad SAE folders', () => {
    const good = path.join(SAE_FIXTURES, 'standard-flat');
    const copy = (mutate: (dir: string) => void): string => {
      const dir = tempDir('loupe-bad-sae-');
      for (const f of ['cfg.json', 'sae_weights.safetensors'])
        fs.copyFileSync(path.join(good, f), path.join(dir, f));
      mutate(dir);
      return dir;
    };
    const rewriteWeights = (dir: string, edit: (m: Map<string, Tensor>) => void): void => {
      const st = SafetensorsFile.open(path.join(dir, 'sae_weights.safetensors'));
      const m = new Map<string, Tensor>();
      for (const name of st.tensors.keys())
        m.set(name, { dims: st.info(name).shape, data: st.readF32(name) });
      edit(m);
      writeSafetensors(
        path.join(dir, 'sae_weights.safetensors'),
        new Map([...m].map(([k, t]) => [k, { dtype: 'F32' as const, shape: t.dims, data: t.data }])),
      );
    };

    it('refuses a missing tensor, naming the file and the tensor', () => {
      const dir = copy((d) => rewriteWeights(d, (m) => m.delete('b_enc')));
      refuses(() => Sae.load(dir), /sae_weights\.safetensors: no tensor 'b_enc', which a standard SAE needs/);
    });

    it('refuses a tensor whose shape disagrees with cfg.json', () => {
      const dir = copy((d) =>
        rewriteWeights(d, (m) => m.set('W_dec', { dims: [16, 48], data: m.get('W_dec')!.data })),
      );
      refuses(
        () => Sae.load(dir),
        /tensor 'W_dec' has shape \[16, 48\] but cfg\.json's d_in = 16 and d_sae = 48 need \[48, 16\]/,
      );
    });

    it('refuses pickles, a missing cfg.json and missing weights', () => {
      const pt = copy((d) => {
        fs.rmSync(path.join(d, 'sae_weights.safetensors'));
        fs.writeFileSync(path.join(d, 'sae_weights.pt'), 'not really');
      });
      refuses(() => Sae.load(pt), /sae_weights\.pt: PyTorch pickle weights are refused on purpose/);
      refuses(() => Sae.load(path.join(pt, 'sae_weights.pt')), /refused on purpose/);
      const bin = tempDir('loupe-bad-sae-');
      fs.writeFileSync(path.join(bin, 'ae.bin'), 'x');
      refuses(() => Sae.load(bin), /ae\.bin: PyTorch pickle weights are refused/);
      refuses(() => Sae.load(tempDir('loupe-bad-sae-')), /no cfg\.json/);
      const noWeights = copy((d) => fs.rmSync(path.join(d, 'sae_weights.safetensors')));
      refuses(() => Sae.load(noWeights), /no sae_weights\.safetensors/);
      refuses(() => Sae.load(path.join(pt, 'nope')), /no such SAE folder/);
    });

    it('refuses a sparsity file of another SAE and non-finite weights', () => {
      const sparse = copy((d) =>
        writeSafetensors(
          path.join(d, 'sparsity.safetensors'),
          new Map([['sparsity', { dtype: 'F32' as const, shape: [7], data: new Float32Array(7) }]]),
        ),
      );
      refuses(() => Sae.load(sparse), /sparsity\.safetensors: 'sparsity' has shape \[7\] but d_sae = 48/);
      const nan = copy((d) => rewriteWeights(d, (m) => (m.get('b_dec')!.data[2] = NaN)));
      refuses(() => Sae.load(nan), /'b_dec' holds a non-finite value/);
    });

    it('warns when expected_average_only_in has no scaling factor', () => {
      const dir = copy((d) => {
        const cfg = JSON.parse(fs.readFileSync(path.join(d, 'cfg.json'), 'utf8')) as Record<string, unknown>;
        cfg.normalize_activations = 'expected_average_only_in';
        fs.writeFileSync(path.join(d, 'cfg.json'), JSON.stringify(cfg));
      });
      const sae = Sae.load(dir);
      assert.equal(sae.normScalingFactor, null);
      assert.equal(sae.warnings.length, 1);
      assert.match(sae.warnings[0], /no scaling factor/);
      assert.equal(Sae.load(dir, { normScalingFactor: 2 }).normScalingFactor, 2);
    });
  });

  describe('saving in SAELens 6 layout', () => {
    for (const name of ['gated-meta', 'jumprelu-nested-f16', 'standard-finetune', 'topk-flat']) {
      it(`${name}: round-trips with the same outputs`, async () => {
        const index = readIndex();
        const c = index.cases.find((x) => x.name === name)!;
        const ref = reference(name);
        const loaded = Sae.load(path.join(SAE_FIXTURES, name), { cacheDir });
        const dir = tempDir('loupe-saved-sae-');
        saveSae(dir, loaded);
        const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'cfg.json'), 'utf8')) as Record<
          string,
          unknown
        >;
        const meta = cfg.metadata as Record<string, unknown>;
        assert.equal(cfg.architecture, c.architecture);
        assert.equal(meta.hook_name, index.hook_name);
        assert.ok(
          Number(String(meta.sae_lens_version).split('.')[0]) >= 6,
          'SAELens reads it as the 6.x layout',
        );
        assert.deepEqual(meta.model_from_pretrained_kwargs, { center_writing_weights: c.center });
        assert.ok(!('hook_name' in cfg) && !('activation_fn_str' in cfg), 'nothing model-related at the top');
        // Scale factors are folded into the weights, as SAELens does when training ends.
        if (loaded.config.normalizeActivations === 'expected_average_only_in')
          assert.equal(cfg.normalize_activations, 'none');
        const st = SafetensorsFile.open(path.join(dir, 'sae_weights.safetensors'));
        for (const info of st.tensors.values()) assert.equal(info.dtype, 'F32');
        assert.ok(!st.tensors.has('scaling_factor') && !st.tensors.has('log_threshold'));
        const again = Sae.load(dir, { cacheDir });
        assert.deepEqual(again.warnings, []);
        assert.equal(again.config.centerWritingWeights, c.center);
        const out = await again.forward(ref('x'), { center: c.center });
        close('feature_acts', out.featureActs, ref('feature_acts'), 2e-5);
        close('sae_out', out.saeOut, ref('sae_out'), 2e-5);
        await Promise.all([loaded.dispose(), again.dispose()]);
      });
    }

    it('writes sparsity and keeps TopK settings', () => {
      const dir = tempDir('loupe-saved-sae-');
      saveSae(dir, Sae.load(path.join(SAE_FIXTURES, 'standard-flat')));
      assert.ok(fs.existsSync(path.join(dir, 'sparsity.safetensors')));
      const topkDir = tempDir('loupe-saved-sae-');
      saveSae(topkDir, Sae.load(path.join(SAE_FIXTURES, 'topk-nested')));
      const cfg = JSON.parse(fs.readFileSync(path.join(topkDir, 'cfg.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      assert.equal(cfg.k, 6);
      assert.equal(cfg.rescale_acts_by_decoder_norm, true);
      assert.equal(cfg.normalize_activations, 'constant_norm_rescale');
    });
  });

  describe('fitted to a model', function () {
    let model: HookedModel;
    let modelDir: string;
    const texts = [
      [5, 9, 3, 17, 22, 8, 1, 30],
      [7, 2, 11],
    ];

    before(async () => {
      modelDir = tempDir();
      writeTinyGpt2(modelDir, 11);
      model = await HookedModel.open(modelDir, { cacheDir, threads: 1 });
    });
    after(async () => {
      await model.dispose();
    });

    it('refuses an SAE whose d_in or hook does not fit, naming both', () => {
      refuses(
        () => attachSae(model, randomSae('blocks.0.hook_resid_pre', 24, 8, 1)),
        /d_in is 24 at blocks\.0\.hook_resid_pre/,
        /last dimension 16/,
        new RegExp(modelDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')),
      );
      refuses(
        () => attachSae(model, randomSae('blocks.7.hook_resid_pre', 16, 8, 1)),
        /reads hook 'blocks\.7\.hook_resid_pre', which model .* does not have \(2 layers/,
      );
    });

    it('centres residual-stream hooks of LayerNorm models when cfg.json says the SAE saw centred activations', async () => {
      const centred = {
        metadata: {
          hook_name: 'blocks.1.hook_resid_pre',
          model_from_pretrained_kwargs: { center_writing_weights: true },
        },
      };
      const att = attachSae(model, randomSae('blocks.1.hook_resid_pre', 16, 40, 2, centred, cacheDir));
      assert.equal(att.center, true);
      const mlp = attachSae(
        model,
        randomSae('blocks.1.mlp.hook_post', 64, 40, 2, { metadata: { hook_name: 'blocks.1.mlp.hook_post' } }),
      );
      assert.equal(mlp.center, false, 'not a residual-stream hook');
      // The features of a text are those of the hook's activations minus their per-token mean.
      const [feats] = await saeFeatures(att, [texts[0]]);
      const [run] = await model.run([texts[0]], { hooks: ['blocks.1.hook_resid_pre'] });
      const x = run.hooks.get('blocks.1.hook_resid_pre')!;
      const centredX = Float32Array.from(x.data);
      for (let t = 0; t < texts[0].length; t++) {
        const row = centredX.subarray(t * 16, (t + 1) * 16);
        const mean = row.reduce((a, v) => a + v, 0) / 16;
        for (let i = 0; i < 16; i++) row[i] -= mean;
      }
      const want = await att.sae.encode({ dims: [texts[0].length, 16], data: centredX });
      close('centred features', feats, want);
      await att.sae.dispose();
    });

    for (const center of [false, true]) {
      it(`splicing with the error term reproduces the clean logits (center ${center})`, async () => {
        const sae = randomSae(
          'blocks.1.hook_resid_pre',
          16,
          40,
          3,
          {
            metadata: {
              hook_name: 'blocks.1.hook_resid_pre',
              model_from_pretrained_kwargs: { center_writing_weights: center },
            },
          },
          cacheDir,
        );
        const att = attachSae(model, sae);
        assert.equal(att.center, center);
        const results = await spliceSae(att, texts, { errorTerm: true });
        assert.equal(results.length, 2);
        for (const [b, r] of results.entries()) {
          assert.deepEqual(r.cleanLogits.dims, [1, texts[b].length, 40]);
          close('spliced logits', r.splicedLogits, r.cleanLogits, 1e-4);
          assert.ok(r.meanKl < 1e-6, `KL ${r.meanKl}`);
          assert.ok(Math.abs(r.ceClean - r.ceSpliced) < 1e-4);
          assert.equal(r.positions.length, texts[b].length);
          assert.equal(r.positions[texts[b].length - 1].ceClean, null);
          assert.deepEqual(
            r.positions.map((p) => p.topClean[0].id),
            r.positions.map((p) => p.topSpliced[0].id),
          );
        }
        // Without the error term the reconstruction alone is spliced in: the output moves.
        const [bare] = await spliceSae(att, [texts[0]], { errorTerm: false });
        assert.ok(bare.meanKl > 1e-6, `KL ${bare.meanKl}`);
        assert.ok(maxAbsDiff(bare.splicedLogits.data, bare.cleanLogits.data) > 1e-3);
        // One text alone gives what it gave in the batch.
        close('batched vs alone', bare.cleanLogits, results[0].cleanLogits, 1e-5);
        await sae.dispose();
      });
    }

    it('reads attn.hook_z with its heads flattened, as SAELens does', async () => {
      const sae = randomSae(
        'blocks.1.attn.hook_z',
        16,
        24,
        7,
        { metadata: { hook_name: 'blocks.1.attn.hook_z' } },
        cacheDir,
      );
      assert.equal(sae.config.reshapeActivations, 'hook_z');
      const att = attachSae(model, sae);
      assert.equal(att.center, false);
      const [feats] = await saeFeatures(att, [texts[0]]);
      const [run] = await model.run([texts[0]], { hooks: ['blocks.1.attn.hook_z'] });
      const z = run.hooks.get('blocks.1.attn.hook_z')!;
      assert.deepEqual(z.dims, [1, texts[0].length, 4, 4]);
      close('hook_z features', feats, await sae.encode({ dims: [texts[0].length, 16], data: z.data }));
      const [r] = await spliceSae(att, [texts[0]], { errorTerm: true });
      close('spliced logits', r.splicedLogits, r.cleanLogits, 1e-4);
      refuses(
        () =>
          attachSae(
            model,
            randomSae('blocks.1.attn.hook_z', 12, 8, 1, { metadata: { hook_name: 'blocks.1.attn.hook_z' } }),
          ),
        /d_in is 12 .* n_heads × d_head 16/,
      );
      await sae.dispose();
    });

    it('ablating or clamping a feature changes the output, where it is edited', async () => {
      const sae = randomSae('blocks.0.hook_resid_post', 16, 40, 4, {}, cacheDir);
      const att = attachSae(model, sae);
      const [feats] = await saeFeatures(att, [texts[0]]);
      const top = topFeatures(feats, 1)[3][0];
      assert.ok(top && top.act > 0, 'a feature fires at position 3');
      const [ablated] = await spliceSae(att, [texts[0]], {
        errorTerm: true,
        features: [{ index: top.index }],
      });
      assert.ok(ablated.meanKl > 1e-7, `KL ${ablated.meanKl}`);
      const [clamped] = await spliceSae(att, [texts[0]], {
        errorTerm: true,
        features: [{ index: top.index, value: 20, positions: [5] }],
      });
      // Edits at position 5 reach positions 5.. only (causal attention).
      for (let t = 0; t < 5; t++) assert.ok(clamped.positions[t].kl < 1e-6, `position ${t} untouched`);
      assert.ok(clamped.positions[5].kl > 1e-4, `position 5 KL ${clamped.positions[5].kl}`);
      await refusesAsync(
        () => spliceSae(att, [texts[0]], { features: [{ index: 40 }] }),
        /feature 40 does not exist/,
      );
      await sae.dispose();
    });
  });

  describe('loupe features', function () {
    let dir: string;
    let saeDir: string;
    let textFile: string;
    const run = (args: string[]): CliRun => runCli(args, cacheDir);

    before(function () {
      if (!fs.existsSync(CLI)) this.skip(); // built by the test command before mocha runs
      dir = tempDir();
      writeTinyGpt2(dir, 3, { bos_token_id: 261, eos_token_id: 261, n_positions: 64 }, 300);
      writeByteLevelTokenizer(dir);
      textFile = path.join(dir, 'sample.py');
      fs.writeFileSync(textFile, 'def f(x):\r\n\treturn "世界 🙂"\n');
      saeDir = tempDir('loupe-cli-sae-');
      saveSae(saeDir, randomSae('blocks.1.hook_resid_pre', 16, 64, 5));
    });

    it('prints each token as tokenize does, with its top positive features', async () => {
      const r = run([
        'features',
        '--model',
        dir,
        '--sae',
        saeDir,
        '--text',
        textFile,
        '--top',
        '3',
        '--json',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const rows = JSON.parse(r.stdout) as {
        id: number;
        text: string;
        start: number;
        end: number;
        features: { index: number; act: number }[];
      }[];
      const tokens = JSON.parse(
        run(['tokenize', '--model', dir, '--text', textFile, '--json']).stdout,
      ) as object[];
      assert.equal(rows.length, tokens.length);
      rows.forEach((row, i) => {
        assert.deepEqual(Object.keys(row), ['id', 'text', 'start', 'end', 'features']);
        const { features, ...token } = row;
        assert.deepEqual(token, tokens[i]);
        assert.ok(features.length <= 3);
        for (const [j, f] of features.entries()) {
          assert.deepEqual(Object.keys(f), ['index', 'act']);
          assert.ok(Number.isInteger(f.index) && f.act > 0);
          if (j > 0) assert.ok(features[j - 1].act >= f.act, 'largest first');
        }
      });
      assert.ok(rows.some((row) => row.features.length === 3));
      // The same numbers as the engine gives in process.
      const model = await HookedModel.open(dir, { cacheDir, threads: 1 });
      const sae = Sae.load(saeDir, { cacheDir });
      const [acts] = await saeFeatures(attachSae(model, sae), [rows.map((row) => row.id)]);
      const want = topFeatures(acts, 3);
      rows.forEach((row, i) => {
        assert.deepEqual(
          row.features.map((f) => f.index),
          want[i].map((f) => f.index),
        );
        row.features.forEach((f, j) => assert.ok(Math.abs(f.act - want[i][j].act) < 1e-5));
      });
      await Promise.all([model.dispose(), sae.dispose()]);
    });

    it('fails with one line on stderr', () => {
      const wrongWidth = tempDir('loupe-cli-sae-');
      saveSae(wrongWidth, randomSae('blocks.1.hook_resid_pre', 32, 8, 6));
      const cases: [string[], RegExp][] = [
        [['features', '--model', dir, '--text', textFile], /--sae DIR is required/],
        [
          ['features', '--model', dir, '--sae', path.join(dir, 'nope'), '--text', textFile],
          /no such SAE folder/,
        ],
        [
          ['features', '--model', dir, '--sae', wrongWidth, '--text', textFile],
          /d_in is 32 .* last dimension 16/,
        ],
        [
          ['features', '--model', dir, '--sae', saeDir, '--text', textFile, '--top', '0'],
          /--top must be a positive integer/,
        ],
      ];
      for (const [args, pattern] of cases) {
        const r = run(args);
        assert.notEqual(r.code, 0, args.join(' '));
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
        assert.match(lines[0], /^loupe: /);
        assert.match(lines[0], pattern);
      }
    });
  });
});
