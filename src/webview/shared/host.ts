/**
 * A webview's side of its link to the extension host, written once for every
 * Loupe webview: VS Code's API handle, typed by what the view posts and the
 * UI state it saves, and the host's messages checked against the view's
 * schema before it sees them (the host checks the other direction).
 */

/** VS Code's handle in a webview: `acquireVsCodeApi` may be called once per page. */
export interface VsCodeApi<ToHost, State> {
  postMessage(message: ToHost): void;
  /** What the page saved before it was hidden or reloaded; unchecked, so each view restores it its own way. */
  getState(): unknown;
  setState(state: State): void;
}
declare function acquireVsCodeApi(): VsCodeApi<unknown, unknown>;

export function vsCodeApi<ToHost, State = never>(): VsCodeApi<ToHost, State> {
  return acquireVsCodeApi();
}

/** Calls `receive` with each message from the host that `parse` accepts; a malformed one is logged and dropped. */
export function onHostMessage<FromHost>(
  view: string,
  parse: (raw: unknown) => FromHost,
  receive: (message: FromHost) => void,
): void {
  window.addEventListener('message', (event: MessageEvent<unknown>) => {
    let message: FromHost;
    try {
      message = parse(event.data);
    } catch (err) {
      console.error(`Loupe ${view}: ignored a malformed message: ${(err as Error).message}`);
      return;
    }
    receive(message);
  });
}
