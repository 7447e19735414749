/**
 * Opens a Hugging Face checkpoint folder: `config.json`, weights in
 * `model.safetensors` or sharded behind `model.safetensors.index.json`, and
 * (optionally) `tokenizer.json`. Pickled weights (`.bin`, `.pt`) are refused:
 * unpickling can run arbitrary code, so Loupe reads safetensors only.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoupeError } from './errors';
import { familyFor } from './families';
import { FamilyDefinition, HostTensor, ModelSpec } from './families/spec';
import { SafetensorsFile, TensorInfo } from './safetensors';

export interface Checkpoint {
  readonly dir: string;
  readonly configFile: string;
  readonly config: Record<string, unknown>;
  readonly family: FamilyDefinition;
  readonly spec: ModelSpec;
  readonly weights: CheckpointWeights;
}

/** The tensors of a checkpoint, across one file or several shards. */
export class CheckpointWeights {
  private readonly byName = new Map<string, { file: SafetensorsFile; info: TensorInfo }>();

  constructor(readonly files: readonly SafetensorsFile[]) {
    for (const file of files) {
      for (const [name, info] of file.tensors) this.byName.set(name, { file, info });
    }
  }

  get names(): ReadonlySet<string> {
    return new Set(this.byName.keys());
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): { file: string; info: TensorInfo } | undefined {
    const e = this.byName.get(name);
    return e && { file: e.file.file, info: e.info };
  }

  /** Appends one tensor as f32 to an open file without holding it whole; returns the bytes written. */
  streamF32To(name: string, outFd: number): number {
    const e = this.byName.get(name);
    if (!e) throw new LoupeError(`checkpoint has no tensor '${name}'`);
    return e.file.streamF32To(name, outFd);
  }

  read(name: string): HostTensor {
    const e = this.byName.get(name);
    if (!e) throw new LoupeError(`checkpoint has no tensor '${name}'`);
    return { shape: e.info.shape, data: e.file.readF32(name) };
  }
}

const PICKLE_EXTENSIONS = ['.bin', '.pt', '.pth', '.ckpt', '.pkl'];

export function openCheckpoint(dirOrFile: string): Checkpoint {
  let dir = path.resolve(dirOrFile);
  if (!fs.existsSync(dir)) throw new LoupeError(`${dir}: no such model folder`);
  if (fs.statSync(dir).isFile()) {
    if (PICKLE_EXTENSIONS.includes(path.extname(dir))) throw pickleRefusal(dir);
    dir = path.dirname(dir);
  }
  const configFile = path.join(dir, 'config.json');
  if (!fs.existsSync(configFile)) {
    throw new LoupeError(
      `${dir}: no config.json; a model folder is a Hugging Face checkpoint (config.json + model.safetensors)`,
    );
  }
  const config = readJsonObject(configFile);
  const family = familyFor(config.model_type, configFile);
  const spec = family.parseConfig(config, configFile);
  const weights = new CheckpointWeights(openWeightFiles(dir));
  return { dir, configFile, config, family, spec, weights };
}

export function readJsonObject(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new LoupeError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new LoupeError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new LoupeError(`${file}: expected a JSON object`);
  }
  return value as Record<string, unknown>;
}

function openWeightFiles(dir: string): SafetensorsFile[] {
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(single)) return [SafetensorsFile.open(single)];
  if (fs.existsSync(index)) {
    const json = readJsonObject(index);
    const map = json.weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) {
      throw new LoupeError(`${index}: 'weight_map' is missing or not an object`);
    }
    const shardNames = [...new Set(Object.values(map as Record<string, unknown>))];
    for (const s of shardNames) {
      if (typeof s !== 'string' || s.includes('/') || s.includes('\\')) {
        throw new LoupeError(`${index}: weight_map names an invalid shard ${JSON.stringify(s)}`);
      }
    }
    const shards = (shardNames as string[]).map((s) => {
      const file = path.join(dir, s);
      if (!fs.existsSync(file))
        throw new LoupeError(`${index}: shard '${s}' is listed but missing from ${dir}`);
      return SafetensorsFile.open(file);
    });
    for (const [tensor, shard] of Object.entries(map as Record<string, string>)) {
      const f = shards.find((x) => path.basename(x.file) === shard);
      if (!f?.tensors.has(tensor))
        throw new LoupeError(`${index}: '${tensor}' is mapped to '${shard}', which does not hold it`);
    }
    return shards;
  }
  const entries = fs.readdirSync(dir);
  const pickles = entries.filter((e) => PICKLE_EXTENSIONS.includes(path.extname(e)));
  if (pickles.length > 0) throw pickleRefusal(path.join(dir, pickles[0]));
  const others = entries.filter((e) => e.endsWith('.safetensors'));
  if (others.length > 0) {
    throw new LoupeError(
      `${dir}: found ${others.join(', ')} but neither model.safetensors nor model.safetensors.index.json; rename a single file to model.safetensors`,
    );
  }
  throw new LoupeError(`${dir}: no weights (model.safetensors or model.safetensors.index.json)`);
}

function pickleRefusal(file: string): LoupeError {
  return new LoupeError(
    `${file}: PyTorch pickle weights are refused on purpose, because unpickling can run arbitrary code; ` +
      `convert once to safetensors (in Python: model = AutoModelForCausalLM.from_pretrained(dir); ` +
      `model.save_pretrained(dir, safe_serialization=True)) and open the folder again`,
  );
}
