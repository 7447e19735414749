/**
 * What the Models & SAEs tree shows about folders on disk, read with the
 * engine's own readers (checkpoint.ts, sae/config.ts), so the tree and the
 * loader never disagree about a folder: its key configuration, or the one-line
 * problem that would stop it from loading.
 *
 * Besides the folders it is given, it finds:
 * - checkpoints in the Hugging Face hub cache (`$HF_HUB_CACHE`, else
 *   `$HF_HOME/hub`, else `~/.cache/huggingface/hub`), laid out as
 *   `models--ORG--NAME/snapshots/REVISION/` with `config.json`; snapshots with
 *   only pickled weights are listed too, marked, because Loupe refuses them;
 * - SAE folders (SAELens's `cfg.json` + `sae_weights.safetensors`) directly
 *   inside a model folder or its `saes/` folder, and up to three levels deep
 *   in a hub snapshot (SAELens releases keep one SAE per hook in subfolders,
 *   Gemma Scope one per `layer_N/width_…/average_l0_…`); the other published
 *   dictionaries too (Gemma Scope's `params.npz`, sparsify hook points,
 *   circuit-tracer transcoder sets and CLTs: see dictionaries/describe.ts).
 *
 * Only headers and JSON are read: describing a folder costs milliseconds
 * whatever the size of its weights.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openCheckpoint } from '../checkpoint';
import { errorMessage } from '../errors';
import { describeArchitecture } from '../families/describe';
import { ModelSpec } from '../families/spec';
import { FEATURE_DB_DIR } from '../features/database';
import { SaeConfig, parseSaeConfig } from '../sae/config';
import { SAE_CFG_FILE, saeWeightsFile } from '../sae/sae';
import { saeFitsModel } from '../sae/splice';
import { readTrainingCheckpoint } from '../sae/trainer';
import { readInputText } from '../inputFiles';
import { SafetensorsFile } from '../safetensors';
import { JSON_KINDS, readJsonObject } from '../untrustedJson';
import { isOtherDictionaryFolder, openForDescription, summarizeDictionary } from '../dictionaries/describe';
import { dictionaryFitsModel } from '../dictionaries/fit';
import { GEMMA_SCOPE_FILE } from '../dictionaries/gemmaScope';
import { TRANSCODER_CONFIG_FILE } from '../dictionaries/transcoderSet';
import { EngineParams, EngineResult, ModelFolder, SaeFolder } from './protocol';

const PICKLE_EXTENSIONS = ['.bin', '.pt', '.pth', '.ckpt', '.pkl'];
/** The file a feature database keeps its columns in (database.ts); its presence is enough here. */
const FEATURE_INDEX_FILE = 'index.json';
/** Subfolders of a model folder looked at for SAEs, besides the folder itself. */
const SAE_SUBFOLDER = 'saes';

/** Where huggingface_hub keeps downloaded repositories, as it decides it. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE; // the older name, still honoured
  if (env.HF_HOME) return path.join(env.HF_HOME, 'hub');
  const cache = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache');
  return path.join(cache, 'huggingface', 'hub');
}

export function describeFolders(params: EngineParams<'describeFolders'>): EngineResult<'describeFolders'> {
  const hubDir = params.hubCache ?? hubCacheDir();
  const hub = scanHubCache(hubDir);
  const specs = new Map<string, ModelSpec>();
  const describe = (dir: string, hubRef: { repo: string; revision: string } | null): ModelFolder => {
    const { folder, spec } = readModelFolder(dir, hubRef);
    if (spec) specs.set(folder.dir, spec);
    return folder;
  };
  const models = unique(params.models).map((dir) => describe(dir, null));
  const hubModels = hub.models.map((m) => describe(m.dir, { repo: m.repo, revision: m.revision }));
  // SAEs asked for first, then those found inside model folders and in the hub cache.
  const saeDirs = new Map<string, string | null>();
  for (const dir of unique(params.saes)) saeDirs.set(dir, null);
  for (const m of models) {
    for (const dir of findSaes(m.dir, 1, [SAE_SUBFOLDER])) if (!saeDirs.has(dir)) saeDirs.set(dir, m.dir);
  }
  for (const s of hub.saes) if (!saeDirs.has(s.dir)) saeDirs.set(s.dir, s.repo);
  const saes = [...saeDirs].map(([dir, foundIn]) => describeSaeFolder(dir, foundIn, specs));
  return {
    models,
    saes,
    hub: { dir: hubDir, exists: hub.exists, models: hubModels },
  };
}

/** The checkpoint's configuration (and spec), or the problem that keeps Loupe from opening it. */
export function readModelFolder(
  dirIn: string,
  hub: { repo: string; revision: string } | null,
): { folder: ModelFolder; spec: ModelSpec | null } {
  const dir = path.resolve(dirIn);
  const base = { dir, name: hub ? hub.repo : path.basename(dir), hub, pickleOnly: false };
  try {
    const ckpt = openCheckpoint(dir);
    const s = ckpt.spec;
    const hasTokenizer = fs.existsSync(path.join(ckpt.dir, 'tokenizer.json'));
    const folder: ModelFolder = {
      ...base,
      config: {
        modelType: s.modelType,
        nLayers: s.nLayers,
        dModel: s.dModel,
        nHeads: s.nHeads,
        dMlp: s.dMlp,
        nCtx: s.nCtx,
        dVocab: s.dVocab,
        weightsBytes: ckpt.weights.files.reduce((a, f) => a + fileSize(f.file), 0),
        architecture: describeArchitecture(s),
      },
      problem: hasTokenizer ? null : `${dir}: no tokenizer.json, so Loupe cannot read text with this model`,
    };
    return { folder, spec: s };
  } catch (err) {
    return {
      folder: { ...base, config: null, problem: errorMessage(err), pickleOnly: onlyPickles(dir) },
      spec: null,
    };
  }
}

/** The SAE's configuration, its feature database and training checkpoint, and which models it fits. */
export function describeSaeFolder(
  dirIn: string,
  foundIn: string | null,
  models: ReadonlyMap<string, ModelSpec>,
): SaeFolder {
  const dir = path.resolve(dirIn);
  let checkpoint: SaeFolder['checkpoint'] = null;
  let problem: string | null = null;
  try {
    const c = readTrainingCheckpoint(dir);
    if (c) checkpoint = { step: c.step, steps: c.steps, hook: c.hook, corpus: c.corpus };
  } catch (err) {
    problem = errorMessage(err);
  }
  const base = { dir, name: path.basename(dir), foundIn, checkpoint };
  const cfgFile = path.join(dir, SAE_CFG_FILE);
  if (!fs.existsSync(cfgFile) && checkpoint) {
    // A training run that was stopped: nothing to load yet, but it can be resumed.
    return { ...base, config: null, fits: [], problem };
  }
  if (isOtherDictionaryFolder(dir)) return describeOtherDictionary(dir, base, models);
  let config: SaeConfig;
  try {
    config = parseSaeConfig(readJsonObject(cfgFile, JSON_KINDS.saeConfig), cfgFile);
    const weights = SafetensorsFile.open(saeWeightsFile(dir));
    const wEnc = weights.tensors.get('W_enc')?.shape;
    if (wEnc && (wEnc[0] !== config.dIn || wEnc[1] !== config.dSae)) {
      throw new Error(
        `${weights.file}: W_enc is [${wEnc.join(', ')}] but cfg.json says d_in ${config.dIn}, d_sae ${config.dSae}`,
      );
    }
  } catch (err) {
    return { ...base, config: null, fits: [], problem: problem ?? errorMessage(err) };
  }
  const trainedBy = config.metadata.trained_by;
  const tokens = config.metadata.training_tokens;
  return {
    ...base,
    config: {
      format: 'saelens',
      architecture: config.architecture,
      hook: config.hookName,
      outputHook: null,
      layers: 1,
      dIn: config.dIn,
      dSae: config.dSae,
      k: config.k,
      l0: config.k,
      modelName: config.modelName,
      contextSize: count(config.contextSize),
      trainedByLoupe: trainedBy === 'loupe',
      trainingTokens: count(tokens),
      hasFeatureDatabase: fs.existsSync(path.join(dir, FEATURE_DB_DIR, FEATURE_INDEX_FILE)),
    },
    fits: [...models].filter(([, spec]) => saeFitsModel(spec, config)).map(([m]) => m),
    problem,
  };
}

/** A Gemma Scope, sparsify, SAELens-transcoder or circuit-tracer folder, described from its headers. */
function describeOtherDictionary(
  dir: string,
  base: Pick<SaeFolder, 'dir' | 'name' | 'foundIn' | 'checkpoint'>,
  models: ReadonlyMap<string, ModelSpec>,
): SaeFolder {
  try {
    const dict = openForDescription(dir);
    const s = summarizeDictionary(dict);
    return {
      ...base,
      config: {
        format: s.format,
        architecture: s.architecture,
        hook: s.hook,
        outputHook: s.outputHook,
        layers: s.layers,
        dIn: s.dIn,
        dSae: s.width,
        k: s.k,
        l0: s.l0,
        modelName: null,
        contextSize: null,
        trainedByLoupe: false,
        trainingTokens: null,
        hasFeatureDatabase: fs.existsSync(path.join(dir, FEATURE_DB_DIR, FEATURE_INDEX_FILE)),
      },
      fits: [...models].filter(([, spec]) => dictionaryFitsModel(spec, dict)).map(([m]) => m),
      problem: null,
    };
  } catch (err) {
    return { ...base, config: null, fits: [], problem: errorMessage(err) };
  }
}

/** A folder the tree lists as a dictionary: SAELens's cfg.json, Gemma Scope's params.npz, circuit-tracer's config.yaml. */
function isDictionaryFolder(d: string): boolean {
  return [SAE_CFG_FILE, GEMMA_SCOPE_FILE, TRANSCODER_CONFIG_FILE].some((f) => fs.existsSync(path.join(d, f)));
}

interface HubScan {
  readonly exists: boolean;
  readonly models: { dir: string; repo: string; revision: string }[];
  readonly saes: { dir: string; repo: string }[];
}

/**
 * The snapshots in a hub cache with a config.json (checkpoints) and the SAE
 * folders inside snapshots. Where `refs/main` names a snapshot only that one
 * is listed, as `from_pretrained` would load it; otherwise every snapshot.
 */
export function scanHubCache(dir: string): HubScan {
  const models: HubScan['models'] = [];
  const saes: HubScan['saes'] = [];
  if (!isDir(dir)) return { exists: false, models, saes };
  for (const entry of listDir(dir).sort()) {
    const m = /^models--(.+)$/.exec(entry);
    if (!m) continue; // datasets--, spaces--, .locks, version.txt
    const repo = m[1].split('--').join('/');
    const snapshots = path.join(dir, entry, 'snapshots');
    const main = readRef(path.join(dir, entry, 'refs', 'main'));
    const revisions = listDir(snapshots)
      .filter((r) => isDir(path.join(snapshots, r)))
      .sort();
    const chosen = main && revisions.includes(main) ? [main] : revisions;
    for (const revision of chosen) {
      const snap = path.join(snapshots, revision);
      if (fs.existsSync(path.join(snap, 'config.json'))) models.push({ dir: snap, repo, revision });
      for (const sae of findSaes(snap, 3, [])) {
        const sub = path.relative(snap, sae).split(path.sep).join('/');
        saes.push({ dir: sae, repo: sub ? `${repo}/${sub}` : repo });
      }
    }
  }
  return { exists: true, models, saes };
}

/** SAE folders at `dir`, in its subfolders down to `depth`, and in the named subfolders' children. */
function findSaes(dir: string, depth: number, extra: readonly string[]): string[] {
  const found: string[] = [];
  const walk = (d: string, left: number): void => {
    if (isDictionaryFolder(d)) found.push(d);
    if (left === 0) return;
    for (const e of listDir(d).sort()) {
      const p = path.join(d, e);
      if (!e.startsWith('.') && isDir(p)) walk(p, left - 1);
    }
  };
  walk(dir, depth);
  for (const name of extra) {
    const sub = path.join(dir, name);
    for (const e of listDir(sub).sort()) {
      const p = path.join(sub, e);
      if (isDir(p) && isDictionaryFolder(p) && !found.includes(p)) found.push(p);
    }
  }
  return found;
}

/** No safetensors weights, but pickled ones: a folder Loupe refuses on purpose. */
function onlyPickles(dir: string): boolean {
  const entries = listDir(dir);
  return (
    !entries.some((e) => e.endsWith('.safetensors')) &&
    entries.some((e) => PICKLE_EXTENSIONS.includes(path.extname(e)))
  );
}

/** A count for the protocol (an integer ≥ 0), or null for anything else a cfg.json may hold. */
function count(v: unknown): number | null {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null;
}

/** A hub cache's refs/<branch> file: a commit hash, so anything larger, or a pipe, is not one. */
function readRef(file: string): string | null {
  try {
    return readInputText(file, 'ref', { maxBytes: 1024 }).trim() || null;
  } catch {
    return null;
  }
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

function unique(dirs: readonly string[]): string[] {
  return [...new Set(dirs.map((d) => path.resolve(d)))];
}
