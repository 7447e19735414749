import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { FuzzCase } from '../case';
import { FIXTURES, sparseFile, writeInput } from '../caseFiles';

const DICTS = path.join(FIXTURES, 'dictionaries');
const GPT2 = path.join(FIXTURES, 'gpt2');
const TEXT = 'def f(x):\n    return x\n';

/** `loupe features` on the gpt2 fixture with a text in the case folder and the given dictionary flags. */
function features(dir: string, ...flags: string[]): string[] {
  return ['features', '--model', GPT2, '--text', writeInput(dir, 'a.py', TEXT), '--json', ...flags];
}

/** A copy of a fixture folder inside the case folder, to break. */
function copyOf(dir: string, fixture: string, name = 'dict'): string {
  const to = path.join(dir, name);
  fs.cpSync(path.join(DICTS, fixture), to, { recursive: true });
  return to;
}

interface ZipEntry {
  readonly name: string;
  readonly data: Buffer;
  /** 0 stored, 8 deflated. */
  readonly method?: 0 | 8;
  /** The uncompressed size the zip's records claim (default: the true one). */
  readonly declaredSize?: number;
}

/** A zip of the given entries, as numpy's savez writes one, with whatever inside. */
function zipOf(entries: readonly ZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const method = e.method ?? 0;
    const body = method === 8 ? zlib.deflateRawSync(e.data) : e.data;
    const size = e.declaredSize ?? e.data.length;
    const name = Buffer.from(e.name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const dirSize = centrals.reduce((a, b) => a + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(dirSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, ...centrals, end]);
}

/** A little-endian f4 .npy array of zeros with the given shape. */
function npyZeros(shape: number[]): Buffer {
  return Buffer.concat([npyHeader('<f4', shape), Buffer.alloc(shape.reduce((a, d) => a * d, 1) * 4)]);
}

/** A .npy header (v1) for a float32 array of the given shape, padded as numpy pads it. */
function npyHeader(descr: string, shape: number[]): Buffer {
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  while ((10 + dict.length + 1) % 64 !== 0) dict += ' ';
  const head = Buffer.alloc(10);
  head.writeUInt8(0x93, 0);
  head.write('NUMPY', 1, 'latin1');
  head.writeUInt8(1, 6);
  head.writeUInt16LE(dict.length + 1, 8);
  return Buffer.concat([head, Buffer.from(`${dict}\n`, 'latin1')]);
}

export const cases: FuzzCase[] = [
  {
    name: 'sae/gemma-scope-without-hook',
    area: 'sae',
    setup: (dir) => {
      const sae = path.join(dir, 'plain');
      fs.mkdirSync(sae);
      fs.copyFileSync(
        path.join(DICTS, 'gemma-scope-tiny-res/layer_1/width_48/average_l0_9/params.npz'),
        path.join(sae, 'params.npz'),
      );
      return features(dir, '--sae', sae);
    },
    expect: { error: /params\.npz: a Gemma Scope SAE has no config.*pass --hook NAME/ },
  },
  {
    name: 'sae/npz-object-array',
    area: 'sae',
    setup: (dir) =>
      features(dir, '--sae', path.join(DICTS, 'npz', 'object.npz'), '--hook', 'blocks.0.hook_resid_post'),
    expect: { error: /object array, which numpy stores as a pickle; refused on purpose/ },
  },
  {
    name: 'sae/npz-not-a-zip',
    area: 'sae',
    setup: (dir) =>
      features(
        dir,
        '--sae',
        writeInput(dir, 'params.npz', 'not a zip at all'),
        '--hook',
        'blocks.0.hook_resid_post',
      ),
    expect: { error: /params\.npz: not a zip file/ },
  },
  {
    name: 'sae/npz-truncated',
    area: 'sae',
    setup: (dir) => {
      const bytes = fs.readFileSync(
        path.join(DICTS, 'gemma-scope-tiny-res/layer_1/width_48/average_l0_9/params.npz'),
      );
      return features(
        dir,
        '--sae',
        writeInput(dir, 'params.npz', bytes.subarray(0, bytes.length >> 1)),
        '--hook',
        'blocks.1.hook_resid_post',
      );
    },
    expect: { error: /params\.npz: (not a zip file|.*truncated|.*corrupt)/ },
  },
  {
    name: 'sae/npz-header-lies-about-shape',
    area: 'sae',
    setup: (dir) => {
      const npy = Buffer.concat([npyHeader('<f4', [1000000, 1000]), Buffer.alloc(16)]);
      return features(
        dir,
        '--sae',
        writeInput(dir, 'params.npz', zipOf([{ name: 'W_enc.npy', data: npy }])),
        '--hook',
        'blocks.1.hook_resid_post',
      );
    },
    expect: { error: /'W_enc\.npy' is \d+ bytes but its header's shape \[1000000, 1000\] of <f4 needs/ },
    maxRssMiB: 512,
  },
  {
    name: 'sae/npz-deflate-bomb',
    area: 'sae',
    setup: (dir) => {
      // W_enc promises [32, 2] (256 bytes) but inflates to 64 MiB: the inflater stops at the promise.
      const head = npyHeader('<f4', [32, 2]);
      const zip = zipOf([
        {
          name: 'W_enc.npy',
          data: Buffer.concat([head, Buffer.alloc(64 << 20)]),
          method: 8,
          declaredSize: head.length + 256,
        },
        { name: 'b_enc.npy', data: npyZeros([2]) },
        { name: 'W_dec.npy', data: npyZeros([2, 32]) },
        { name: 'b_dec.npy', data: npyZeros([32]) },
        { name: 'threshold.npy', data: npyZeros([2]) },
      ]);
      return features(dir, '--sae', writeInput(dir, 'params.npz', zip), '--hook', 'blocks.1.hook_resid_post');
    },
    expect: {
      error: /params\.npz: entry 'W_enc\.npy' does not inflate to the 384 bytes its header promises/,
    },
    maxRssMiB: 512,
  },
  {
    name: 'sae/npz-huge-sparse-file',
    area: 'sae',
    setup: (dir) =>
      features(
        dir,
        '--sae',
        sparseFile(dir, 'params.npz', 8 * 1024 ** 3),
        '--hook',
        'blocks.1.hook_resid_post',
      ),
    expect: { error: /params\.npz: not a zip file/ },
    maxRssMiB: 512,
  },
  {
    name: 'sae/transcoder-set-yaml-not-a-mapping',
    area: 'sae',
    setup: (dir) => {
      const set = copyOf(dir, 'transcoder-set-jumprelu');
      fs.writeFileSync(path.join(set, 'config.yaml'), '[1, 2, 3]\n');
      return features(dir, '--transcoders', set);
    },
    expect: { error: /config\.yaml: expected a YAML mapping/ },
    untouched: ['dict'],
  },
  {
    name: 'sae/transcoder-set-yaml-broken',
    area: 'sae',
    setup: (dir) => {
      const set = copyOf(dir, 'transcoder-set-jumprelu');
      fs.writeFileSync(path.join(set, 'config.yaml'), 'model_kind: "transcoder_set\nfeature_input_hook: [\n');
      return features(dir, '--transcoders', set);
    },
    expect: { error: /config\.yaml: not valid YAML/ },
  },
  {
    name: 'sae/transcoder-set-layer-missing',
    area: 'sae',
    setup: (dir) => {
      const set = copyOf(dir, 'transcoder-set-jumprelu');
      fs.renameSync(path.join(set, 'layer_1.safetensors'), path.join(set, 'layer_5.safetensors'));
      return features(dir, '--transcoders', set);
    },
    expect: { error: /has layer_5\.safetensors but no layer_1\.safetensors/ },
  },
  {
    name: 'sae/transcoder-set-truncated-layer',
    area: 'sae',
    setup: (dir) => {
      const set = copyOf(dir, 'transcoder-set-jumprelu');
      const file = path.join(set, 'layer_0.safetensors');
      fs.truncateSync(file, fs.statSync(file).size - 100);
      return features(dir, '--transcoders', set);
    },
    expect: { error: /layer_0\.safetensors: .*truncated/ },
  },
  {
    name: 'sae/clt-decoder-wrong-shape',
    area: 'sae',
    setup: (dir) => {
      const clt = copyOf(dir, 'clt-gpt2');
      fs.copyFileSync(path.join(clt, 'W_dec_0.safetensors'), path.join(dir, 'keep.safetensors'));
      // Layer 1's decoder swapped for layer 0's: the name inside and the shape both disagree.
      fs.copyFileSync(path.join(clt, 'W_dec_0.safetensors'), path.join(clt, 'W_dec_1.safetensors'));
      return features(dir, '--transcoders', clt);
    },
    expect: { error: /W_dec_1\.safetensors: no tensor 'W_dec_1'/ },
  },
  {
    name: 'sae/transcoders-given-an-sae',
    area: 'sae',
    setup: (dir) => features(dir, '--transcoders', path.join(DICTS, 'sparsify-tiny', 'h.0')),
    expect: { error: /config\.yaml.*not found|transcoder config/ },
  },
  {
    name: 'sae/layer-flag-not-a-number',
    area: 'sae',
    setup: (dir) => features(dir, '--sae', path.join(DICTS, 'sparsify-tiny'), '--layer', 'two'),
    expect: { error: /--layer must be an integer ≥ 0, not 'two'/ },
  },
  {
    name: 'sae/sparsify-layer-absent',
    area: 'sae',
    setup: (dir) => features(dir, '--sae', path.join(DICTS, 'sparsify-tiny'), '--layer', '7'),
    expect: { error: /no hook point for --layer 7; it has h\.0, h\.1\.mlp/ },
  },
];
