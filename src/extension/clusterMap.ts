/**
 * The Cluster Map: a webview panel with the loaded SAE's features laid out
 * in 2-D (the feature database's map), coloured by cluster, beside the list
 * of clusters (src/webview/clusterMap/main.ts draws it). A click on a point
 * opens that feature's dashboard in the Feature Browser. One panel at a time;
 * it comes back after a window reload through its serializer.
 */
import * as vscode from 'vscode';
import { HostToMap, MapToHost, mapToHost } from '../webview/featureProtocol';
import { EngineState } from './engineState';
import { FeatureDatabaseWatch } from './featureBrowserShared';
import { MapTarget } from './featureBrowser';
import { WebviewPanelHost } from './webviewPanelHost';

const CLUSTER_MAP_VIEW = 'loupe.clusterMap';
const TITLE = 'Cluster Map';

/** What the map offers back: show a feature's dashboard. */
export interface DashboardTarget {
  show(feature: number, preserveFocus: boolean): void;
  /** The browser panel's column, which the map keeps out of so that both show at once. */
  readonly column: vscode.ViewColumn | undefined;
}

export class ClusterMap implements MapTarget, vscode.Disposable {
  private readonly host: WebviewPanelHost<HostToMap, MapToHost>;
  private pendingFocus: { feature: number | null; cluster: number | null } | null = null;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    extensionUri: vscode.Uri,
    private readonly engine: EngineState,
    private readonly database: FeatureDatabaseWatch,
    private readonly dashboards: DashboardTarget,
    log: vscode.LogOutputChannel,
  ) {
    this.host = new WebviewPanelHost(
      extensionUri,
      log,
      {
        viewType: CLUSTER_MAP_VIEW,
        title: TITLE,
        entry: 'clusterMap',
        parse: (raw) => mapToHost.parse(raw),
        logName: 'cluster map',
      },
      { receive: (message) => this.receive(message) },
    );
    this.subscriptions.push(database.onDidChange(() => void this.sendAll()));
  }

  /** Opens (or reveals) the panel; `focus` highlights a feature and selects its cluster. */
  show(focus: { feature: number | null; cluster: number | null } | null = null, preserveFocus = false): void {
    if (focus) this.pendingFocus = focus;
    this.host.show(this.newColumn(), preserveFocus);
    this.flushFocus();
  }

  /**
   * Where a new map goes: over a text editor outside the browser's column (the
   * map is for looking, not editing, and the dashboards it opens stay in
   * view), else next to the browser, else beside the active editor.
   */
  private newColumn(): vscode.ViewColumn {
    const browser = this.dashboards.column;
    const editor = vscode.window.visibleTextEditors.find((e) => e.viewColumn && e.viewColumn !== browser);
    if (editor?.viewColumn) return editor.viewColumn;
    if (browser !== undefined) {
      const active = vscode.window.tabGroups.activeTabGroup.viewColumn;
      return active === browser ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active;
    }
    return vscode.window.activeTextEditor ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active;
  }

  /** The map panel's column, while it is open. */
  get column(): vscode.ViewColumn | undefined {
    return this.host.column;
  }

  dispose(): void {
    this.host.dispose();
    for (const d of this.subscriptions) d.dispose();
  }

  private receive(message: MapToHost): void {
    switch (message.type) {
      case 'ready':
        void this.sendAll();
        void this.database.refresh();
        return;
      case 'openFeature':
        // The map keeps the focus, so that the next point is one click away.
        this.dashboards.show(message.feature, true);
        return;
      case 'run':
        this.host.runCommand(message.command);
        return;
    }
  }

  /** The database's state, then (when there is one) the map, then any focus asked for meanwhile. */
  private async sendAll(): Promise<void> {
    if (!this.host.ready) return;
    const state = this.database.state;
    this.post({ type: 'database', state });
    if (state.kind === 'ready') {
      try {
        const map = await this.engine.client.request('clusterMap', {});
        this.post({ type: 'map', ...map });
      } catch (err) {
        this.post({ type: 'failed', message: (err as Error).message });
      }
    }
    this.flushFocus();
  }

  /** Sends the focus asked for once the webview can take it (see FeatureBrowser.flushSelect). */
  private flushFocus(): void {
    if (this.host.ready && this.host.panel?.visible && this.pendingFocus) {
      this.post({ type: 'focus', ...this.pendingFocus });
      this.pendingFocus = null;
    }
  }

  private post(message: HostToMap): void {
    this.host.post(message);
  }
}
