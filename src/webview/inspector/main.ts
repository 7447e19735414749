/**
 * The token inspector webview: what the host sends (protocol.ts), drawn with
 * @vscode-elements/elements and lit templates (which escape all text). It
 * keeps only UI state (open sections, the long feature list) through
 * getState/setState; the data comes from the host again whenever the view is
 * shown.
 *
 * The CSP allows no inline styles, so sizes that depend on data (bar widths,
 * the legend's gradient) are carried in data- attributes and applied through
 * the CSSOM after each render, which the CSP permits.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-collapsible/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import { TemplateResult, html, nothing, render, svg } from 'lit';
import {
  HeatMapLegend,
  HostToInspector,
  InspectedFeature,
  InspectedToken,
  InspectorToHost,
  hostToInspector,
} from '../protocol';
import { onHostMessage, vsCodeApi } from '../shared/host';
import { featureName } from '../../shared/featureNames';
import './inspector.css';

/** Saved UI state; bump `schema` when its shape changes (an older one is then ignored). */
interface UiState {
  readonly schema: 2;
  readonly open: Readonly<Record<Section, boolean>>;
  readonly allFeatures: boolean;
}
type Section = 'features' | 'predictions' | 'heatMap';

/** Features listed before "Show more". */
const FEATURES_FIRST = 8;

const vscode = vsCodeApi<InspectorToHost, UiState>();
const root = document.getElementById('root')!;

let ui: UiState = restoreUi(vscode.getState());
let engine: Extract<HostToInspector, { type: 'engine' }> | null = null;
let token: InspectedToken | null = null;
let noTokenReason = 'Move the cursor onto a token in an editor.';
let legend: HeatMapLegend | null = null;

function restoreUi(saved: unknown): UiState {
  const s = saved as Partial<UiState> | undefined;
  const open = { features: true, predictions: true, heatMap: true };
  if (s?.schema !== 2) return { schema: 2, open, allFeatures: false };
  for (const k of Object.keys(open) as Section[]) if (typeof s.open?.[k] === 'boolean') open[k] = s.open[k];
  return { schema: 2, open, allFeatures: s.allFeatures === true };
}

function saveUi(change: Partial<Omit<UiState, 'schema'>>): void {
  ui = { ...ui, ...change };
  vscode.setState(ui);
}

function post(message: InspectorToHost): void {
  vscode.postMessage(message);
}

onHostMessage(
  'inspector',
  (raw) => hostToInspector.parse(raw),
  (message) => {
    switch (message.type) {
      case 'engine':
        engine = message;
        break;
      case 'token':
        token = message.token;
        break;
      case 'noToken':
        token = null;
        noTokenReason = message.reason;
        break;
      case 'heatMap':
        legend = message.legend;
        break;
    }
    draw();
  },
);

/** Spaces, tabs and line breaks made visible, as tokenizer viewers show them. */
function visible(text: string): string {
  return text
    .replace(/ /g, '·')
    .replace(/\t/g, '→')
    .replace(/\r\n|\n|\r/g, '↵');
}

function formatAct(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function formatProb(p: number): string {
  return p >= 0.1 ? `${(p * 100).toFixed(0)}%` : p >= 0.001 ? `${(p * 100).toFixed(1)}%` : '<0.1%';
}

/** Enter or Space activates a row; the arrow keys move between rows, as in VS Code's own lists. */
function onRowKey(event: KeyboardEvent, activate: () => void): void {
  const row = event.currentTarget as HTMLElement;
  if (event.key === 'Enter' || event.key === ' ') {
    event.preventDefault();
    activate();
  } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
    event.preventDefault();
    const rows = [...(row.closest('.rows')?.querySelectorAll<HTMLElement>('.row[tabindex]') ?? [])];
    rows[rows.indexOf(row) + (event.key === 'ArrowDown' ? 1 : -1)]?.focus();
  } else if (event.key === 'd' && row.dataset.feature !== undefined) {
    // D: the feature's dashboard, as the button beside the row does.
    event.preventDefault();
    post({ type: 'openDashboard', feature: Number(row.dataset.feature) });
  }
}

/** A small bar-chart icon for the dashboard button (inline SVG: the CSP allows no icon font or image). */
const dashboardIcon = svg`<svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true" focusable="false"
  ><path fill="currentColor" d="M2 13h12v1H2zM3 8h2v4H3zM7 4h2v8H7zM11 6h2v6h-2z" /></svg
>`;

/** A bar filled to `fraction` (0..1); applied after rendering (see the top of the file). */
function bar(fraction: number): TemplateResult {
  return html`<span class="bar" aria-hidden="true"
    ><span data-fraction=${Math.max(0, Math.min(1, fraction)).toFixed(4)}></span
  ></span>`;
}

function engineBar(): TemplateResult {
  if (!engine) return html`<vscode-progress-bar aria-label="Starting"></vscode-progress-bar>`;
  return html`
    ${engine.busy ? html`<vscode-progress-bar aria-label=${engine.busy}></vscode-progress-bar>` : nothing}
    ${engine.problem ? problem(engine.problem, engine.model === null) : nothing}
  `;
}

function problem(message: string, modelMissing: boolean): TemplateResult {
  return html`<div class="problem" role="alert">
    <p>${message}</p>
    <div class="actions">
      <vscode-button
        @click=${() => post({ type: 'run', command: modelMissing ? 'loupe.loadModel' : 'loupe.loadSae' })}
        >${modelMissing ? 'Choose Model Folder…' : 'Choose SAE Folder…'}</vscode-button
      >
      <vscode-button secondary @click=${() => post({ type: 'run', command: 'loupe.showLog' })}
        >Show Log</vscode-button
      >
    </div>
  </div>`;
}

function tokenHeader(t: InspectedToken): TemplateResult {
  return html`<header class="token" aria-live="polite">
    <code class="token-text" title=${JSON.stringify(t.text)}>${visible(t.text)}</code>
    <span class="where">${t.file}:${t.line}:${t.column} · token ${t.index} · id ${t.id}</span>
  </header>`;
}

function featureList(t: InspectedToken): TemplateResult {
  const chosen = legend?.feature ?? -1;
  const top = t.features[0]?.act ?? 1;
  const labels = engine?.labels ?? false;
  const shown = ui.allFeatures ? t.features : t.features.slice(0, FEATURES_FIRST);
  const description = t.activeFeatures === 0 ? 'none active' : `${t.activeFeatures} active`;
  const more = t.features.length - shown.length;
  if (!engine?.sae) {
    return section('features', 'Features', 'no SAE', html`<p class="empty">Load an SAE to see features.</p>`);
  }
  const body =
    t.features.length === 0
      ? html`<p class="empty">No feature fires on this token.</p>`
      : html`<div
            class="rows ${labels ? 'labelled' : ''}"
            role="list"
            aria-label="Features active on this token"
          >
            ${groupByLayer(shown).map(
              (group) =>
                html`${group.layer === null ? nothing : html`<div class="layer-heading" role="presentation">Layer ${group.layer}</div>`}${group.features.map(
                  (f) =>
                    html`<div class="feature-item" role="listitem">
                      <div
                        class="row feature ${f.index === chosen ? 'chosen' : ''}"
                        role="button"
                        tabindex="0"
                        data-feature=${f.index}
                        aria-pressed=${f.index === chosen ? 'true' : 'false'}
                        aria-label=${`Feature ${featureName(f)}${f.label ? `, ${f.label}` : ''}, activation ${formatAct(f.act)}; show its heat map`}
                        title="Show this feature's heat map in the editor"
                        @click=${() => post({ type: 'showHeatMap', feature: f.index })}
                        @keydown=${(e: KeyboardEvent) => onRowKey(e, () => post({ type: 'showHeatMap', feature: f.index }))}
                      >
                        ${
                          labels
                            ? html`<span class="title"
                                ><span class="index">${featureName(f)}</span
                                ><span class="label ${f.label ? '' : 'unlabelled'}" title=${f.label ?? ''}
                                  >${f.label ?? 'no label'}</span
                                ></span
                              >`
                            : html`<span class="index">${featureName(f)}</span>`
                        }
                        ${bar(f.act / top)}
                        <span class="value">${formatAct(f.act)}</span>
                      </div>
                      ${
                        labels
                          ? html`<button
                              class="open-dashboard"
                              title=${`Open feature #${f.index}'s dashboard (D)`}
                              aria-label=${`Open feature ${f.index}'s dashboard`}
                              @click=${() => post({ type: 'openDashboard', feature: f.index })}
                            >
                              ${dashboardIcon}
                            </button>`
                          : nothing
                      }
                    </div>`,
                )}`,
            )}
          </div>
          ${featureHint(more, chosen >= 0)}`;
  return section('features', 'Features', description, body);
}

/** The shown features by layer (a transcoder set's, in layer order, strongest first within each); one group otherwise. */
function groupByLayer(
  features: readonly InspectedFeature[],
): { layer: number | null; features: InspectedFeature[] }[] {
  if (features.every((f) => f.layer === null)) return [{ layer: null, features: [...features] }];
  const layers = [...new Set(features.map((f) => f.layer ?? 0))].sort((a, b) => a - b);
  return layers.map((layer) => ({ layer, features: features.filter((f) => (f.layer ?? 0) === layer) }));
}

/** "Show N more" (or fewer), and what a click on a feature does until one is chosen. */
function featureHint(more: number, chosen: boolean): TemplateResult {
  const toggle =
    more > 0 || ui.allFeatures
      ? html`<a
          href="#"
          role="button"
          @click=${(e: Event) => {
            e.preventDefault();
            saveUi({ allFeatures: !ui.allFeatures });
            draw();
          }}
          >${ui.allFeatures ? 'Show fewer' : `Show ${more} more`}</a
        >`
      : null;
  const help = chosen ? null : 'Click a feature to see it over the whole file.';
  if (!toggle && !help) return html``;
  return html`<p class="hint">${toggle ?? nothing}${toggle && help ? ' · ' : ''}${help ?? nothing}</p>`;
}

function predictionList(t: InspectedToken): TemplateResult {
  const body =
    t.predictions.length === 0
      ? html`<p class="empty">No prediction.</p>`
      : html`<div class="rows" role="list" aria-label="The model's next-token predictions">
          ${t.predictions.map(
            (p) =>
              html`<div class="row prediction" role="listitem">
                <code class="token-text">${visible(p.text)}</code>
                ${bar(p.prob)}
                <span class="value">${formatProb(p.prob)}</span>
              </div>`,
          )}
        </div>`;
  return section('predictions', 'Next token', 'the model’s guesses', body);
}

function heatMap(l: HeatMapLegend): TemplateResult {
  const n = l.activeTokens;
  const where =
    n === null ? 'reading the file…' : n === 0 ? 'not in this file' : `on ${n} token${n === 1 ? '' : 's'}`;
  return section(
    'heatMap',
    'Heat map',
    where,
    html`<p class="legend-title">
        <span class="index"
          >${featureName({ index: l.feature, layer: l.layer, layerIndex: l.layerIndex })}</span
        >
        ${
          engine?.labels
            ? html`<span class="label ${l.label ? '' : 'unlabelled'}">${l.label ?? 'no label'}</span>`
            : nothing
        }
      </p>
      <div
        class="legend"
        role="img"
        aria-label=${l.max === null ? 'Colour scale' : `Colour scale from 0 to ${formatAct(l.max)}, the most in this file`}
      >
        <span class="scale" data-gradient=${l.colors.join('|')}></span>
        <span class="ends"
          ><span>0</span><span>${l.max === null ? '' : `max ${formatAct(l.max)}`}</span></span
        >
      </div>
      <div class="actions">
        <vscode-button
          secondary
          title="Previous occurrence (Shift+Alt+F8)"
          @click=${() => post({ type: 'navigate', direction: 'previous' })}
          >Previous</vscode-button
        >
        <vscode-button
          secondary
          title="Next occurrence (Alt+F8)"
          @click=${() => post({ type: 'navigate', direction: 'next' })}
          >Next</vscode-button
        >
        <vscode-button secondary title="Clear the heat map" @click=${() => post({ type: 'clearHeatMap' })}
          >Clear</vscode-button
        >
      </div>`,
  );
}

function section(id: Section, heading: string, description: string, body: TemplateResult): TemplateResult {
  return html`<vscode-collapsible
    heading=${heading}
    description=${description}
    ?open=${ui.open[id]}
    @vsc-collapsible-toggle=${(e: CustomEvent<{ open: boolean }>) =>
      saveUi({ open: { ...ui.open, [id]: e.detail.open } })}
    >${body}</vscode-collapsible
  >`;
}

function footer(): TemplateResult {
  if (!engine?.model) return html``;
  return html`<footer>${engine.model}${engine.sae ? ` · ${engine.sae}` : ' · no SAE'}</footer>`;
}

function draw(): void {
  render(
    html`${engineBar()} ${token ? tokenHeader(token) : html`<p class="hint placeholder">${noTokenReason}</p>`}
    ${legend ? heatMap(legend) : nothing}
    ${token ? html`${featureList(token)} ${predictionList(token)}` : nothing} ${footer()}`,
    root,
  );
  for (const el of root.querySelectorAll<HTMLElement>('[data-fraction]')) {
    el.style.width = `${Number(el.dataset.fraction) * 100}%`;
  }
  for (const el of root.querySelectorAll<HTMLElement>('[data-gradient]')) {
    el.style.background = `linear-gradient(to right, ${el.dataset.gradient!.split('|').join(', ')})`;
  }
}

draw();
post({ type: 'ready' });
