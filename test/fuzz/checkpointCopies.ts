/**
 * Copies of the repository's tiny checkpoint for fuzz cases to damage: the
 * whole folder, its safetensors header rewritten with the data kept, or its
 * tensors split into shards behind an index.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SafetensorsFile, TensorToWrite, writeSafetensors } from '../../src/engine/safetensors';
import { FIXTURES, writeInput } from './caseFiles';

/** The 2-layer GPT-2 fixture (d_model 32, vocab 300) every checkpoint case starts from. */
export const TINY_GPT2 = path.join(FIXTURES, 'gpt2');

/** A copy of the tiny GPT-2 at `dir/model`; returns its folder. */
export function copyModel(dir: string): string {
  const model = path.join(dir, 'model');
  fs.cpSync(TINY_GPT2, model, { recursive: true });
  return model;
}

/** `run` over a short text into `dir/out.safetensors`: reads every weight and the tokenizer. */
export function runArgs(dir: string, model: string): string[] {
  const text = writeInput(dir, 'text.txt', 'def add(a, b):\n    return a + b\n');
  return ['run', '--model', model, '--text', text, '--out', path.join(dir, 'out.safetensors')];
}

/** A safetensors file from a header (raw bytes, text, or a value written as JSON) and a data section. */
export function rawSafetensors(header: unknown, data: Uint8Array, headerLength?: bigint): Buffer {
  const json = Buffer.isBuffer(header)
    ? header
    : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLength ?? BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

export type Header = Record<string, unknown>;

/** The fixture's weights header (as written) and its data section. */
export function fixtureWeights(): { header: Header; data: Buffer } {
  const bytes = fs.readFileSync(path.join(TINY_GPT2, 'model.safetensors'));
  const n = Number(bytes.readBigUInt64LE(0));
  return {
    header: JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Header,
    data: bytes.subarray(8 + n),
  };
}

/** A copy of the model whose model.safetensors has its header changed by `edit` (the data kept). */
export function modelWithHeader(dir: string, edit: (header: Header) => unknown): string {
  const model = copyModel(dir);
  const { header, data } = fixtureWeights();
  fs.writeFileSync(path.join(model, 'model.safetensors'), rawSafetensors(edit(header), data));
  return model;
}

/** The first tensor of the fixture (by header order), for cases that damage one entry. */
export function firstTensor(header: Header): string {
  return Object.keys(header).find((k) => k !== '__metadata__')!;
}

/**
 * A copy of the model with its tensors in two shards (`shard-1` and `shard-2`)
 * behind model.safetensors.index.json, which `weightMap` may rewrite.
 */
export function shardedModel(
  dir: string,
  weightMap: (map: Record<string, string>) => unknown = (m) => m,
): string {
  const model = copyModel(dir);
  const single = path.join(model, 'model.safetensors');
  const file = SafetensorsFile.open(single);
  const names = [...file.tensors.keys()];
  const halves = [names.slice(0, names.length / 2), names.slice(names.length / 2)];
  const map: Record<string, string> = {};
  halves.forEach((part, i) => {
    const shard = `shard-${i + 1}.safetensors`;
    const tensors = new Map<string, TensorToWrite>();
    for (const name of part) {
      tensors.set(name, { dtype: 'F32', shape: file.info(name).shape, data: file.readF32(name) });
      map[name] = shard;
    }
    writeSafetensors(path.join(model, shard), tensors);
  });
  fs.rmSync(single);
  writeIndex(model, weightMap(map));
  return model;
}

export function writeIndex(model: string, weightMap: unknown): void {
  fs.writeFileSync(
    path.join(model, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
  );
}

/** JSON nested `depth` arrays deep, as text (JSON.stringify would overflow on it). */
export function deepJson(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}
