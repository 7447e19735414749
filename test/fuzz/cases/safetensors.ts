/**
 * A checkpoint's model.safetensors damaged in every way its header and data
 * can be: each gets one line naming the file and the fault, and tensors
 * with a 0 in their shape are valid wherever their offsets point.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FuzzCase } from '../case';
import { fifo, sparseFile, symlinkLoop, writeInput } from '../caseFiles';
import {
  Header,
  copyModel,
  deepJson,
  firstTensor,
  fixtureWeights,
  modelWithHeader,
  rawSafetensors,
  runArgs,
} from '../checkpointCopies';

/** A case whose model.safetensors is `bytes`. */
function weightsFile(
  name: string,
  bytes: (data: Buffer, header: Header) => Uint8Array,
  error: RegExp,
): FuzzCase {
  return {
    name: `safetensors/${name}`,
    area: 'safetensors',
    setup: (dir) => {
      const model = copyModel(dir);
      const { header, data } = fixtureWeights();
      fs.writeFileSync(path.join(model, 'model.safetensors'), bytes(data, header));
      return runArgs(dir, model);
    },
    expect: { error },
    untouched: ['model'],
  };
}

/** A case whose header is changed by `edit`; the data section stays the fixture's. */
function header(name: string, edit: (h: Header) => unknown, error: RegExp): FuzzCase {
  return {
    name: `safetensors/${name}`,
    area: 'safetensors',
    setup: (dir) => runArgs(dir, modelWithHeader(dir, edit)),
    expect: { error },
    untouched: ['model'],
  };
}

/** The first tensor's entry changed by `edit`. */
function entry(name: string, edit: (e: Record<string, unknown>) => unknown, error: RegExp): FuzzCase {
  return header(
    name,
    (h) => {
      const key = firstTensor(h);
      return { ...h, [key]: edit({ ...(h[key] as Record<string, unknown>) }) };
    },
    error,
  );
}

/** A run that must succeed and write the logits. */
function ok(name: string, edit: (h: Header) => unknown): FuzzCase {
  return {
    name: `safetensors/${name}`,
    area: 'safetensors',
    setup: (dir) => runArgs(dir, modelWithHeader(dir, edit)),
    expect: {
      ok: true,
      check: (_stdout, dir) => {
        if (!fs.existsSync(path.join(dir, 'out.safetensors'))) throw new Error('no out.safetensors written');
      },
    },
  };
}

const dataEnd = (h: Header): number =>
  Math.max(
    ...Object.entries(h)
      .filter(([k]) => k !== '__metadata__')
      .map(([, v]) => (v as { data_offsets: [number, number] }).data_offsets[1]),
  );

export const cases: FuzzCase[] = [
  weightsFile('empty-file', () => new Uint8Array(0), /model\.safetensors: the file is empty/),
  weightsFile('seven-bytes', () => new Uint8Array(7), /only 7 bytes; too short/),
  weightsFile(
    'header-length-beyond-file',
    (data, h) => rawSafetensors(h, data, 1_000_000_000n),
    /header length 1000000000 does not fit/,
  ),
  weightsFile(
    'header-length-2-to-the-63',
    (data, h) => rawSafetensors(h, data, 2n ** 63n),
    /header length \d+ does not fit/,
  ),
  weightsFile(
    'header-not-json',
    (data) => rawSafetensors('{"a": {"dtype": "F32", ', data),
    /model\.safetensors: the safetensors header is not valid JSON/,
  ),
  weightsFile(
    'header-invalid-utf8',
    (data) => rawSafetensors(Buffer.from([0xff, 0xfe, 0x7b]), data),
    /not valid JSON/,
  ),
  weightsFile(
    'header-is-array',
    (data) => rawSafetensors([1, 2, 3], data),
    /the header is not a JSON object/,
  ),
  weightsFile(
    'header-nested-100k-deep',
    (data) => rawSafetensors(`{"a": ${deepJson(100_000)}}`, data),
    /model\.safetensors: the safetensors header is nested more than 64 levels deep/,
  ),
  weightsFile(
    'data-truncated',
    (data, h) => rawSafetensors(h, data.subarray(0, data.length - 1000)),
    /model\.safetensors: tensor '.*' ends at byte \d+ of the data section, but the file holds only \d+; the file is truncated/,
  ),
  entry('offsets-negative', (e) => ({ ...e, data_offsets: [-4, 0] }), /invalid data_offsets \[-4,0\]/),
  entry('offsets-past-2-to-the-53', (e) => ({ ...e, data_offsets: [0, 2 ** 60] }), /invalid data_offsets/),
  entry('offsets-reversed', (e) => ({ ...e, data_offsets: [64, 0] }), /invalid data_offsets \[64,0\]/),
  entry('offsets-one-number', (e) => ({ ...e, data_offsets: [0] }), /invalid data_offsets \[0\]/),
  entry('offsets-strings', (e) => ({ ...e, data_offsets: ['0', '8'] }), /invalid data_offsets/),
  entry('dtype-unknown', (e) => ({ ...e, dtype: 'F8_E4M3' }), /unsupported dtype "F8_E4M3"/),
  entry(
    'dtype-missing',
    (e) => ({ shape: e.shape, data_offsets: e.data_offsets }),
    /unsupported dtype undefined/,
  ),
  entry(
    'dtype-integer-weight',
    (e) => ({ ...e, dtype: 'I32' }),
    /tensor '.*' is I32; weights must be F32, F16 or BF16/,
  ),
  entry(
    'shape-disagrees-with-size',
    (e) => ({ ...e, shape: [...(e.shape as number[]), 2] }),
    /shape \[.*\] of F32 needs \d+ bytes but data_offsets give \d+/,
  ),
  entry('shape-negative', (e) => ({ ...e, shape: [-1, 32] }), /invalid shape \[-1,32\]/),
  entry('shape-not-array', (e) => ({ ...e, shape: '32x32' }), /invalid shape "32x32"/),
  header(
    'entry-not-object',
    (h) => ({ ...h, [firstTensor(h)]: 7 }),
    /tensor '.*' has no header entry object/,
  ),
  header(
    'tensors-overlap',
    (h) => {
      const names = Object.keys(h).filter((k) => k !== '__metadata__');
      const a = h[names[0]] as { data_offsets: [number, number] };
      const b = h[names[1]] as { dtype: string; shape: number[]; data_offsets: [number, number] };
      const len = b.data_offsets[1] - b.data_offsets[0];
      // b moved to start inside a: same size, so only the overlap is wrong.
      return {
        ...h,
        [names[1]]: { ...b, data_offsets: [a.data_offsets[0] + 4, a.data_offsets[0] + 4 + len] },
      };
    },
    /model\.safetensors: tensors '.*' and '.*' overlap in the data section/,
  ),
  header(
    'metadata-not-object',
    (h) => ({ ...h, __metadata__: 'pt' }),
    /__metadata__ is not an object of strings/,
  ),
  header(
    'metadata-value-not-string',
    (h) => ({ ...h, __metadata__: { format: 3 } }),
    /__metadata__\.format is not a string/,
  ),
  header(
    'tensor-missing',
    (h) =>
      Object.fromEntries(
        Object.entries(h).filter(([k]) => k !== 'wte.weight' && k !== 'transformer.wte.weight'),
      ),
    /the weights lack tensor '.*wte\.weight'/,
  ),
  ok('zero-size-tensor-at-offset-0', (h) => ({
    ...h,
    'extra.empty': { dtype: 'F32', shape: [0, 32], data_offsets: [0, 0] },
  })),
  ok('zero-size-tensor-at-the-end', (h) => ({
    ...h,
    'extra.empty': { dtype: 'BF16', shape: [4, 0], data_offsets: [dataEnd(h), dataEnd(h)] },
  })),
  ok('zero-size-tensors-sharing-an-offset', (h) => ({
    ...h,
    'extra.a': { dtype: 'F32', shape: [0], data_offsets: [64, 64] },
    'extra.b': { dtype: 'F16', shape: [0, 3], data_offsets: [64, 64] },
  })),
  {
    name: 'safetensors/nan-in-weights',
    area: 'safetensors',
    setup: (dir) => {
      const model = copyModel(dir);
      const { header: h, data } = fixtureWeights();
      const copy = Buffer.from(data);
      const begin = (h[firstTensor(h)] as { data_offsets: [number, number] }).data_offsets[0];
      copy.writeFloatLE(NaN, begin + 8);
      fs.writeFileSync(path.join(model, 'model.safetensors'), rawSafetensors(h, copy));
      return runArgs(dir, model);
    },
    expect: {
      error: /holds a non-finite value \(not a number, or infinite\) at index 2; the checkpoint is corrupt/,
    },
  },
  {
    name: 'safetensors/pickle-bin-only',
    area: 'safetensors',
    setup: (dir) => {
      const model = copyModel(dir);
      fs.rmSync(path.join(model, 'model.safetensors'));
      writeInput(model, 'pytorch_model.bin', 'PK\u0003\u0004 not unpickled');
      return runArgs(dir, model);
    },
    expect: { error: /pytorch_model\.bin: PyTorch pickle weights are refused on purpose/ },
    untouched: ['model'],
  },
  {
    name: 'safetensors/weights-are-a-fifo',
    area: 'safetensors',
    setup: (dir) => {
      const model = copyModel(dir);
      fs.rmSync(path.join(model, 'model.safetensors'));
      fifo(model, 'model.safetensors');
      return runArgs(dir, model);
    },
    expect: { error: /model\.safetensors: safetensors file is not a regular file/ },
    timeoutMs: 10_000,
  },
  {
    name: 'safetensors/weights-are-a-folder',
    area: 'safetensors',
    setup: (dir) => {
      const model = copyModel(dir);
      fs.rmSync(path.join(model, 'model.safetensors'));
      fs.mkdirSync(path.join(model, 'model.safetensors'));
      return runArgs(dir, model);
    },
    expect: { error: /model\.safetensors: safetensors file is a folder, not a file/ },
  },
  {
    name: 'safetensors/weights-symlink-loop',
    area: 'safetensors',
    setup: (dir) => {
      const model = copyModel(dir);
      fs.rmSync(path.join(model, 'model.safetensors'));
      symlinkLoop(model, 'model.safetensors');
      return runArgs(dir, model);
    },
    expect: { error: /model\.safetensors: safetensors file is a symbolic link that loops/ },
  },
  {
    name: 'safetensors/header-claims-100-mib-in-a-sparse-file',
    area: 'safetensors',
    setup: (dir) => {
      const model = copyModel(dir);
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(100 * 1024 * 1024 + 1));
      sparseFile(model, 'model.safetensors', 200 * 1024 * 1024, len.toString('latin1'));
      return runArgs(dir, model);
    },
    expect: { error: /header length 104857601 does not fit/ },
    maxRssMiB: 400,
  },
];
