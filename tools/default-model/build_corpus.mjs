// Builds the default model's corpus: public code with English comments and
// documentation, from pinned packages that any Debian machine with npm can get.
//
//   npm     typescript@5.6.3    lib/*.d.ts (the standard library declarations,
//                               with their doc comments) and lib/typescript.js
//                               (the compiler, capped: see MAX_FILE_BYTES)
//   npm     @types/node@22.10.1 every .d.ts (Node's API, documented in JSDoc)
//   npm     lodash@4.17.21      lodash.js (the JSDoc-commented single-file
//                               source; the package's per-method files repeat it)
//   Debian  libpython3.11-minimal, libpython3.11-stdlib
//                               every .py file the two packages install (the
//                               Python standard library as Debian splits it),
//                               except the generated character-map codec tables
//
// npm tarballs are fetched with `npm pack NAME@VERSION` into CACHE/packages and
// checked against the integrity hashes pinned below; the Debian packages must
// be installed (build.sh installs them) and their exact versions are recorded.
//
// Every file is read as UTF-8 with CRLF turned into LF, de-duplicated by the
// SHA-256 of that text (first path in sorted order wins), and cut into pieces
// of at most PIECE_BYTES at line boundaries; a file keeps at most
// MAX_FILE_BYTES (its first pieces), so no single file dominates. Files (all
// pieces of a file together) are split train / held-out by a seeded hash of
// their name: HELDOUT_PERCENT of them are held out.
//
// Writes CACHE/corpus/{train,heldout}.jsonl ({"path", "text"} per piece, in
// path order) and CACHE/corpus/manifest.json. Deterministic: same inputs, same
// bytes.
//
//   node tools/default-model/build_corpus.mjs [CACHE]
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

const CACHE = process.argv[2] ?? '.cache/default-model';
const NPM = [
  {
    name: 'typescript',
    version: '5.6.3',
    integrity:
      'sha512-hjcS1mhfuyi4WW8IWtjP7brDrG2cuDZukyrYrSauoXGNgx0S7zceP07adYkJycEr56BOUTNPzbInooiN3fn1qw==',
    keep: (rel) => /^lib\/[^/]+\.d\.ts$/.test(rel) || rel === 'lib/typescript.js',
    files: 'lib/*.d.ts, lib/typescript.js',
  },
  {
    name: '@types/node',
    version: '22.10.1',
    integrity:
      'sha512-qKgsUwfHZV2WCWLAnVP1JqnpE6Im6h3Y0+fYgMTasNQ7V++CBX5OT1as0g0f+OyubbFqhf6XVNIsmN4IIhEgGQ==',
    keep: (rel) => rel.endsWith('.d.ts'),
    files: '**/*.d.ts',
  },
  {
    name: 'lodash',
    version: '4.17.21',
    integrity:
      'sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXPs17LhbZVGedAJv8XZ1tvj5FvSg==',
    keep: (rel) => rel === 'lodash.js',
    files: 'lodash.js',
  },
];
const DEBIAN = ['libpython3.11-minimal', 'libpython3.11-stdlib'];
const PIECE_BYTES = 64 * 1024;
const MAX_FILE_BYTES = 1024 * 1024; // typescript.js alone is 8.9 MB
const HELDOUT_PERCENT = 5;
const SEED = 'loupe-default-model-v1';

const out = path.join(CACHE, 'corpus');
const pkgDir = path.join(CACHE, 'packages');
fs.mkdirSync(out, { recursive: true });
fs.mkdirSync(pkgDir, { recursive: true });

function walk(dir) {
  const found = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) found.push(...walk(p));
    else if (e.isFile()) found.push(p);
  }
  return found;
}

// ---- npm packages: pack, verify, unpack ----
const sources = [];
const manifestSources = [];
for (const pkg of NPM) {
  const spec = `${pkg.name}@${pkg.version}`;
  const tgz = path.join(pkgDir, `${pkg.name.replace(/^@/, '').replace('/', '-')}-${pkg.version}.tgz`);
  if (!fs.existsSync(tgz)) {
    execFileSync('npm', ['pack', spec, '--pack-destination', pkgDir, '--silent'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  const integrity = 'sha512-' + crypto.createHash('sha512').update(fs.readFileSync(tgz)).digest('base64');
  if (integrity !== pkg.integrity)
    throw new Error(`${tgz}: integrity ${integrity}, expected ${pkg.integrity}`);
  const dir = tgz.replace(/\.tgz$/, '');
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir + '.tmp', { recursive: true });
    execFileSync('tar', ['xzf', tgz, '-C', dir + '.tmp', '--strip-components=1']);
    fs.renameSync(dir + '.tmp', dir);
  }
  const files = walk(dir)
    .map((f) => path.relative(dir, f).split(path.sep).join('/'))
    .filter(pkg.keep);
  for (const rel of files)
    sources.push({ file: path.join(dir, rel), name: `npm:${spec}/${rel}`, origin: spec });
  manifestSources.push({
    kind: 'npm',
    package: pkg.name,
    version: pkg.version,
    integrity: pkg.integrity,
    files: pkg.files,
  });
}

// ---- Debian packages: the .py files each installs ----
for (const deb of DEBIAN) {
  let version;
  try {
    version = execFileSync('dpkg-query', ['-W', '-f=${Version}', deb], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(`Debian package ${deb} is not installed (apt-get install ${deb}; build.sh does this)`);
  }
  const files = execFileSync('dpkg-query', ['-L', deb], { encoding: 'utf8' })
    .split('\n')
    .filter((f) => f.endsWith('.py') && fs.statSync(f, { throwIfNoEntry: false })?.isFile());
  const spec = `${deb}=${version}`;
  for (const f of files) sources.push({ file: f, name: `deb:${spec}${f}`, origin: spec });
  manifestSources.push({
    kind: 'debian',
    package: deb,
    version,
    files: '*.py (dpkg-query -L), minus generated codec tables',
  });
}
sources.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

// ---- read, filter, de-duplicate, cap, cut, split ----
function cut(text) {
  const pieces = [];
  let current = '';
  let currentBytes = 0;
  let kept = 0;
  for (const line of text.split(/(?<=\n)/)) {
    const n = Buffer.byteLength(line);
    if (currentBytes > 0 && currentBytes + n > PIECE_BYTES) {
      pieces.push(current);
      kept += currentBytes;
      current = '';
      currentBytes = 0;
    }
    if (kept + currentBytes + n > MAX_FILE_BYTES) break;
    current += line;
    currentBytes += n;
  }
  if (current) pieces.push(current);
  return pieces;
}

const seen = new Map();
const splits = { train: [], heldout: [] };
const origins = {};
const stats = {
  candidate_files: sources.length,
  skipped: { duplicate: 0, empty: 0, not_utf8: 0, generated_codec: 0 },
  files: { train: 0, heldout: 0 },
  bytes_before_cap: 0,
  bytes: { train: 0, heldout: 0 },
  capped_files: [],
};
for (const src of sources) {
  const raw = fs.readFileSync(src.file);
  const text = raw.toString('utf8').replace(/\r\n/g, '\n');
  if (text.includes('\uFFFD') && !raw.includes(Buffer.from('\uFFFD'))) {
    stats.skipped.not_utf8++;
    continue;
  }
  if (text.trim().length === 0) {
    stats.skipped.empty++;
    continue;
  }
  if (/Python Character Mapping Codec/.test(text.slice(0, 400))) {
    stats.skipped.generated_codec++;
    continue;
  }
  if (text.includes('\uE000'))
    throw new Error(`${src.name} contains U+E000, which train_tokenizer.mjs reserves`);
  const digest = crypto.createHash('sha256').update(text).digest('hex');
  if (seen.has(digest)) {
    stats.skipped.duplicate++;
    continue;
  }
  seen.set(digest, src.name);
  const h = crypto.createHash('sha256').update(`${SEED}:${src.name}`).digest();
  const split = h.readUInt32BE(0) % 100 < HELDOUT_PERCENT ? 'heldout' : 'train';
  const bytes = Buffer.byteLength(text);
  stats.bytes_before_cap += bytes;
  const pieces = cut(text);
  let keptBytes = 0;
  pieces.forEach((piece, i) => {
    splits[split].push({ path: pieces.length > 1 ? `${src.name}#${i}` : src.name, text: piece });
    keptBytes += Buffer.byteLength(piece);
  });
  if (keptBytes < bytes) stats.capped_files.push({ name: src.name, bytes, kept_bytes: keptBytes });
  stats.files[split]++;
  stats.bytes[split] += keptBytes;
  const o = (origins[src.origin] ??= { files: 0, bytes: 0, heldout_files: 0 });
  o.files++;
  o.bytes += keptBytes;
  if (split === 'heldout') o.heldout_files++;
}

const corpusHash = crypto.createHash('sha256');
for (const split of ['train', 'heldout']) {
  const body = splits[split].map((d) => JSON.stringify(d) + '\n').join('');
  corpusHash.update(body);
  fs.writeFileSync(path.join(out, `${split}.jsonl`), body);
}
const manifest = {
  sources: manifestSources,
  by_origin: origins,
  seed: SEED,
  heldout_percent: HELDOUT_PERCENT,
  piece_bytes: PIECE_BYTES,
  max_file_bytes: MAX_FILE_BYTES,
  line_endings: 'CRLF normalised to LF',
  dedup: 'SHA-256 of the normalised text; first path in sorted order kept',
  ...stats,
  documents: { train: splits.train.length, heldout: splits.heldout.length },
  corpus_sha256: corpusHash.digest('hex'),
};
fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
console.log(
  `corpus: ${stats.files.train} train + ${stats.files.heldout} held-out files, ` +
    `${(stats.bytes.train / 1e6).toFixed(2)} + ${(stats.bytes.heldout / 1e6).toFixed(2)} MB, ` +
    `${stats.skipped.duplicate} duplicates, ${stats.capped_files.length} capped, sha256 ${manifest.corpus_sha256.slice(0, 12)}`,
);
