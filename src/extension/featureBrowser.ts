/**
 * The Feature Browser: a webview panel in the editor area that lists and
 * searches the loaded SAE's features and shows one feature's dashboard
 * (src/webview/featureBrowser/main.ts draws it). The host answers the
 * webview's requests from the engine process, opens a context's source
 * document at its span, and hands off to the heat map and the cluster map.
 * One panel at a time; it comes back after a window reload through its
 * serializer, and the webview restores what it showed from its own state.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { BrowserToHost, HostToBrowser, browserToHost } from '../webview/featureProtocol';
import { isAnalysable } from './analyses';
import { FeatureDatabaseWatch } from './featureBrowserShared';
import { resolveContextSource } from './featureBrowserSources';
import { EngineState } from './engineState';
import { WebviewPanelHost } from './webviewPanelHost';

const FEATURE_BROWSER_VIEW = 'loupe.featureBrowser';
const TITLE = 'Feature Browser';

/** What the Cluster Map offers the browser: show a feature on it. */
export interface MapTarget {
  show(focus: { feature: number | null; cluster: number | null }, preserveFocus: boolean): void;
  /** The map panel's column, while it is open. */
  readonly column: vscode.ViewColumn | undefined;
}

export class FeatureBrowser implements vscode.Disposable {
  private readonly host: WebviewPanelHost<HostToBrowser, BrowserToHost>;
  /** A feature to show once the webview is ready. */
  private pendingSelect: number | null = null;
  /** The text editor the user last worked in: where heat maps and contexts go. */
  private lastEditor: vscode.TextEditor | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];
  map: MapTarget | null = null;

  constructor(
    extensionUri: vscode.Uri,
    private readonly engine: EngineState,
    private readonly database: FeatureDatabaseWatch,
    log: vscode.LogOutputChannel,
  ) {
    this.host = new WebviewPanelHost(
      extensionUri,
      log,
      {
        viewType: FEATURE_BROWSER_VIEW,
        title: TITLE,
        entry: 'featureBrowser',
        parse: (raw) => browserToHost.parse(raw),
        logName: 'feature browser',
      },
      { receive: (message) => this.receive(message) },
    );
    this.lastEditor = analysableEditor(vscode.window.activeTextEditor);
    this.subscriptions.push(
      vscode.window.onDidChangeActiveTextEditor((e) => {
        this.lastEditor = analysableEditor(e) ?? this.lastEditor;
      }),
      database.onDidChange((state) => this.post({ type: 'database', state })),
    );
  }

  /** Opens (or reveals) the panel; with a feature, shows its dashboard. */
  show(feature: number | null = null, preserveFocus = false): void {
    if (feature !== null) this.pendingSelect = feature;
    // Beside what the user looks at (a file, the map), so that the heat map and the map stay in view.
    const besides = vscode.window.activeTextEditor !== undefined || this.map?.column !== undefined;
    this.host.show(besides ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active, preserveFocus);
    this.flushSelect();
  }

  /** The panel's column, while it is open. */
  get column(): vscode.ViewColumn | undefined {
    return this.host.column;
  }

  dispose(): void {
    this.host.dispose();
    for (const d of this.subscriptions) d.dispose();
  }

  /**
   * Sends the feature to show, if the webview is there to take it. A hidden
   * webview is unloaded and loads again when revealed (and says `ready`), so
   * until the panel is visible the feature waits for that.
   */
  private flushSelect(): void {
    if (this.host.ready && this.host.panel?.visible && this.pendingSelect !== null) {
      this.post({ type: 'select', feature: this.pendingSelect });
      this.pendingSelect = null;
    }
  }

  private async receive(message: BrowserToHost): Promise<void> {
    switch (message.type) {
      case 'ready':
        this.post({ type: 'database', state: this.database.state });
        this.flushSelect();
        // The database may have been built since the engine last said; ask again.
        void this.database.refresh();
        return;
      case 'list':
        try {
          const r = await this.engine.client.request('featureList', {
            query: message.query,
            sort: message.sort,
            offset: message.offset,
            limit: message.limit,
            includeDead: true,
          });
          this.post({ type: 'list', id: message.id, ...r });
        } catch (err) {
          this.post({ type: 'failed', id: message.id, message: (err as Error).message });
        }
        return;
      case 'dashboard':
        try {
          const r = await this.engine.client.request('featureDashboard', { feature: message.feature });
          this.post({ type: 'dashboard', id: message.id, ...r });
        } catch (err) {
          this.post({ type: 'failed', id: message.id, message: (err as Error).message });
        }
        return;
      case 'showing':
        if (this.host.panel) {
          this.host.panel.title =
            message.feature === null
              ? TITLE
              : `#${message.feature}${message.label ? ` ${message.label}` : ''}`;
        }
        return;
      case 'openContext':
        return this.openContext(message.source, message.span, message.text);
      case 'showHeatMap':
        return this.showHeatMap(message.feature);
      case 'showInClusterMap':
        this.map?.show({ feature: message.feature, cluster: message.cluster }, false);
        return;
      case 'run':
        try {
          await vscode.commands.executeCommand(message.command);
        } catch (err) {
          this.notice(`Could not run ${message.command}: ${(err as Error).message}`, 'warning');
        }
        return;
    }
  }

  /** The heat map over the file last worked in, shown beside the panel, the caret on it so Alt+F8 works. */
  private async showHeatMap(feature: number): Promise<void> {
    const editor = this.lastEditor;
    if (!editor || editor.document.isClosed) {
      this.notice('Open a file in an editor first: the heat map is drawn over its tokens.', 'info');
      return;
    }
    const visible = vscode.window.visibleTextEditors.find((e) => e.document === editor.document);
    const shown = await vscode.window.showTextDocument(editor.document, {
      viewColumn: visible?.viewColumn ?? this.besidePanel(),
      preserveFocus: false,
    });
    this.lastEditor = shown;
    await vscode.commands.executeCommand('loupe.showHeatMap', feature);
  }

  /** Opens a context's source at the focus token, or says where the context came from. */
  private async openContext(source: string, span: number[], text: string): Promise<void> {
    const state = this.database.state;
    if (state.kind !== 'ready') return;
    const { corpus, dir } = state.info;
    const workspace = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
    const bases = [...workspace, path.dirname(dir) /* the SAE folder */, path.dirname(path.dirname(dir))];
    const where = resolveContextSource(corpus, source, bases, [...workspace, dir]);
    if (where.kind === 'record') {
      this.notice(
        `From line ${where.line} of ${where.name}${where.file ? '' : ', which is not on this machine'}: a JSONL record of the corpus, so there is no file to open.`,
        'info',
      );
      return;
    }
    if (where.kind === 'outside') {
      this.notice(
        `From ${where.file}, outside the workspace and the feature database's folder: Loupe opens a context's file only from there. Open that folder as the workspace to follow it.`,
        'info',
      );
      return;
    }
    if (where.kind === 'missing') {
      this.notice(
        `From ${source} in the corpus ${corpus}, which is not in the workspace or beside the SAE on this machine.`,
        'info',
      );
      return;
    }
    try {
      const document = await vscode.workspace.openTextDocument(vscode.Uri.file(where.file));
      const end = Math.min(span[1], document.getText().length);
      const range = new vscode.Range(document.positionAt(Math.min(span[0], end)), document.positionAt(end));
      const visible = vscode.window.visibleTextEditors.find((e) => e.document === document);
      const editor = await vscode.window.showTextDocument(document, {
        viewColumn: visible?.viewColumn ?? this.besidePanel(),
        selection: range,
      });
      editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
      if (document.getText(range) !== text) {
        this.notice(
          `${path.basename(where.file)} has changed since the dashboards were built: the context may have moved.`,
          'warning',
        );
      }
    } catch (err) {
      this.notice(`Could not open ${where.file}: ${(err as Error).message}`, 'warning');
    }
  }

  /** A column for documents opened from the panel: the editor's own when one is open, else beside the panel. */
  private besidePanel(): vscode.ViewColumn {
    const panelColumn = this.host.column;
    const other = vscode.window.visibleTextEditors.find((e) => e.viewColumn !== panelColumn);
    return other?.viewColumn ?? vscode.ViewColumn.Beside;
  }

  private notice(message: string, level: 'info' | 'warning'): void {
    this.post({ type: 'notice', message, level });
  }

  private post(message: HostToBrowser): void {
    this.host.post(message);
  }
}

function analysableEditor(editor: vscode.TextEditor | undefined): vscode.TextEditor | undefined {
  return editor && isAnalysable(editor.document) ? editor : undefined;
}
