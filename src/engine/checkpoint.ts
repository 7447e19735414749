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
import { openObject, recordOf, str } from '../shared/schema';
import { checkFolder, isPresent } from './inputFiles';
import { JSON_KINDS, readJsonFile, readJsonObject } from './untrustedJson';

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
  if (!fs.existsSync(dir)) {
    if (isPresent(dir)) checkFolder(dir, 'model folder'); // names a looping or broken link
    throw new LoupeError(`${dir}: no such model folder`);
  }
  if (fs.statSync(dir).isFile()) {
    if (PICKLE_EXTENSIONS.includes(path.extname(dir))) throw pickleRefusal(dir);
    dir = path.dirname(dir);
  }
  const configFile = path.join(dir, 'config.json');
  if (!isPresent(configFile)) {
    throw new LoupeError(
      `${dir}: no config.json; a model folder is a Hugging Face checkpoint (config.json + model.safetensors)`,
    );
  }
  const config = readJsonObject(configFile, JSON_KINDS.config);
  const family = familyFor(config.model_type, configFile);
  const spec = family.parseConfig(config, configFile);
  const weights = new CheckpointWeights(openWeightFiles(dir));
  return { dir, configFile, config, family, spec, weights };
}

const shardIndexSchema = openObject({ weight_map: recordOf(str) });

function openWeightFiles(dir: string): SafetensorsFile[] {
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  if (isPresent(single)) return [SafetensorsFile.open(single)];
  if (isPresent(index)) {
    const map = readJsonFile(index, JSON_KINDS.shardIndex, shardIndexSchema).weight_map;
    const shardNames = [...new Set(Object.values(map))];
    const shards = new Map(shardNames.map((s) => [s, SafetensorsFile.open(shardFile(dir, index, s))]));
    for (const [tensor, shard] of Object.entries(map)) {
      if (!shards.get(shard)?.tensors.has(tensor))
        throw new LoupeError(`${index}: '${tensor}' is mapped to '${shard}', which does not hold it`);
    }
    // A tensor held twice would be read from whichever shard came last, silently.
    const holder = new Map<string, string>();
    for (const [name, file] of shards) {
      for (const tensor of file.tensors.keys()) {
        const other = holder.get(tensor);
        if (other !== undefined) {
          throw new LoupeError(
            `${index}: tensor '${tensor}' is in both '${other}' and '${name}'; a tensor belongs to one shard`,
          );
        }
        holder.set(tensor, name);
      }
    }
    return [...shards.values()];
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

/**
 * The file a shard index names: a plain file name in the checkpoint folder.
 * Names with a folder part, `.`, `..` or an absolute path could reach any file
 * on the machine, so they are refused (a symlink is fine: Hugging Face's cache
 * links snapshots to blobs elsewhere). The safetensors reader checks the file itself.
 */
function shardFile(dir: string, index: string, shard: string): string {
  if (shard === '' || shard === '.' || shard === '..' || /[/\\]/.test(shard) || path.isAbsolute(shard)) {
    throw new LoupeError(
      `${index}: weight_map names the shard ${JSON.stringify(shard)}, which is not a file name in ${dir}; shards must sit beside the index`,
    );
  }
  const file = path.join(dir, shard);
  if (!isPresent(file)) throw new LoupeError(`${index}: shard '${shard}' is listed but missing from ${dir}`);
  return file;
}

function pickleRefusal(file: string): LoupeError {
  return new LoupeError(
    `${file}: PyTorch pickle weights are refused on purpose, because unpickling can run arbitrary code; ` +
      `convert once to safetensors (in Python: model = AutoModelForCausalLM.from_pretrained(dir); ` +
      `model.save_pretrained(dir, safe_serialization=True)) and open the folder again`,
  );
}
