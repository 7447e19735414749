/**
 * A sharded checkpoint whose model.safetensors.index.json names shards that
 * are not plain files beside it (`.`, `..`, absolute paths, folders, pipes,
 * looping links), are missing, or overlap; each is refused with one line,
 * and nothing outside the checkpoint folder is read.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FuzzCase } from '../case';
import { fifo, symlinkLoop, writeInput } from '../caseFiles';
import { deepJson, runArgs, shardedModel, writeIndex } from '../checkpointCopies';

/** Every tensor mapped to one shard name. */
const allTo = (shard: unknown) => (map: Record<string, string>) =>
  Object.fromEntries(Object.keys(map).map((k) => [k, shard]));

function badMap(name: string, weightMap: (map: Record<string, string>) => unknown, error: RegExp): FuzzCase {
  return {
    name: `shards/${name}`,
    area: 'shards',
    setup: (dir) => runArgs(dir, shardedModel(dir, weightMap)),
    expect: { error },
    untouched: ['model'],
  };
}

/** The first shard replaced by what `make` leaves at its path. */
function badShard(name: string, make: (model: string, shard: string) => void, error: RegExp): FuzzCase {
  return {
    name: `shards/${name}`,
    area: 'shards',
    setup: (dir) => {
      const model = shardedModel(dir);
      fs.rmSync(path.join(model, 'shard-1.safetensors'));
      make(model, 'shard-1.safetensors');
      return runArgs(dir, model);
    },
    expect: { error },
    timeoutMs: 10_000,
  };
}

const notAFileName =
  /model\.safetensors\.index\.json: weight_map names the shard .*, which is not a file name in .*; shards must sit beside the index/;

export const cases: FuzzCase[] = [
  {
    name: 'shards/intact-two-shards',
    area: 'shards',
    setup: (dir) => runArgs(dir, shardedModel(dir)),
    expect: { ok: true },
  },
  {
    name: 'shards/shard-a-symlink-to-a-blob-elsewhere',
    area: 'shards',
    setup: (dir) => {
      // Hugging Face's cache links each snapshot file to a blob outside the snapshot folder.
      const model = shardedModel(dir);
      fs.mkdirSync(path.join(dir, 'blobs'));
      fs.renameSync(path.join(model, 'shard-2.safetensors'), path.join(dir, 'blobs', 'abc123'));
      fs.symlinkSync(path.join('..', 'blobs', 'abc123'), path.join(model, 'shard-2.safetensors'));
      return runArgs(dir, model);
    },
    expect: { ok: true },
  },
  badMap('shard-named-dot', allTo('.'), notAFileName),
  badMap('shard-named-dot-dot', allTo('..'), notAFileName),
  badMap('shard-named-empty', allTo(''), notAFileName),
  badMap('shard-absolute-path', allTo('/etc/passwd'), notAFileName),
  badMap('shard-climbs-out', allTo('../shard-1.safetensors'), notAFileName),
  badMap('shard-in-a-subfolder', allTo('sub/shard-1.safetensors'), notAFileName),
  badMap('shard-backslash-path', allTo('..\\shard-1.safetensors'), notAFileName),
  badMap(
    'shard-missing',
    (m) => ({ ...m, [Object.keys(m)[0]]: 'shard-9.safetensors' }),
    /index\.json: shard 'shard-9\.safetensors' is listed but missing from/,
  ),
  badMap(
    'weight-map-an-array',
    () => ['shard-1.safetensors'],
    /index\.json: 'weight_map' must be an object, got an array of 1/,
  ),
  badMap('weight-map-null', () => null, /index\.json: 'weight_map' must be an object, got null/),
  badMap(
    'weight-map-value-a-number',
    (m) => ({ ...m, [Object.keys(m)[0]]: 1 }),
    /index\.json: 'weight_map\[".*"\]' must be a string, got 1/,
  ),
  badMap(
    'tensor-mapped-to-the-wrong-shard',
    (m) => ({ ...m, [Object.keys(m)[0]]: 'shard-2.safetensors' }),
    /index\.json: '.*' is mapped to 'shard-2\.safetensors', which does not hold it/,
  ),
  {
    name: 'shards/tensor-in-two-shards',
    area: 'shards',
    setup: (dir) => {
      const model = shardedModel(dir);
      fs.copyFileSync(path.join(model, 'shard-1.safetensors'), path.join(model, 'shard-3.safetensors'));
      const map = JSON.parse(fs.readFileSync(path.join(model, 'model.safetensors.index.json'), 'utf8')) as {
        weight_map: Record<string, string>;
      };
      const [first] = Object.keys(map.weight_map);
      // Mapped once to each copy: both shards hold every tensor of shard-1.
      writeIndex(model, { ...map.weight_map, [first]: 'shard-3.safetensors' });
      return runArgs(dir, model);
    },
    expect: {
      error: /index\.json: tensor '.*' is in both 'shard-.\.safetensors' and 'shard-.\.safetensors'/,
    },
  },
  {
    name: 'shards/weight-map-missing',
    area: 'shards',
    setup: (dir) => {
      const model = shardedModel(dir);
      writeInput(model, 'model.safetensors.index.json', JSON.stringify({ metadata: {} }));
      return runArgs(dir, model);
    },
    expect: { error: /index\.json: 'weight_map' is missing/ },
  },
  {
    name: 'shards/index-nested-deep',
    area: 'shards',
    setup: (dir) => {
      const model = shardedModel(dir);
      writeInput(model, 'model.safetensors.index.json', `{"weight_map": ${deepJson(100_000)}}`);
      return runArgs(dir, model);
    },
    expect: { error: /index\.json: the shard index is nested more than 64 levels deep/ },
  },
  {
    name: 'shards/index-not-json',
    area: 'shards',
    setup: (dir) => {
      const model = shardedModel(dir);
      writeInput(model, 'model.safetensors.index.json', '{"weight_map": {');
      return runArgs(dir, model);
    },
    expect: { error: /index\.json: the shard index is not valid JSON/ },
  },
  badShard(
    'shard-a-folder',
    (m, s) => fs.mkdirSync(path.join(m, s)),
    /shard-1\.safetensors: safetensors file is a folder, not a file/,
  ),
  badShard(
    'shard-a-fifo',
    (m, s) => fifo(m, s),
    /shard-1\.safetensors: safetensors file is not a regular file/,
  ),
  badShard(
    'shard-symlink-loop',
    (m, s) => symlinkLoop(m, s),
    /shard-1\.safetensors: safetensors file is a symbolic link that loops/,
  ),
  badShard('shard-empty', (m, s) => writeInput(m, s, ''), /shard-1\.safetensors: the file is empty/),
];
