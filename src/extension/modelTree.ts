/**
 * The Models & SAEs tree in Loupe's sidebar: the bundled model and SAE, the
 * folders the settings name, folders the user added (`loupe.modelFolders`,
 * `loupe.saeFolders`, which the tree's + buttons fill and its Remove empties),
 * checkpoints in the Hugging Face hub cache, and SAEs found inside model
 * folders (directly or under `saes/`), in hub snapshots, or trained by Loupe
 * (a training run adds its output folder to the list). Each shows its key
 * configuration and marks the loaded one; Load, Open Config, Copy Path and
 * Remove act on it.
 *
 * What a folder holds is asked of the engine process (`describeFolders`), so
 * the tree reads folders with the same code that loads them and shows the
 * same one-line problems.
 *
 * Loading a model from here keeps the SAE when it fits the model; otherwise
 * it switches to a listed SAE that does, or to none, rather than loading a
 * pair that cannot work together and reporting an error.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EngineResult, ModelFolder, SaeFolder } from '../engine/host/protocol';
import { NO_SAE, addFolder, affectsFolders, readConfig, removeFolder, setPath } from './config';
import { EngineState, EngineStatus } from './engineState';
import { escapeMarkdown, inlineCode } from './markdownText';

export const MODELS_VIEW = 'loupe.models';
/**
 * The URI scheme of tree items that file decorations grey out: checkpoints
 * Loupe refuses, and SAEs that do not fit the loaded model.
 */
const DIMMED_SCHEME = 'loupe-dimmed';

type Described = EngineResult<'describeFolders'>;

/** Where a folder in the list comes from; a folder can be several at once. */
interface Origins {
  readonly bundled: boolean;
  readonly settings: boolean;
  readonly added: boolean;
}

export type ModelTreeNode =
  | { readonly kind: 'group'; readonly group: 'models' | 'saes' | 'hub' }
  | { readonly kind: 'model'; readonly folder: ModelFolder; readonly origins: Origins }
  | { readonly kind: 'sae'; readonly folder: SaeFolder; readonly origins: Origins }
  | { readonly kind: 'detail'; readonly id: string; readonly label: string; readonly value: string }
  | { readonly kind: 'note'; readonly id: string; readonly text: string; readonly tooltip: string };

/** The folder a command was invoked on from the tree (VS Code passes the node), if any. */
export function nodeFolder(arg: unknown): { kind: 'model' | 'sae'; dir: string } | null {
  if (typeof arg !== 'object' || arg === null) return null;
  const node = arg as Partial<ModelTreeNode>;
  if ((node.kind === 'model' || node.kind === 'sae') && node.folder)
    return { kind: node.kind, dir: node.folder.dir };
  return null;
}

export class ModelTree
  implements vscode.TreeDataProvider<ModelTreeNode>, vscode.FileDecorationProvider, vscode.Disposable
{
  private described: Described | null = null;
  private problem: string | null = null;
  private describing: Promise<void> | null = null;
  private again = false;
  private readonly treeChanged = new vscode.EventEmitter<ModelTreeNode | undefined>();
  readonly onDidChangeTreeData = this.treeChanged.event;
  private readonly decorationsChanged = new vscode.EventEmitter<vscode.Uri[] | undefined>();
  readonly onDidChangeFileDecorations = this.decorationsChanged.event;
  readonly view: vscode.TreeView<ModelTreeNode>;
  private readonly subscriptions: vscode.Disposable[];

  constructor(
    private readonly engine: EngineState,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.view = vscode.window.createTreeView(MODELS_VIEW, { treeDataProvider: this, showCollapseAll: true });
    this.subscriptions = [
      this.view,
      vscode.window.registerFileDecorationProvider(this),
      vscode.workspace.onDidChangeConfiguration((e) => affectsFolders(e) && void this.refresh()),
      engine.onDidChange((s) => this.onEngineChange(s)),
    ];
    void this.refresh();
  }

  dispose(): void {
    for (const d of this.subscriptions) d.dispose();
    this.treeChanged.dispose();
    this.decorationsChanged.dispose();
  }

  /** Reads every listed folder again (a refresh asked for while one runs runs once more after it). */
  refresh(): Promise<void> {
    if (this.describing) {
      this.again = true;
      return this.describing;
    }
    this.describing = (async () => {
      do {
        this.again = false;
        await this.describe();
      } while (this.again);
    })().finally(() => (this.describing = null));
    return this.describing;
  }

  /** The folder's description from the last refresh, if it was listed. */
  sae(dir: string): SaeFolder | undefined {
    return this.described?.saes.find((s) => s.dir === path.resolve(dir));
  }

  // ---- loading from the tree ----

  /** Loads a model, keeping the SAE if it fits, else a listed SAE that does, else none. */
  async loadModel(dir: string): Promise<void> {
    const target = path.resolve(dir);
    await this.whenDescribed();
    const s = this.engine.status;
    const current = s.kind === 'ready' ? (s.sae?.dir ?? null) : this.configuredSae();
    const fits = (sae: SaeFolder) => sae.config !== null && sae.problem === null && sae.fits.includes(target);
    const saes = this.described?.saes ?? [];
    let sae = current;
    if (current === null || !saes.some((x) => x.dir === current && fits(x))) {
      sae = saes.find(fits)?.dir ?? null;
    }
    await this.engine.batchSettings(async () => {
      await setPath('modelPath', target === this.engine.bundledModelDir ? '' : target);
      if (sae !== current) await this.setSae(sae);
    });
    const name = path.basename(target);
    const status = await this.loading(`Loading ${name}`);
    if (status.kind === 'ready' && sae !== current) {
      const why =
        sae === null
          ? `without an SAE: none of the listed SAEs fits it`
          : `with the SAE ${path.basename(sae)}, which fits it`;
      this.log.info(`loaded ${name} from the Models & SAEs tree ${why}`);
      void vscode.window.showInformationMessage(`Loupe: loaded ${name} ${why}.`);
    }
  }

  /** Loads an SAE; if it does not fit the loaded model but fits a listed one, offers to load both. */
  async loadSae(dir: string): Promise<void> {
    const target = path.resolve(dir);
    await this.whenDescribed();
    const folder = this.sae(target);
    const s = this.engine.status;
    const model = s.kind === 'ready' ? s.model.dir : null;
    if (folder && model && !folder.fits.includes(model) && folder.fits.length > 0) {
      const other = folder.fits[0];
      const both = `Load ${this.modelName(other)} Too`;
      const pick = await vscode.window.showWarningMessage(
        `${folder.name} reads ${folder.config?.hook ?? 'a hook'} with d_in ${folder.config?.dIn ?? '?'}, which ${path.basename(model)} does not have; ${this.modelName(other)} does.`,
        { modal: true },
        both,
      );
      if (pick !== both) return;
      await this.engine.batchSettings(async () => {
        await setPath('modelPath', other === this.engine.bundledModelDir ? '' : other);
        await this.setSae(target);
      });
    } else {
      await this.setSae(target);
    }
    await this.loading(`Loading ${path.basename(target)}`);
  }

  private async setSae(dir: string | null): Promise<void> {
    await setPath('saePath', dir === null ? NO_SAE : dir === this.engine.bundledSaeDir ? '' : dir);
  }

  private configuredSae(): string | null {
    const c = readConfig();
    return c.saePath === null ? null : c.saePath || this.engine.bundledSaeDir;
  }

  /** Asks for a load once the settings settle and shows it on the tree until it ends. */
  private loading(title: string): Thenable<EngineStatus> {
    this.engine.loadSoon();
    return vscode.window.withProgress({ location: { viewId: MODELS_VIEW }, title }, () =>
      this.engine.settled(),
    );
  }

  private modelName(dir: string): string {
    const m = [...(this.described?.models ?? []), ...(this.described?.hub.models ?? [])].find(
      (x) => x.dir === dir,
    );
    return m?.name ?? path.basename(dir);
  }

  private async whenDescribed(): Promise<void> {
    if (!this.described) await this.refresh();
  }

  // ---- the tree ----

  getTreeItem(node: ModelTreeNode): vscode.TreeItem {
    switch (node.kind) {
      case 'group':
        return this.groupItem(node.group);
      case 'model':
        return this.modelItem(node.folder, node.origins);
      case 'sae':
        return this.saeItem(node.folder, node.origins);
      case 'detail': {
        const item = new vscode.TreeItem(node.label);
        item.id = node.id;
        item.description = node.value;
        item.tooltip = `${node.label}: ${node.value}`;
        return item;
      }
      case 'note': {
        const item = new vscode.TreeItem(node.text);
        item.id = node.id;
        item.tooltip = node.tooltip;
        item.iconPath = new vscode.ThemeIcon('info');
        return item;
      }
    }
  }

  async getChildren(node?: ModelTreeNode): Promise<ModelTreeNode[]> {
    if (!node)
      return [
        { kind: 'group', group: 'models' },
        { kind: 'group', group: 'saes' },
      ];
    if (!this.described) await this.refresh();
    const d = this.described;
    if (!d) {
      const text = `Could not read the folders: ${this.problem ?? 'the engine did not answer'}`;
      return [{ kind: 'note', id: 'note:error', text, tooltip: text }];
    }
    const c = readConfig();
    const origins = (
      dir: string,
      bundled: string,
      setting: string | null,
      added: readonly string[],
    ): Origins => ({
      bundled: dir === bundled,
      settings: setting !== null && setting !== '' && path.resolve(setting) === dir,
      added: added.includes(dir),
    });
    switch (node.kind) {
      case 'group':
        if (node.group === 'models') {
          const listed: ModelTreeNode[] = d.models.map((folder) => ({
            kind: 'model',
            folder,
            origins: origins(folder.dir, this.engine.bundledModelDir, c.modelPath, c.modelFolders),
          }));
          return d.hub.exists ? [...listed, { kind: 'group', group: 'hub' }] : listed;
        }
        if (node.group === 'hub') {
          const listed = new Set(d.models.map((m) => m.dir));
          const hub = d.hub.models.filter((m) => !listed.has(m.dir));
          if (hub.length === 0) {
            return [
              { kind: 'note', id: 'note:hub-empty', text: 'No checkpoints in the cache', tooltip: d.hub.dir },
            ];
          }
          return hub.map((folder) => ({ kind: 'model', folder, origins: origins(folder.dir, '', null, []) }));
        }
        return d.saes.map((folder) => ({
          kind: 'sae',
          folder,
          origins: origins(folder.dir, this.engine.bundledSaeDir, c.saePath, c.saeFolders),
        }));
      case 'model':
        return modelDetails(node.folder);
      case 'sae':
        return saeDetails(node.folder, this.loadedModel());
      default:
        return [];
    }
  }

  getParent(node: ModelTreeNode): ModelTreeNode | undefined {
    if (node.kind === 'model') return { kind: 'group', group: node.folder.hub ? 'hub' : 'models' };
    if (node.kind === 'sae') return { kind: 'group', group: 'saes' };
    if (node.kind === 'group' && node.group === 'hub') return { kind: 'group', group: 'models' };
    return undefined;
  }

  provideFileDecoration(uri: vscode.Uri): vscode.FileDecoration | undefined {
    if (uri.scheme !== DIMMED_SCHEME) return undefined;
    return { color: new vscode.ThemeColor('disabledForeground') };
  }

  private groupItem(group: 'models' | 'saes' | 'hub'): vscode.TreeItem {
    const labels = { models: 'Models', saes: 'SAEs', hub: 'Hugging Face cache' };
    const item = new vscode.TreeItem(labels[group], vscode.TreeItemCollapsibleState.Expanded);
    item.id = `group:${group}`;
    item.contextValue = `loupe.group.${group}`;
    if (group === 'hub' && this.described) {
      const dir = this.described.hub.dir;
      item.description = tildePath(dir);
      item.tooltip = new vscode.MarkdownString(
        `Checkpoints downloaded with \`huggingface_hub\`, found in ${inlineCode(dir)} (\`$HF_HUB_CACHE\`, else \`$HF_HOME/hub\`, else \`~/.cache/huggingface/hub\`).`,
      );
      item.iconPath = new vscode.ThemeIcon('cloud-download');
    }
    return item;
  }

  private modelItem(folder: ModelFolder, origins: Origins): vscode.TreeItem {
    const loaded = this.loadedModel() === folder.dir;
    const c = folder.config;
    const item = new vscode.TreeItem(
      folder.name,
      c ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None,
    );
    item.id = `model:${folder.dir}`;
    const summary = c ? `${c.modelType} · ${c.nLayers} layers · d_model ${c.dModel}` : problemSummary(folder);
    item.description = [summary, originText(origins)].filter(Boolean).join(' · ');
    item.iconPath = icon(loaded, folder.problem !== null, folder.pickleOnly);
    if (folder.pickleOnly) item.resourceUri = vscode.Uri.file(folder.dir).with({ scheme: DIMMED_SCHEME });
    const md = new vscode.MarkdownString('', true);
    md.appendMarkdown(`**${escapeMarkdown(folder.name)}**${loaded ? ' — loaded' : ''}  \n`);
    if (c) {
      md.appendMarkdown(
        `${c.modelType}, ${c.nLayers} layers, ${c.nHeads} heads, d_model ${c.dModel}, d_mlp ${c.dMlp}, ` +
          `context ${c.nCtx}, vocabulary ${c.dVocab.toLocaleString('en-US')}, ${bytes(c.weightsBytes)} of weights  \n`,
      );
      md.appendMarkdown(`${escape(c.architecture.join(', '))}  \n`);
    }
    if (folder.hub)
      md.appendMarkdown(
        `Hugging Face cache: ${escapeMarkdown(folder.hub.repo)} @ ${folder.hub.revision.slice(0, 12)}  \n`,
      );
    md.appendText(folder.dir);
    if (folder.problem) {
      md.appendMarkdown('\n\n---\n\n');
      md.appendText(folder.problem);
    }
    item.tooltip = md;
    item.contextValue = contextValue('model', {
      loaded,
      loadable: !loaded && folder.problem === null,
      added: origins.added,
      config: c !== null || folder.pickleOnly || folder.problem !== null,
    });
    return item;
  }

  private saeItem(folder: SaeFolder, origins: Origins): vscode.TreeItem {
    const loaded = this.loadedSae() === folder.dir;
    const c = folder.config;
    const model = this.loadedModel();
    const fitsLoaded = model !== null && folder.fits.includes(model);
    const item = new vscode.TreeItem(
      folder.name,
      c || folder.checkpoint
        ? vscode.TreeItemCollapsibleState.Collapsed
        : vscode.TreeItemCollapsibleState.None,
    );
    item.id = `sae:${folder.dir}`;
    let summary: string;
    if (c) {
      // The hook first: it is what tells SAEs of one model apart.
      summary = `${hooksText(c)} · ${formatText(c)}${c.architecture}${c.k !== null ? ` k=${c.k}` : ''} · ${c.dSae.toLocaleString('en-US')} features`;
      if (c.l0 !== null && c.k === null) summary += ` · L0 ${c.l0}`;
      if (c.hasFeatureDatabase) summary += ' · dashboards';
    } else if (folder.checkpoint && !folder.problem) {
      summary = `training stopped at step ${folder.checkpoint.step} of ${folder.checkpoint.steps}`;
    } else {
      summary = folder.problem ?? 'not an SAE folder';
    }
    const where = folder.foundIn ? `in ${path.basename(folder.foundIn)}` : null;
    item.description = [summary, originText(origins) ?? where].filter(Boolean).join(' · ');
    const resumable = !c && folder.checkpoint !== null && folder.checkpoint.hook !== null;
    item.iconPath = resumable
      ? new vscode.ThemeIcon('debug-pause')
      : icon(loaded, folder.problem !== null || c === null, false);
    if (c && model !== null && !fitsLoaded) {
      item.resourceUri = vscode.Uri.file(folder.dir).with({ scheme: DIMMED_SCHEME });
    }
    const md = new vscode.MarkdownString('', true);
    md.appendMarkdown(`**${escapeMarkdown(folder.name)}**${loaded ? ' — loaded' : ''}  \n`);
    if (c) {
      md.appendMarkdown(
        `${formatText(c)}${c.architecture}${c.k !== null ? ` (k = ${c.k})` : ''} at ${inlineCode(hooksText(c))}, d_in ${c.dIn} → d_sae ${c.dSae} ` +
          `(${(c.dSae / c.dIn).toFixed(c.dSae % c.dIn === 0 ? 0 : 1)}×)` +
          (c.modelName ? `, trained on ${escapeMarkdown(c.modelName)}` : '') +
          `  \n${c.hasFeatureDatabase ? 'Has feature dashboards' : 'No feature dashboards yet'}` +
          (model ? ` · ${fitsLoaded ? 'fits the loaded model' : 'does not fit the loaded model'}` : '') +
          '  \n',
      );
    }
    if (folder.checkpoint) {
      md.appendMarkdown(
        `Training stopped at step ${folder.checkpoint.step} of ${folder.checkpoint.steps}; Resume Training continues it.  \n`,
      );
    }
    md.appendText(folder.dir);
    if (folder.problem) {
      md.appendMarkdown('\n\n---\n\n');
      md.appendText(folder.problem);
    }
    item.tooltip = md;
    item.contextValue = contextValue('sae', {
      loaded,
      loadable: !loaded && c !== null && folder.problem === null,
      added: origins.added,
      config: c !== null && hasConfigFile(c.format),
      resumable,
      dashboards: c !== null && c.format === 'saelens' && folder.problem === null && fitsLoaded,
    });
    return item;
  }

  private loadedModel(): string | null {
    const s = this.engine.status;
    return s.kind === 'ready' ? s.model.dir : null;
  }

  private loadedSae(): string | null {
    const s = this.engine.status;
    return s.kind === 'ready' ? (s.sae?.dir ?? null) : null;
  }

  private async describe(): Promise<void> {
    const c = readConfig();
    const s = this.engine.status;
    const bundledSae = this.engine.bundledSaeDir;
    const models = [
      this.engine.bundledModelDir,
      ...(c.modelPath ? [c.modelPath] : []),
      ...(s.kind === 'ready' ? [s.model.dir] : []),
      ...c.modelFolders,
    ];
    const transcoders = this.engine.bundledTranscodersDir;
    const saes = [
      bundledSae,
      ...(fs.existsSync(transcoders) ? [transcoders] : []),
      ...(c.saePath ? [c.saePath] : []),
      ...(s.kind === 'ready' && s.sae ? [s.sae.dir] : []),
      ...c.saeFolders,
    ];
    try {
      this.described = await this.engine.client.request('describeFolders', { models, saes, hubCache: null });
      this.problem = null;
    } catch (err) {
      this.problem = (err as Error).message;
      this.log.error(`Models & SAEs: ${this.problem}`);
    }
    this.treeChanged.fire(undefined);
    this.decorationsChanged.fire(undefined);
  }

  /** A newly loaded folder the tree has not read yet is read; otherwise only the marks move. */
  private onEngineChange(s: EngineStatus): void {
    if (s.kind === 'loading') return;
    const d = this.described;
    const known = (dirs: (string | undefined)[], list: { dir: string }[] | undefined) =>
      dirs.every((dir) => dir === undefined || (list ?? []).some((x) => x.dir === dir));
    if (s.kind === 'ready' && (!known([s.model.dir], d?.models) || !known([s.sae?.dir], d?.saes))) {
      void this.refresh();
    } else {
      this.treeChanged.fire(undefined);
    }
  }
}

function modelDetails(f: ModelFolder): ModelTreeNode[] {
  const c = f.config;
  if (!c) return [];
  const rows: [string, string][] = [
    ['model type', c.modelType],
    ['layers', `${c.nLayers} · ${c.nHeads} heads`],
    ['d_model', `${c.dModel} · d_mlp ${c.dMlp}`],
    ['context', `${c.nCtx.toLocaleString('en-US')} tokens`],
    ['vocabulary', c.dVocab.toLocaleString('en-US')],
    ['weights', bytes(c.weightsBytes)],
    ['architecture', c.architecture.join(', ')],
  ];
  if (f.hub) rows.push(['revision', f.hub.revision.slice(0, 12)]);
  rows.push(['folder', tildePath(f.dir)]);
  return rows.map(([label, value]) => ({ kind: 'detail', id: `detail:${f.dir}:${label}`, label, value }));
}

function saeDetails(f: SaeFolder, loadedModel: string | null): ModelTreeNode[] {
  const rows: [string, string][] = [];
  const c = f.config;
  if (c) {
    if (c.format !== 'saelens') rows.push(['format', c.format]);
    rows.push(['architecture', `${c.architecture}${c.k !== null ? ` · k ${c.k}` : ''}`]);
    rows.push([c.outputHook ? 'hooks' : 'hook', hooksText(c)]);
    if (c.layers > 1) rows.push(['layers', String(c.layers)]);
    if (c.l0 !== null) rows.push(['L0', String(c.l0)]);
    rows.push(['d_in → d_sae', `${c.dIn} → ${c.dSae.toLocaleString('en-US')}`]);
    if (c.modelName) rows.push(['model', c.modelName]);
    if (c.trainingTokens !== null)
      rows.push(['trained on', `${c.trainingTokens.toLocaleString('en-US')} tokens`]);
    rows.push(['dashboards', c.hasFeatureDatabase ? 'yes' : 'none yet']);
    if (loadedModel) rows.push(['loaded model', f.fits.includes(loadedModel) ? 'fits' : 'does not fit']);
  }
  if (f.checkpoint) {
    rows.push(['checkpoint', `step ${f.checkpoint.step} of ${f.checkpoint.steps}`]);
    if (!c && f.checkpoint.hook) rows.push(['hook', f.checkpoint.hook]);
    if (!c && f.checkpoint.corpus) rows.push(['corpus', tildePath(f.checkpoint.corpus)]);
  }
  rows.push(['folder', tildePath(f.dir)]);
  return rows.map(([label, value]) => ({ kind: 'detail', id: `detail:${f.dir}:${label}`, label, value }));
}

function icon(loaded: boolean, problem: boolean, refused: boolean): vscode.ThemeIcon {
  if (loaded) return new vscode.ThemeIcon('pass-filled', new vscode.ThemeColor('testing.iconPassed'));
  if (refused) return new vscode.ThemeIcon('circle-slash', new vscode.ThemeColor('disabledForeground'));
  if (problem)
    return new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'));
  return new vscode.ThemeIcon('circle-large-outline');
}

function problemSummary(f: ModelFolder): string {
  if (f.pickleOnly) return 'pickle weights only: refused';
  return f.problem ?? 'cannot be read';
}

function originText(o: Origins): string | null {
  return o.bundled ? 'bundled' : o.settings && !o.added ? 'from settings' : null;
}

/** Space-separated tags that package.json's `when` clauses match with `viewItem =~ /\btag\b/`. */
function contextValue(kind: 'model' | 'sae', tags: Record<string, boolean>): string {
  return [`loupe.${kind}`, ...Object.entries(tags).flatMap(([t, on]) => (on ? [t] : []))].join(' ');
}

function tildePath(p: string): string {
  const home = os.homedir();
  return home && (p === home || p.startsWith(home + path.sep)) ? `~${p.slice(home.length)}` : p;
}

function bytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(n / 1024))} KB`;
}

// ---- commands on the tree ----

export function registerModelTree(
  engine: EngineState,
  log: vscode.LogOutputChannel,
): {
  tree: ModelTree;
  disposables: vscode.Disposable[];
} {
  const tree = new ModelTree(engine, log);
  const commands: Record<string, (arg?: unknown) => unknown> = {
    'loupe.addModelFolder': () => addFromDialog(tree, 'model'),
    'loupe.addSaeFolder': () => addFromDialog(tree, 'sae'),
    'loupe.models.refresh': () => tree.refresh(),
    'loupe.models.load': (arg) => {
      const f = nodeFolder(arg);
      if (f) return f.kind === 'model' ? tree.loadModel(f.dir) : tree.loadSae(f.dir);
    },
    'loupe.models.openConfig': (arg) => {
      const f = nodeFolder(arg);
      if (!f) return;
      // A transcoder set's config is its config.yaml; Gemma Scope folders have none (the item offers no Open Config).
      const config =
        f.kind === 'model'
          ? 'config.json'
          : fs.existsSync(path.join(f.dir, 'config.yaml'))
            ? 'config.yaml'
            : 'cfg.json';
      const file = path.join(f.dir, config);
      return vscode.window.showTextDocument(vscode.Uri.file(file), { preview: true });
    },
    'loupe.models.copyPath': (arg) => {
      const f = nodeFolder(arg);
      if (f) return vscode.env.clipboard.writeText(f.dir);
    },
    'loupe.models.reveal': (arg) => {
      const f = nodeFolder(arg);
      if (f) return vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(f.dir));
    },
    'loupe.models.remove': (arg) => {
      const f = nodeFolder(arg);
      if (f) return removeFolder(f.kind === 'model' ? 'modelFolders' : 'saeFolders', f.dir);
    },
  };
  return {
    tree,
    disposables: [
      tree,
      ...Object.entries(commands).map(([id, fn]) => vscode.commands.registerCommand(id, fn)),
    ],
  };
}

/** Asks for a folder and lists it; an SAE picked as a model (or the reverse) goes where it belongs. */
async function addFromDialog(tree: ModelTree, kind: 'model' | 'sae'): Promise<void> {
  const picked = await vscode.window.showOpenDialog({
    canSelectFiles: false,
    canSelectFolders: true,
    canSelectMany: false,
    openLabel: kind === 'model' ? 'Add Model' : 'Add SAE',
    title:
      kind === 'model'
        ? 'Add a Hugging Face checkpoint folder (config.json, model.safetensors, tokenizer.json)'
        : 'Add an SAE or transcoder folder (SAELens cfg.json, Gemma Scope params.npz, a transcoder set config.yaml)',
  });
  if (!picked?.[0]) return;
  await addFolderTo(tree, picked[0].fsPath, kind);
}

export async function addFolderTo(tree: ModelTree, dirIn: string, kind: 'model' | 'sae'): Promise<void> {
  const dir = path.resolve(dirIn);
  const isModel = fs.existsSync(path.join(dir, 'config.json'));
  const isSae = ['cfg.json', 'checkpoint', 'params.npz', 'config.yaml'].some((f) =>
    fs.existsSync(path.join(dir, f)),
  );
  const as =
    kind === 'model' && !isModel && isSae ? 'sae' : kind === 'sae' && !isSae && isModel ? 'model' : kind;
  if (!isModel && !isSae) {
    void vscode.window.showErrorMessage(
      `Loupe: ${dir} is neither a checkpoint folder (config.json) nor an SAE or transcoder folder (cfg.json, params.npz, config.yaml).`,
    );
    return;
  }
  await addFolder(as === 'model' ? 'modelFolders' : 'saeFolders', dir);
  await tree.refresh();
  const node: ModelTreeNode | undefined = (
    await tree.getChildren({ kind: 'group', group: as === 'model' ? 'models' : 'saes' })
  ).find((n) => (n.kind === 'model' || n.kind === 'sae') && n.folder.dir === dir);
  if (node) await tree.view.reveal(node, { select: true, focus: false });
}

type DictionaryConfig = NonNullable<SaeFolder['config']>;

/** The hook a dictionary reads, and where it writes when that differs (layer 0's for a set). */
function hooksText(c: DictionaryConfig): string {
  const hooks = c.outputHook ? `${c.hook} → ${c.outputHook}` : c.hook;
  return c.layers > 1 ? `${hooks} (× ${c.layers} layers)` : hooks;
}

/** The format's name before the architecture, for anything but SAELens's SAEs. */
function formatText(c: DictionaryConfig): string {
  return c.format === 'saelens' ? '' : `${c.format} `;
}

/** Gemma Scope folders have no config file to open; every other format has one (cfg.json or config.yaml). */
function hasConfigFile(format: string): boolean {
  return format !== 'gemma-scope';
}
