/**
 * A feature database (index.json and gzipped dashboard shards) damaged or
 * made to hurt: wrong types, missing fields, a gzip bomb, a cut shard, deep
 * JSON, a corpus root of `/`. Each gets one line naming the file and the
 * field, and a bomb never inflates past what a shard can hold.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { FuzzCase } from '../case';
import { DEFAULT_SAE, fifo } from '../caseFiles';
import { deepJson } from '../checkpointCopies';

type Json = Record<string, unknown>;

/** A copy of the bundled SAE's database at `dir/db`. */
function copyDb(dir: string): string {
  const db = path.join(dir, 'db');
  fs.cpSync(path.join(DEFAULT_SAE, 'features'), db, { recursive: true });
  return db;
}

const dashboardArgs = (db: string, index = 3): string[] => [
  'feature',
  '--db',
  db,
  '--index',
  String(index),
  '--json',
];
const shard0 = (db: string): string => path.join(db, 'shards', '00000.json.gz');

/** A case whose index.json is the bundled one changed by `edit` (or raw text). */
function index(name: string, edit: (index: Json) => unknown, error: RegExp): FuzzCase {
  return {
    name: `features-db/${name}`,
    area: 'features-db',
    setup: (dir) => {
      const db = copyDb(dir);
      const file = path.join(db, 'index.json');
      const edited = edit(JSON.parse(fs.readFileSync(file, 'utf8')) as Json);
      fs.writeFileSync(file, typeof edited === 'string' ? edited : JSON.stringify(edited));
      return dashboardArgs(db);
    },
    expect: { error },
    untouched: ['db'],
  };
}

/** A case whose first shard's JSON is changed by `edit`, gzipped again. */
function shard(
  name: string,
  edit: (shard: Json & { dashboards: Json[] }) => unknown,
  error: RegExp,
): FuzzCase {
  return {
    name: `features-db/${name}`,
    area: 'features-db',
    setup: (dir) => {
      const db = copyDb(dir);
      const json = JSON.parse(zlib.gunzipSync(fs.readFileSync(shard0(db))).toString('utf8')) as Json & {
        dashboards: Json[];
      };
      const edited = edit(json);
      fs.writeFileSync(
        shard0(db),
        zlib.gzipSync(typeof edited === 'string' ? edited : JSON.stringify(edited)),
      );
      return dashboardArgs(db);
    },
    expect: { error },
  };
}

/** A case whose first shard file is `bytes` (raw, not gzipped by the case). */
function shardFile(
  name: string,
  bytes: (db: string) => Uint8Array | null,
  error: RegExp,
  maxRssMiB?: number,
): FuzzCase {
  return {
    name: `features-db/${name}`,
    area: 'features-db',
    setup: (dir) => {
      const db = copyDb(dir);
      const b = bytes(db);
      if (b) fs.writeFileSync(shard0(db), b);
      return dashboardArgs(db);
    },
    expect: { error },
    ...(maxRssMiB ? { maxRssMiB } : {}),
  };
}

const withMeta = (i: Json, meta: Json): Json => ({ ...i, meta: { ...(i.meta as Json), ...meta } });
const withFeatures = (i: Json, features: Json): Json => ({
  ...i,
  features: { ...(i.features as Json), ...features },
});

export const cases: FuzzCase[] = [
  {
    name: 'features-db/intact',
    area: 'features-db',
    setup: (dir) => dashboardArgs(copyDb(dir)),
    expect: {
      ok: true,
      check: (stdout) => {
        if ((JSON.parse(stdout) as { index: number }).index !== 3) throw new Error('not feature 3');
      },
    },
  },
  {
    name: 'features-db/corpus-root-slash',
    area: 'features-db',
    // The database's word on where its corpus lives is shown, never followed to read files.
    setup: (dir) => {
      const db = copyDb(dir);
      const file = path.join(db, 'index.json');
      const i = JSON.parse(fs.readFileSync(file, 'utf8')) as Json;
      fs.writeFileSync(file, JSON.stringify(withMeta(i, { corpus: '/' })));
      return dashboardArgs(db);
    },
    expect: {
      ok: true,
      check: (stdout) => {
        if (stdout.includes('root:x:0:0')) throw new Error('a file outside the database was read');
      },
    },
  },
  shard(
    'dashboard-index-null',
    (s) => ({ ...s, dashboards: s.dashboards.map((d, k) => (k === 3 ? { ...d, index: null } : d)) }),
    /00000\.json\.gz: 'dashboards\[3\]\.index' must be an integer ≥ 0, got null; rebuild the database/,
  ),
  shard(
    'dashboard-top-contexts-a-string',
    (s) => ({ ...s, dashboards: s.dashboards.map((d) => ({ ...d, top: 'many' })) }),
    /00000\.json\.gz: 'dashboards\[0\]\.top' must be an array, got "many"/,
  ),
  shard(
    'dashboard-label-missing',
    (s) => ({ ...s, dashboards: s.dashboards.map(({ label: _label, ...d }) => d) }),
    /00000\.json\.gz: 'dashboards\[0\]\.label' is missing/,
  ),
  shard(
    'context-span-one-number',
    (s) => ({
      ...s,
      dashboards: s.dashboards.map((d) => ({
        ...d,
        top: (d.top as Json[]).map((c) => ({ ...c, span: [3] })),
      })),
    }),
    /00000\.json\.gz: 'dashboards\[\d+\]\.top\[0\]\.span' must be a pair \[a, b\], got an array of 1/,
  ),
  shard('dashboards-missing', ({ dashboards: _d, ...s }) => s, /00000\.json\.gz: 'dashboards' is missing/),
  shard(
    'shard-nested-deep',
    () => `{"schema": 1, "dashboards": ${deepJson(100_000)}}`,
    /00000\.json\.gz: the dashboard shard is nested more than 64 levels deep/,
  ),
  shard(
    'shard-not-json',
    () => '{"schema": 1, "first": 0,',
    /00000\.json\.gz: the dashboard shard is not valid JSON/,
  ),
  shard(
    'shard-holds-other-features',
    (s) => ({ ...s, first: 32 }),
    /00000\.json\.gz: holds the wrong features/,
  ),
  shardFile(
    'gzip-bomb',
    // 2.3 GB of spaces, gzipped to a few MB: refused at the cap, never inflated whole.
    () => gzipOfSpaces(2300 * 1024 * 1024),
    /00000\.json\.gz: the dashboard shard inflates to more than 64\.0 MiB, more than it can hold; the file is corrupt or a gzip bomb/,
    400,
  ),
  shardFile(
    'gzip-truncated',
    (db) => fs.readFileSync(shard0(db)).subarray(0, 200),
    /00000\.json\.gz: the dashboard shard is not valid gzip/,
  ),
  shardFile(
    'gzip-not-gzip',
    () => Buffer.from('{"schema": 1}'),
    /00000\.json\.gz: the dashboard shard is not valid gzip/,
  ),
  shardFile(
    'shard-a-fifo',
    (db) => {
      fs.rmSync(shard0(db));
      fifo(path.dirname(shard0(db)), '00000.json.gz');
      return null;
    },
    /00000\.json\.gz: dashboard shard is not a regular file/,
  ),
  shardFile(
    'shard-a-folder',
    (db) => {
      fs.rmSync(shard0(db));
      fs.mkdirSync(shard0(db));
      return null;
    },
    /00000\.json\.gz: dashboard shard is a folder, not a file/,
  ),
  index(
    'index-not-json',
    () => '{"schema": 1, "meta": {',
    /index\.json: the feature database index is not valid JSON/,
  ),
  index(
    'index-nested-deep',
    () => `{"schema": 1, "meta": ${deepJson(200_000)}}`,
    /index\.json: the feature database index is nested more than 64 levels deep/,
  ),
  index(
    'schema-from-another-version',
    (i) => ({ ...i, schema: 99 }),
    /index\.json: feature database schema 99, but this Loupe reads schema 1/,
  ),
  index('meta-missing', ({ meta: _m, ...i }) => i, /index\.json: 'meta' is missing/),
  index(
    'd-sae-a-string',
    (i) => withMeta(i, { dSae: 'many' }),
    /index\.json: 'meta\.dSae' must be an integer ≥ 0, got "many"/,
  ),
  index(
    'corpus-null',
    (i) => withMeta(i, { corpus: null }),
    /index\.json: 'meta\.corpus' must be a string, got null/,
  ),
  index(
    'shard-size-zero',
    (i) => ({ ...i, shardSize: 0 }),
    /index\.json: 'shardSize' must be an integer from 1 to 4096, got 0/,
  ),
  index(
    'shard-size-huge',
    (i) => ({ ...i, shardSize: 1e12 }),
    /index\.json: 'shardSize' must be an integer from 1 to 4096, got 1000000000000/,
  ),
  index(
    'label-column-wrong-type',
    (i) =>
      withFeatures(i, { label: (i.features as { label: unknown[] }).label.map((l, k) => (k === 5 ? 5 : l)) }),
    /index\.json: 'features\.label\[5\]' must be a string, got 5/,
  ),
  index(
    'density-column-short',
    (i) => withFeatures(i, { density: [0.1, 0.2] }),
    /index\.json: 'features\.density' holds 2 rows but meta\.dSae is 2048; rebuild the database/,
  ),
  index(
    'clusters-an-object',
    (i) => ({ ...i, clusters: {} }),
    /index\.json: 'clusters' must be an array, got an object/,
  ),
];

/** Gzip of `n` spaces: one 64 MiB member repeated (gzip allows members back to back), so making it stays cheap. */
function gzipOfSpaces(n: number): Buffer {
  const size = 64 * 1024 * 1024;
  const member = zlib.gzipSync(Buffer.alloc(size, 0x20), { level: 9 });
  return Buffer.concat(Array.from({ length: Math.ceil(n / size) }, () => member));
}
