/**
 * The host side of one of Loupe's webview panels, written once for all of
 * them: the HTML shell with its strict CSP, creating the panel (or revealing
 * the open one), bringing it back after a window reload (the serializer,
 * registered by the host itself), checking each message from the webview
 * against its schema, the `ready` handshake, commands the webview asks for,
 * and clean-up when the panel closes. A panel class keeps only what it sends
 * and how it reacts; one panel at a time per host.
 */
import * as crypto from 'node:crypto';
import * as vscode from 'vscode';

/** What sets one panel apart from the others. */
export interface WebviewPanelSpec<WebToHost> {
  readonly viewType: string;
  readonly title: string;
  /** The bundle in dist/webview: ENTRY.js and ENTRY.css. */
  readonly entry: string;
  /** Checks a message from the webview: its schema's `parse`, which throws on a malformed one. */
  readonly parse: (raw: unknown) => WebToHost;
  /** The panel's name in the log. */
  readonly logName: string;
  /**
   * A hidden webview is unloaded and says `ready` again when shown: stop
   * posting while it is hidden (for panels that keep posting as the editor moves).
   */
  readonly readyOnlyWhileVisible?: boolean;
  /** A new panel takes the place (the column) of this view's tabs restored after a reload but never shown since. */
  readonly replaceUnrevivedTabs?: boolean;
}

/** What the panel class does with its webview's messages and its closing. */
export interface WebviewPanelEvents<WebToHost> {
  /** A checked message; `ready` arrives here too, after the host has marked the webview ready. */
  receive(message: WebToHost): void | Promise<void>;
  /** The open panel was closed (by the user, or replaced by a restored one). */
  disposed?(): void;
}

export class WebviewPanelHost<HostToWeb, WebToHost extends { readonly type: string }>
  implements vscode.WebviewPanelSerializer, vscode.Disposable
{
  private current: vscode.WebviewPanel | null = null;
  /** The webview has said `ready`; before that, messages would be lost (after, a reload resends everything). */
  private webviewReady = false;
  private readonly serializer: vscode.Disposable;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
    private readonly spec: WebviewPanelSpec<WebToHost>,
    private readonly events: WebviewPanelEvents<WebToHost>,
  ) {
    this.serializer = vscode.window.registerWebviewPanelSerializer(spec.viewType, this);
  }

  /** The open panel, if any. */
  get panel(): vscode.WebviewPanel | null {
    return this.current;
  }

  /** A panel is open and its webview can take messages. */
  get ready(): boolean {
    return this.current !== null && this.webviewReady;
  }

  /** The panel's column, while it is open. */
  get column(): vscode.ViewColumn | undefined {
    return this.current?.viewColumn;
  }

  /** Reveals the open panel, or opens one in `column`. */
  show(column: vscode.ViewColumn, preserveFocus: boolean): void {
    if (this.current) {
      this.current.reveal(undefined, preserveFocus);
      return;
    }
    const replaced = this.spec.replaceUnrevivedTabs ? closeUnrevivedTabs(this.spec.viewType) : undefined;
    this.attach(
      vscode.window.createWebviewPanel(
        this.spec.viewType,
        this.spec.title,
        { viewColumn: replaced ?? column, preserveFocus },
        panelOptions(this.extensionUri),
      ),
    );
  }

  /** Sends a message, if the webview is there to take it. */
  post(message: HostToWeb): void {
    if (this.ready) void this.current?.webview.postMessage(message);
  }

  /** Runs a command a button in the webview asks for; a failure goes to the log. */
  runCommand(command: string): void {
    void Promise.resolve(vscode.commands.executeCommand(command)).catch((err: unknown) =>
      this.log.error(`${this.spec.logName}: ${command}: ${(err as Error).message}`),
    );
  }

  /** Brings the panel back after a window reload; the webview's own saved state says what it showed. */
  deserializeWebviewPanel(panel: vscode.WebviewPanel): Promise<void> {
    panel.webview.options = panelOptions(this.extensionUri);
    this.attach(panel);
    return Promise.resolve();
  }

  dispose(): void {
    this.current?.dispose();
    this.serializer.dispose();
  }

  private attach(panel: vscode.WebviewPanel): void {
    this.current?.dispose();
    this.current = panel;
    this.webviewReady = false;
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'loupe.svg');
    panel.webview.html = panelHtml(panel.webview, this.extensionUri, this.spec.entry, this.spec.title);
    const subscriptions = [panel.webview.onDidReceiveMessage((raw: unknown) => this.receive(raw))];
    if (this.spec.readyOnlyWhileVisible) {
      subscriptions.push(
        panel.onDidChangeViewState(() => {
          if (!panel.visible) this.webviewReady = false;
        }),
      );
    }
    panel.onDidDispose(() => {
      for (const d of subscriptions) d.dispose();
      if (this.current === panel) {
        this.current = null;
        this.events.disposed?.();
      }
    });
  }

  private receive(raw: unknown): void {
    let message: WebToHost;
    try {
      message = this.spec.parse(raw);
    } catch (err) {
      this.log.error(`${this.spec.logName}: ignored a malformed message: ${(err as Error).message}`);
      return;
    }
    if (message.type === 'ready') this.webviewReady = true;
    void this.events.receive(message);
  }
}

/**
 * Closes the tabs of a panel type that VS Code restored after a reload but
 * has not shown since (it revives a hidden webview only when its tab is
 * shown, so the extension cannot reach it); returns the column of the first.
 */
function closeUnrevivedTabs(viewType: string): vscode.ViewColumn | undefined {
  const tabs = vscode.window.tabGroups.all.flatMap((g) =>
    g.tabs.filter((t) => t.input instanceof vscode.TabInputWebview && t.input.viewType.endsWith(viewType)),
  );
  const column = tabs[0]?.group.viewColumn;
  if (tabs.length > 0) void vscode.window.tabGroups.close(tabs, true);
  return column;
}

/**
 * The HTML shell of a panel or view: its bundle and stylesheet from dist/webview, nothing
 * inline, a nonce-based CSP; the root names the view (tests tell the webviews apart by it).
 */
export function panelHtml(
  webview: vscode.Webview,
  extensionUri: vscode.Uri,
  entry: string,
  title: string,
): string {
  const dist = vscode.Uri.joinPath(extensionUri, 'dist', 'webview');
  const nonce = crypto.randomBytes(16).toString('base64');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(dist, `${entry}.js`));
  const style = webview.asWebviewUri(vscode.Uri.joinPath(dist, `${entry}.css`));
  const csp = [
    "default-src 'none'",
    `style-src ${webview.cspSource}`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style.toString()}">
<title>${title}</title>
</head>
<body>
<main id="root" data-view="${entry}"></main>
<script nonce="${nonce}" src="${script.toString()}"></script>
</body>
</html>`;
}

/** Webview options of every panel and view: scripts on, and only the bundles readable. */
export function panelOptions(extensionUri: vscode.Uri): vscode.WebviewPanelOptions & vscode.WebviewOptions {
  return {
    enableScripts: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview')],
  };
}
