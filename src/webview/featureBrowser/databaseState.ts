/**
 * What both feature panels show while there is no feature database to read:
 * the engine loading, no SAE, no database yet (with the command that
 * computes one), or a database that cannot be read.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import { TemplateResult, html } from 'lit';
import { DatabaseState, PanelCommand } from '../featureProtocol';

export function databasePane(
  state: DatabaseState | null,
  run: (command: PanelCommand) => void,
): TemplateResult {
  if (!state || state.kind === 'loading') {
    return html`<vscode-progress-bar aria-label="Loading"></vscode-progress-bar>
      <p class="hint placeholder">${state?.message ?? 'Starting…'}</p>`;
  }
  if (state.kind === 'ready') return html``;
  const build = state.kind === 'missing' && state.build;
  const buttons: { command: PanelCommand; label: string; secondary: boolean }[] = [
    ...(build
      ? [
          {
            command: 'loupe.computeDashboards' as const,
            label: 'Compute Feature Dashboards',
            secondary: false,
          },
        ]
      : []),
    { command: 'loupe.loadSae', label: 'Load SAE Folder…', secondary: build },
    { command: 'loupe.showLog', label: 'Show Log', secondary: true },
  ];
  return html`<div class="empty-state ${state.kind}" role=${state.kind === 'failed' ? 'alert' : 'status'}>
    <p>${state.message}</p>
    <div class="actions">
      ${buttons.map(
        (b) =>
          html`<vscode-button ?secondary=${b.secondary} @click=${() => run(b.command)}
            >${b.label}</vscode-button
          >`,
      )}
    </div>
  </div>`;
}
