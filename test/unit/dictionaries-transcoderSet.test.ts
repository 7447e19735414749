/**
 * circuit-tracer transcoder folders: what Loupe writes reads back with the
 * layout circuit-tracer loads (W_enc [d_tc, d_model], the threshold under
 * `activation_function.threshold`, config.yaml's keys), f16 rounding, decoder
 * rows read one at a time, and every malformed folder refused in one line.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SafetensorsFile, f32ToF16, writeSafetensors } from '../../src/engine/safetensors';
import {
  TranscoderLayerParams,
  TranscoderSetConfig,
  openTranscoderSet,
  readTranscoderSetConfig,
  saveTranscoderSet,
  writeTranscoderSetConfig,
} from '../../src/engine/dictionaries/transcoderSet';
import { seededRandom, tempDir } from './helpers';

const D_MODEL = 4;
const D_TC = 6;

function randomLayer(
  seed: number,
  extras: { threshold?: boolean; skip?: boolean } = {},
): TranscoderLayerParams {
  const r = seededRandom(seed);
  const fill = (n: number): Float32Array => Float32Array.from({ length: n }, () => r());
  return {
    W_enc: fill(D_TC * D_MODEL),
    b_enc: fill(D_TC),
    W_dec: fill(D_TC * D_MODEL),
    b_dec: fill(D_MODEL),
    threshold: extras.threshold ? fill(D_TC).map(Math.abs) : null,
    W_skip: extras.skip ? fill(D_MODEL * D_MODEL) : null,
  };
}

const CONFIG: TranscoderSetConfig = {
  modelKind: 'transcoder_set',
  featureInputHook: 'hook_resid_mid',
  featureOutputHook: 'hook_mlp_out',
  activation: 'jump_relu',
  k: null,
  extra: { scan: 'loupe/test' },
};

function f16Round(values: Float32Array): Float32Array {
  // Expected f16 values from the definition: the nearest representable half, computed in f64.
  return values.map((v) => {
    const e = Math.max(Math.floor(Math.log2(Math.abs(v))), -14);
    const step = 2 ** (e - 10);
    const q = v / step;
    const rounded = Math.abs(q - Math.trunc(q)) === 0.5 ? 2 * Math.round(q / 2) : Math.round(q);
    return rounded * step;
  });
}

describe('circuit-tracer transcoder sets', () => {
  it('writes a set that reads back tensor for tensor, with config.yaml in circuit-tracer keys', () => {
    const dir = tempDir();
    const layers = [
      randomLayer(1, { threshold: true, skip: true }),
      randomLayer(2, { threshold: true, skip: true }),
    ];
    saveTranscoderSet(dir, CONFIG, { dModel: D_MODEL, dTranscoder: D_TC }, layers);
    const yaml = fs.readFileSync(path.join(dir, 'config.yaml'), 'utf8');
    assert.match(yaml, /^model_kind: transcoder_set$/m);
    assert.match(yaml, /^feature_input_hook: hook_resid_mid$/m);
    assert.match(yaml, /^feature_output_hook: hook_mlp_out$/m);
    assert.match(yaml, /^scan: loupe\/test$/m);
    const raw = SafetensorsFile.open(path.join(dir, 'layer_1.safetensors'));
    assert.deepEqual([...raw.tensors.keys()].sort(), [
      'W_dec',
      'W_enc',
      'W_skip',
      'activation_function.threshold',
      'b_dec',
      'b_enc',
    ]);
    assert.deepEqual(raw.info('W_enc').shape, [D_TC, D_MODEL]);
    const set = openTranscoderSet(dir);
    assert.equal(set.nLayers, 2);
    assert.equal(set.dModel, D_MODEL);
    assert.equal(set.dTranscoder, D_TC);
    assert.deepEqual(set.config, CONFIG);
    const l1 = set.layers[1];
    assert.deepEqual(l1.activation, { kind: 'jump_relu' });
    assert.equal(l1.hasSkip, true);
    assert.deepEqual(l1.outputLayers, [1]);
    assert.deepEqual(l1.readEncoder(), layers[1].W_enc);
    assert.deepEqual(l1.readThreshold(), layers[1].threshold);
    assert.deepEqual(l1.readSkip(), layers[1].W_skip);
    const rows = l1.readDecoderRows([5, 0]);
    assert.deepEqual(rows.subarray(0, D_MODEL), layers[1].W_dec.subarray(5 * D_MODEL, 6 * D_MODEL));
    assert.deepEqual(rows.subarray(D_MODEL), layers[1].W_dec.subarray(0, D_MODEL));
    assert.throws(() => l1.readDecoderRows([D_TC]), /has 6 rows; row 6 does not exist/);
  });

  it('writes f16 rounded to the nearest half', () => {
    const dir = tempDir();
    const layer = randomLayer(3);
    saveTranscoderSet(
      dir,
      { ...CONFIG, activation: 'relu' },
      { dModel: D_MODEL, dTranscoder: D_TC },
      [layer],
      'F16',
    );
    const raw = SafetensorsFile.open(path.join(dir, 'layer_0.safetensors'));
    assert.equal(raw.info('W_enc').dtype, 'F16');
    const back = openTranscoderSet(dir).layers[0].readEncoder();
    assert.deepEqual(back, f16Round(layer.W_enc));
    assert.deepEqual(
      [...f32ToF16(Float32Array.of(1, -2, 65520, 2 ** -25 * 1.5, 0))],
      [0x3c00, 0xc000, 0x7c00, 0x0001, 0],
    );
  });

  it('reads topk with its k and keeps keys it does not use', () => {
    const dir = tempDir();
    fs.writeFileSync(
      path.join(dir, 'config.yaml'),
      'model_kind: transcoder_set\nfeature_input_hook: mlp.hook_in\nfeature_output_hook: mlp.hook_out\nactivation: topk\nk: 3\nscan: x\n',
    );
    const cfg = readTranscoderSetConfig(dir);
    assert.equal(cfg.activation, 'topk');
    assert.equal(cfg.k, 3);
    writeTranscoderSetConfig(dir, cfg);
    assert.deepEqual(readTranscoderSetConfig(dir), cfg);
  });

  it('refuses malformed folders in one line naming the file', () => {
    const cases: [string, (dir: string) => void, RegExp][] = [
      [
        'bad kind',
        (d) =>
          fs.writeFileSync(
            path.join(d, 'config.yaml'),
            'model_kind: sae\nfeature_input_hook: a\nfeature_output_hook: b\n',
          ),
        /model_kind 'sae' is not one circuit-tracer knows/,
      ],
      [
        'topk without k',
        (d) =>
          fs.writeFileSync(
            path.join(d, 'config.yaml'),
            'model_kind: transcoder_set\nfeature_input_hook: a\nfeature_output_hook: b\nactivation: topk\n',
          ),
        /topk needs k/,
      ],
      [
        'not a mapping',
        (d) => fs.writeFileSync(path.join(d, 'config.yaml'), '- a\n- b\n'),
        /expected a YAML mapping/,
      ],
      [
        'hub list',
        (d) =>
          fs.writeFileSync(
            path.join(d, 'config.yaml'),
            'model_kind: transcoder_set\nfeature_input_hook: a\nfeature_output_hook: b\ntranscoders:\n  - hf://x/y/layer_0.safetensors\n',
          ),
        /lists its layers under 'transcoders'/,
      ],
      ['no layers', (d) => writeTranscoderSetConfig(d, CONFIG), /no layer_0\.safetensors/],
      [
        'a gap',
        (d) => {
          saveTranscoderSet(d, { ...CONFIG, activation: null }, { dModel: D_MODEL, dTranscoder: D_TC }, [
            randomLayer(1),
            randomLayer(2),
          ]);
          fs.renameSync(path.join(d, 'layer_1.safetensors'), path.join(d, 'layer_2.safetensors'));
        },
        /has layer_2\.safetensors but no layer_1\.safetensors/,
      ],
      [
        'SAELens-layout W_dec',
        (d) => {
          writeTranscoderSetConfig(d, { ...CONFIG, activation: null });
          const l = randomLayer(1);
          writeSafetensors(
            path.join(d, 'layer_0.safetensors'),
            new Map([
              ['W_enc', { dtype: 'F32', shape: [D_TC, D_MODEL], data: l.W_enc }],
              ['b_enc', { dtype: 'F32', shape: [D_TC], data: l.b_enc }],
              ['W_dec', { dtype: 'F32', shape: [D_MODEL, D_TC], data: l.W_dec }],
              ['b_dec', { dtype: 'F32', shape: [D_MODEL], data: l.b_dec }],
            ] as const),
          );
        },
        /'W_dec' is \[4, 6\], the transpose of circuit-tracer's \[d_transcoder, d_model\]/,
      ],
      [
        'jump_relu without threshold',
        (d) => saveTranscoderSet(d, CONFIG, { dModel: D_MODEL, dTranscoder: D_TC }, [randomLayer(1)]),
        /says activation jump_relu but the file holds no threshold/,
      ],
    ];
    for (const [what, make, pattern] of cases) {
      const dir = tempDir();
      make(dir);
      assert.throws(
        () => openTranscoderSet(dir),
        (err: Error) => {
          assert.match(err.message, pattern, what);
          assert.equal(err.name, 'LoupeError', what);
          assert.ok(!err.message.includes('\n'), what);
          return true;
        },
      );
    }
  });
});
