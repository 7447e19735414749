/**
 * The feature database: a folder (by default `features/` inside the SAE's
 * folder) that answers the UI's questions about an SAE's features in
 * milliseconds.
 *
 *   index.json               schema version, build metadata, one row per
 *                            feature in columns (label, density, max and mean
 *                            activation, cluster, search tokens) and the
 *                            cluster list: everything a feature list, a
 *                            search or a cluster view needs, loaded once
 *   map.json                 the 2-D map's points, loaded on first use
 *   shards/NNNNN.json.gz     full dashboards, SHARD_SIZE features per file,
 *                            gzipped JSON, read on demand (a few kept in memory)
 *
 * Why plain files: the database is written once per build and then only read,
 * so it needs no transactions or updates, only fast lookups by index and a
 * scan of a few columns for search, which a loaded index does in a
 * millisecond even for 16k features. An embedded SQL engine would bring a
 * native addon that must match each Electron ABI VS Code ships (a desktop VS
 * Code would not load a Node build of it), while JSON and gzip are built into
 * Node and Electron alike, the files can be read by any notebook, and a
 * database travels with its SAE folder. Dashboards are mostly repeated
 * context text, which gzip shrinks about sixfold, so shipping one in a
 * repository stays small.
 *
 * Writes are atomic at the folder level: everything is written into a
 * new sibling folder, then swapped in by rename (safeWrite.ts), so a reader
 * never sees half a database, and opening one finishes a swap a kill cut short. The schema version is checked on open; an older or newer
 * database is refused with a message that says to rebuild it.
 */
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { featureCluster, featureDashboard } from '../../shared/featureSchemas';
import {
  arrayOf,
  bool,
  int,
  intBetween,
  nonNegInt,
  nullable,
  num,
  openObject,
  recordOf,
  Schema,
  SchemaError,
  str,
} from '../../shared/schema';
import { LoupeError } from '../errors';
import { recoverResult, writeResultFolder } from '../safeWrite';
import { isPresent } from '../inputFiles';
import { JSON_KINDS, checkJson, readGzipJson, readUntrustedJson } from '../untrustedJson';
import {
  FEATURE_DB_SCHEMA,
  FeatureCluster,
  FeatureDashboard,
  FeatureDbMeta,
  FeatureSummary,
  MapPoint,
} from './types';

export const FEATURE_DB_DIR = 'features';
export const SHARD_SIZE = 16;
const INDEX_FILE = 'index.json';
const MAP_FILE = 'map.json';
const SHARD_CACHE = 16;

/** The per-feature columns of index.json. */
export interface FeatureIndexColumns {
  readonly label: readonly string[];
  readonly dead: readonly boolean[];
  readonly density: readonly number[];
  readonly maxAct: readonly number[];
  readonly meanActive: readonly number[];
  /** -1 for dead features. */
  readonly cluster: readonly number[];
  /** Token texts to search by: the label's tokens, then the top contexts' focus tokens. */
  readonly tokens: readonly (readonly string[])[];
}

interface IndexFile {
  readonly schema: number;
  readonly meta: FeatureDbMeta;
  readonly shardSize: number;
  readonly features: FeatureIndexColumns;
  readonly clusters: readonly FeatureCluster[];
}

interface MapFile {
  readonly schema: number;
  readonly index: readonly number[];
  readonly x: readonly number[];
  readonly y: readonly number[];
  readonly cluster: readonly number[];
}

interface ShardFile {
  readonly schema: number;
  readonly first: number;
  readonly dashboards: readonly FeatureDashboard[];
}

export interface DatabaseContents {
  readonly meta: FeatureDbMeta;
  readonly features: FeatureIndexColumns;
  readonly clusters: readonly FeatureCluster[];
  readonly map: readonly MapPoint[];
  /** Called once per feature, in index order, while shards are written. */
  readonly dashboard: (index: number) => FeatureDashboard;
}

/** Writes a database folder at `dir`, replacing a previous one in one step (safeWrite.ts). */
export function writeFeatureDatabase(dir: string, contents: DatabaseContents): void {
  const dSae = contents.meta.dSae;
  if (contents.features.label.length !== dSae) throw new Error('feature columns do not match d_sae');
  writeResultFolder(dir, 'feature-database', (out) => {
    const index: IndexFile = {
      schema: FEATURE_DB_SCHEMA,
      meta: contents.meta,
      shardSize: SHARD_SIZE,
      features: contents.features,
      clusters: contents.clusters,
    };
    out.file(INDEX_FILE, JSON.stringify(index));
    const map: MapFile = {
      schema: FEATURE_DB_SCHEMA,
      index: contents.map.map((p) => p.index),
      x: contents.map.map((p) => p.x),
      y: contents.map.map((p) => p.y),
      cluster: contents.map.map((p) => p.cluster),
    };
    out.file(MAP_FILE, JSON.stringify(map));
    out.folder('shards');
    for (let first = 0; first < dSae; first += SHARD_SIZE) {
      const dashboards: FeatureDashboard[] = [];
      for (let i = first; i < Math.min(dSae, first + SHARD_SIZE); i++) dashboards.push(contents.dashboard(i));
      const shard: ShardFile = { schema: FEATURE_DB_SCHEMA, first, dashboards };
      out.file(
        path.join('shards', shardName(first / SHARD_SIZE)),
        zlib.gzipSync(JSON.stringify(shard), { level: 6 }),
      );
    }
  });
}

function shardName(n: number): string {
  return `${String(n).padStart(5, '0')}.json.gz`;
}

export type ListSort = 'index' | 'density' | 'maxAct' | 'meanActive';

export interface ListOptions {
  /** Default 'index'. */
  readonly sort?: ListSort;
  /** Default: ascending for 'index', descending otherwise. */
  readonly order?: 'asc' | 'desc';
  readonly offset?: number;
  /** Default 100. */
  readonly limit?: number;
  /** Include dead features; default true. */
  readonly includeDead?: boolean;
}

export class FeatureDatabase {
  private readonly shards = new Map<number, ShardFile>();
  private readonly orders = new Map<string, Int32Array>();
  private mapPoints: MapPoint[] | null = null;
  private readonly lowerLabels: string[];
  private readonly lowerTokens: string[][];

  private constructor(
    /** The database folder. */
    readonly dir: string,
    private readonly index: IndexFile,
  ) {
    this.lowerLabels = index.features.label.map((l) => l.toLowerCase());
    this.lowerTokens = index.features.tokens.map((ts) => ts.map((t) => t.trim().toLowerCase()));
  }

  /** Opens a database folder, or the `features/` folder inside an SAE folder. */
  static open(dir: string): FeatureDatabase {
    const given = path.resolve(dir);
    const candidates = [given, path.join(given, FEATURE_DB_DIR)];
    for (const d of candidates) recoverResult(d);
    const found = candidates.find((d) => isPresent(path.join(d, INDEX_FILE)));
    if (!found) {
      throw new LoupeError(
        `${given}: no feature database (${INDEX_FILE}, or ${FEATURE_DB_DIR}/${INDEX_FILE} in an SAE folder); build one with 'loupe dashboards'`,
      );
    }
    const file = path.join(found, INDEX_FILE);
    const raw = readUntrustedJson(file, JSON_KINDS.featureIndex);
    checkSchema((raw as { schema?: unknown } | null)?.schema, file);
    const index: IndexFile = checkJson(raw, indexSchema, file, JSON_KINDS.featureIndex);
    const n = index.meta.dSae;
    const f = index.features;
    for (const [name, column] of Object.entries(f)) {
      if (column.length !== n) {
        throw new LoupeError(
          `${file}: 'features.${name}' holds ${column.length} rows but meta.dSae is ${n}; rebuild the database`,
        );
      }
    }
    return new FeatureDatabase(found, index);
  }

  get meta(): FeatureDbMeta {
    return this.index.meta;
  }

  get size(): number {
    return this.index.meta.dSae;
  }

  summary(i: number): FeatureSummary {
    this.checkIndex(i);
    const f = this.index.features;
    return {
      index: i,
      label: f.label[i],
      dead: f.dead[i],
      density: f.density[i],
      maxAct: f.maxAct[i],
      meanActive: f.meanActive[i],
      cluster: f.cluster[i] < 0 ? null : f.cluster[i],
    };
  }

  /** The full dashboard of feature i. */
  dashboard(i: number): FeatureDashboard {
    this.checkIndex(i);
    const n = Math.floor(i / this.index.shardSize);
    let shard = this.shards.get(n);
    if (shard) {
      this.shards.delete(n);
    } else {
      const file = path.join(this.dir, 'shards', shardName(n));
      const json = readGzipJson(file, JSON_KINDS.featureShard, this.index.shardSize * MAX_DASHBOARD_BYTES);
      checkSchema((json as { schema?: unknown } | null)?.schema, file);
      shard = checkJson(json, shardSchema, file, JSON_KINDS.featureShard);
      if (shard.first !== n * this.index.shardSize) throw new LoupeError(`${file}: holds the wrong features`);
    }
    this.shards.set(n, shard);
    while (this.shards.size > SHARD_CACHE) this.shards.delete(this.shards.keys().next().value as number);
    const d = shard.dashboards[i - shard.first];
    if (!d || d.index !== i)
      throw new LoupeError(`${this.dir}: shard ${n} lacks feature ${i}; rebuild the database`);
    return d;
  }

  /**
   * Features matching a query, best first: a number (or `#123`) finds that
   * feature; text finds features whose label or search tokens equal it
   * (ignoring case and surrounding spaces), then those whose label contains
   * it, then those with a search token containing it. Ties: the denser first.
   */
  search(query: string, limit = 50): FeatureSummary[] {
    const q = query.trim().replace(/^"(.*)"$/, '$1');
    if (q.length === 0) return [];
    const lower = q.toLowerCase();
    const hits: { i: number; rank: number }[] = [];
    const asIndex = /^#?(\d+)$/.exec(q);
    if (asIndex && Number(asIndex[1]) < this.size) hits.push({ i: Number(asIndex[1]), rank: -1 });
    const f = this.index.features;
    for (let i = 0; i < this.size; i++) {
      if (asIndex && i === Number(asIndex[1])) continue;
      const tokens = this.lowerTokens[i];
      let rank = -1;
      if (tokens.includes(lower) || this.lowerLabels[i] === lower) rank = 0;
      else if (this.lowerLabels[i].includes(lower)) rank = 1;
      else if (tokens.some((t) => t.includes(lower))) rank = 2;
      if (rank >= 0) hits.push({ i, rank });
    }
    hits.sort((a, b) => a.rank - b.rank || f.density[b.i] - f.density[a.i] || a.i - b.i);
    return hits.slice(0, limit).map((h) => this.summary(h.i));
  }

  list(options: ListOptions = {}): FeatureSummary[] {
    const sort = options.sort ?? 'index';
    const order = options.order ?? (sort === 'index' ? 'asc' : 'desc');
    const includeDead = options.includeDead ?? true;
    const key = `${sort}:${order}:${includeDead}`;
    let ids = this.orders.get(key);
    if (!ids) {
      const f = this.index.features;
      const all = Array.from({ length: this.size }, (_, i) => i).filter((i) => includeDead || !f.dead[i]);
      if (sort !== 'index') {
        const col = f[sort];
        all.sort((a, b) => (order === 'desc' ? col[b] - col[a] : col[a] - col[b]) || a - b);
      } else if (order === 'desc') all.reverse();
      ids = Int32Array.from(all);
      this.orders.set(key, ids);
    }
    const offset = Math.max(0, options.offset ?? 0);
    const limit = Math.max(0, options.limit ?? 100);
    return Array.from(ids.subarray(offset, offset + limit), (i) => this.summary(i));
  }

  clusters(): readonly FeatureCluster[] {
    return this.index.clusters;
  }

  /** The 2-D map: one point per live feature. */
  map(): readonly MapPoint[] {
    if (!this.mapPoints) {
      const file = path.join(this.dir, MAP_FILE);
      const json = readUntrustedJson(file, JSON_KINDS.featureMap);
      checkSchema((json as { schema?: unknown } | null)?.schema, file);
      const m = checkJson(json, mapSchema, file, JSON_KINDS.featureMap);
      if ([m.x, m.y, m.cluster].some((c) => c.length !== m.index.length)) {
        throw new LoupeError(`${file}: the map's columns differ in length; rebuild the database`);
      }
      this.mapPoints = m.index.map((index, i) => ({ index, x: m.x[i], y: m.y[i], cluster: m.cluster[i] }));
    }
    return this.mapPoints;
  }

  private checkIndex(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.size) {
      throw new LoupeError(`feature ${i} does not exist (this SAE has features 0..${this.size - 1})`);
    }
  }
}

/** Big enough for any dashboard Loupe writes (tens of contexts of at most a few hundred tokens), so a shard's inflated size is bounded by its feature count. */
const MAX_DASHBOARD_BYTES = 4 * 1024 * 1024;
const MAX_FEATURES = 1 << 24;

const optionValue: Schema<string | number | boolean> = {
  parse: (v, at = '') => {
    if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)))
      return v;
    throw new SchemaError(at, 'a string, number or boolean', v);
  },
};

/** index.json as the loader uses it; what lies outside these fields is not read. */
const indexSchema = openObject({
  schema: num,
  meta: openObject({
    schema: num,
    createdAt: str,
    model: str,
    hook: str,
    dSae: nonNegInt,
    dIn: nonNegInt,
    corpus: str,
    tokens: nonNegInt,
    documents: nonNegInt,
    contextSize: nonNegInt,
    liveFeatures: nonNegInt,
    options: recordOf(optionValue),
    logitsNote: nullable(str),
    clusterNote: str,
    seconds: recordOf(num),
  }),
  shardSize: intBetween(1, 4096),
  features: openObject({
    label: arrayOf(str, MAX_FEATURES),
    dead: arrayOf(bool, MAX_FEATURES),
    density: arrayOf(num, MAX_FEATURES),
    maxAct: arrayOf(num, MAX_FEATURES),
    meanActive: arrayOf(num, MAX_FEATURES),
    cluster: arrayOf(int, MAX_FEATURES),
    tokens: arrayOf(arrayOf(str), MAX_FEATURES),
  }),
  clusters: arrayOf(featureCluster, MAX_FEATURES),
});

const mapSchema = openObject({
  schema: num,
  index: arrayOf(nonNegInt, MAX_FEATURES),
  x: arrayOf(num, MAX_FEATURES),
  y: arrayOf(num, MAX_FEATURES),
  cluster: arrayOf(int, MAX_FEATURES),
});

const shardSchema = openObject({
  schema: num,
  first: nonNegInt,
  dashboards: arrayOf(featureDashboard, 4096),
});

function checkSchema(schema: unknown, file: string): void {
  if (schema !== FEATURE_DB_SCHEMA) {
    throw new LoupeError(
      `${file}: feature database schema ${String(schema)}, but this Loupe reads schema ${FEATURE_DB_SCHEMA}; rebuild it with 'loupe dashboards'`,
    );
  }
}
