/**
 * The Feature Browser webview: a searchable, sortable list of the SAE's
 * features beside one feature's dashboard (label and its evidence,
 * statistics, activation histogram, top contexts and samples per activation
 * band, logit effects, similar features, cluster). Everything it shows comes
 * from the host (featureProtocol.ts) on request; lit templates escape all
 * text. UI state (the query, the sort, the feature shown, the scroll) is kept
 * with getState/setState, so the panel comes back as it was when it is shown
 * again or the window reloads.
 *
 * The CSP allows no inline styles, so per-token shading and bar widths are
 * carried in data- attributes and applied through the CSSOM after each
 * render, which the CSP permits.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import { TemplateResult, html, nothing, render } from 'lit';
import {
  ClusterRef,
  FeatureContextMessage,
  FeatureDashboardMessage,
  FeatureSort,
  FeatureSummaryMessage,
  featureSort,
} from '../../shared/featureSchemas';
import { BrowserToHost, DatabaseState, hostToBrowser } from '../featureProtocol';
import { databasePane } from './databaseState';
import { onHostMessage, vsCodeApi } from '../shared/host';
import './featureBrowser.css';
import { HistogramChart, formatAct } from './histogram';

/** Saved UI state; bump `schema` when its shape changes (an older one is then ignored). */
interface UiState {
  readonly schema: 1;
  readonly query: string;
  readonly sort: FeatureSort;
  readonly feature: number | null;
  /** The dashboard's scroll position, restored with the same feature. */
  readonly scroll: number;
}

interface Dashboard {
  readonly dashboard: FeatureDashboardMessage;
  readonly similar: readonly FeatureSummaryMessage[];
  readonly cluster: ClusterRef | null;
}

const PAGE = 200;
const SEARCH_DEBOUNCE_MS = 150;
/** Moving through the list with the keyboard shows each dashboard once the keys rest. */
const KEY_OPEN_DEBOUNCE_MS = 200;
const SORTS: readonly { value: FeatureSort; label: string }[] = [
  { value: 'density', label: 'Density' },
  { value: 'maxAct', label: 'Max activation' },
  { value: 'meanActive', label: 'Mean activation' },
  { value: 'index', label: 'Index' },
  { value: 'relevance', label: 'Best match' },
];

const vscode = vsCodeApi<BrowserToHost, UiState>();
const root = document.getElementById('root')!;

let ui: UiState = restoreUi(vscode.getState());
let database: DatabaseState | null = null;
let list: { total: number; features: FeatureSummaryMessage[] } | null = null;
let listError: string | null = null;
let dashboard: Dashboard | null = null;
let dashboardError: string | null = null;
let notice: { message: string; level: 'info' | 'warning' } | null = null;
/** The list row the keyboard is on (index into list.features). */
let active = -1;
let nextId = 1;
let listRequest = 0;
let dashboardRequest = 0;
let searchTimer: number | undefined;
let keyTimer: number | undefined;
let chart: { host: HTMLElement; feature: number; chart: HistogramChart } | null = null;
/** Scroll the dashboard back to ui.scroll once it is drawn (after a reload); else to the top. */
let restoreScroll = ui.scroll > 0;
/** The feature whose dashboard was drawn last. */
let drawnFeature = -1;

function restoreUi(saved: unknown): UiState {
  const s = saved as Partial<UiState> | undefined;
  const fresh: UiState = { schema: 1, query: '', sort: 'density', feature: null, scroll: 0 };
  if (s?.schema !== 1) return fresh;
  let sort = fresh.sort;
  try {
    sort = featureSort.parse(s.sort);
  } catch {
    // an unknown sort from another version: keep the default
  }
  return {
    schema: 1,
    query: typeof s.query === 'string' ? s.query : '',
    sort,
    feature: Number.isSafeInteger(s.feature) && (s.feature as number) >= 0 ? (s.feature as number) : null,
    scroll: typeof s.scroll === 'number' && s.scroll >= 0 ? s.scroll : 0,
  };
}

function saveUi(change: Partial<Omit<UiState, 'schema'>>): void {
  ui = { ...ui, ...change };
  vscode.setState(ui);
}

function post(message: BrowserToHost): void {
  vscode.postMessage(message);
}

// ---- requests ----

function requestList(append = false): void {
  listRequest = nextId++;
  listError = null;
  post({
    type: 'list',
    id: listRequest,
    query: ui.query,
    sort: ui.sort,
    offset: append && list ? list.features.length : 0,
    limit: PAGE,
  });
}

function requestDashboard(feature: number): void {
  clearTimeout(keyTimer);
  if (ui.feature !== feature) {
    saveUi({ feature, scroll: 0 });
    restoreScroll = false;
  }
  dashboardRequest = nextId++;
  dashboardError = null;
  post({ type: 'dashboard', id: dashboardRequest, feature });
  draw();
}

const pending = (): boolean => listRequest !== 0 || dashboardRequest !== 0;

onHostMessage(
  'feature browser',
  (raw) => hostToBrowser.parse(raw),
  (message) => {
    switch (message.type) {
      case 'database': {
        const before = database?.kind === 'ready' ? database.info : null;
        database = message.state;
        const now = database.kind === 'ready' ? database.info : null;
        if (!now) {
          list = null;
          dashboard = null;
          listRequest = dashboardRequest = 0;
        } else if (!before || before.dir !== now.dir || before.createdAt !== now.createdAt) {
          // Another database (or the same one rebuilt): everything shown is asked for again.
          requestList();
          if (ui.feature !== null) requestDashboard(ui.feature);
        }
        break;
      }
      case 'list':
        if (message.id !== listRequest) return;
        listRequest = 0;
        if (message.offset === 0 || !list) {
          list = { total: message.total, features: message.features };
          active = list.features.findIndex((f) => f.index === ui.feature);
        } else {
          list = { total: message.total, features: [...list.features, ...message.features] };
        }
        // Nothing chosen yet: show the first feature rather than an empty page.
        if (ui.feature === null && list.features.length > 0 && database?.kind === 'ready') {
          requestDashboard(list.features[0].index);
          active = 0;
        }
        break;
      case 'dashboard':
        if (message.id !== dashboardRequest) return;
        dashboardRequest = 0;
        dashboard = { dashboard: message.dashboard, similar: message.similar, cluster: message.cluster };
        notice = null; // it was about the feature shown before
        post({ type: 'showing', feature: message.dashboard.index, label: message.dashboard.label.text });
        break;
      case 'failed':
        if (message.id === listRequest) {
          listRequest = 0;
          listError = message.message;
        } else if (message.id === dashboardRequest) {
          dashboardRequest = 0;
          dashboardError = message.message;
          dashboard = null;
        } else return;
        break;
      case 'select':
        notice = null;
        if (database?.kind === 'ready') requestDashboard(message.feature);
        else saveUi({ feature: message.feature, scroll: 0 });
        active = list?.features.findIndex((f) => f.index === message.feature) ?? -1;
        break;
      case 'notice':
        notice = { message: message.message, level: message.level };
        break;
    }
    draw();
  },
);

// ---- formatting ----

/** Line breaks and tabs made visible and long runs of spaces shortened, as a context line shows them. */
function shown(token: string): string {
  return token
    .replace(/\r\n|\n|\r/g, '↵')
    .replace(/\t/g, '→')
    .replace(/ {4,}/g, '    ');
}

/** Spaces too, for tokens shown on their own (label evidence, logit effects). */
function visible(token: string): string {
  return shown(token).replace(/ /g, '·');
}

function formatPercent(p: number): string {
  if (p === 0) return '0%';
  return p >= 0.1
    ? `${(p * 100).toFixed(1)}%`
    : p >= 0.001
      ? `${(p * 100).toFixed(2)}%`
      : `${(p * 100).toPrecision(2)}%`;
}

function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

function formatValue(f: FeatureSummaryMessage): string {
  switch (ui.sort) {
    case 'maxAct':
      return formatAct(f.maxAct);
    case 'meanActive':
      return formatAct(f.meanActive);
    default:
      return formatPercent(f.density);
  }
}

// ---- the list ----

function onSearchInput(event: Event): void {
  const value = (event.target as HTMLInputElement).value;
  saveUi({ query: value });
  clearTimeout(searchTimer);
  searchTimer = window.setTimeout(() => {
    // A search reads best in its own order; clearing it goes back to density.
    if (value.trim() !== '' && ui.sort === 'density' && !/^#?\d+$/.test(value.trim()))
      saveUi({ sort: 'relevance' });
    if (value.trim() === '' && ui.sort === 'relevance') saveUi({ sort: 'density' });
    requestList();
    draw();
  }, SEARCH_DEBOUNCE_MS);
}

function onSearchKey(event: KeyboardEvent): void {
  if (event.key === 'ArrowDown') {
    event.preventDefault();
    const box = root.querySelector<HTMLElement>('.results');
    box?.focus();
    if (list && list.features.length > 0) moveActive(Math.max(0, active), true);
  } else if (event.key === 'Enter' && list && list.features.length > 0) {
    requestDashboard(list.features[Math.max(0, active)].index);
  }
}

function onSortChange(event: Event): void {
  const value = (event.target as HTMLSelectElement).value;
  try {
    saveUi({ sort: featureSort.parse(value) });
  } catch {
    return;
  }
  requestList();
  draw();
}

function moveActive(to: number, openSoon: boolean): void {
  if (!list || list.features.length === 0) return;
  active = Math.max(0, Math.min(list.features.length - 1, to));
  draw();
  root.querySelector(`#feature-option-${active}`)?.scrollIntoView({ block: 'nearest' });
  if (openSoon) {
    clearTimeout(keyTimer);
    const feature = list.features[active].index;
    keyTimer = window.setTimeout(() => requestDashboard(feature), KEY_OPEN_DEBOUNCE_MS);
  }
}

function onListKey(event: KeyboardEvent): void {
  if (!list || list.features.length === 0) return;
  const step: Record<string, number> = {
    ArrowDown: 1,
    ArrowUp: -1,
    PageDown: 10,
    PageUp: -10,
  };
  if (event.key in step) {
    event.preventDefault();
    if (event.key === 'ArrowUp' && active <= 0) {
      root.querySelector<HTMLElement>('vscode-textfield')?.focus();
      return;
    }
    moveActive(active + step[event.key], true);
  } else if (event.key === 'Home' || event.key === 'End') {
    event.preventDefault();
    moveActive(event.key === 'Home' ? 0 : list.features.length - 1, true);
  } else if (event.key === 'Enter' || event.key === ' ') {
    event.preventDefault();
    if (active >= 0) requestDashboard(list.features[active].index);
  }
}

function listPane(): TemplateResult {
  const searching = ui.query.trim() !== '';
  const count = !list
    ? listError
      ? ''
      : 'Loading…'
    : searching
      ? `${formatCount(list.total)} match${list.total === 1 ? '' : 'es'}`
      : `${formatCount(list.total)} features`;
  const column = ui.sort === 'maxAct' ? 'max' : ui.sort === 'meanActive' ? 'mean' : 'density';
  return html`<aside class="list-pane" aria-label="Features">
    <div class="search">
      <vscode-textfield
        type="search"
        placeholder="Search a label, token or #index"
        aria-label="Search features by label, token or index"
        .value=${ui.query}
        @input=${onSearchInput}
        @keydown=${onSearchKey}
      ></vscode-textfield>
      <div class="sort-row">
        <label id="sort-label" for="sort">Sort by</label>
        <vscode-single-select id="sort" aria-labelledby="sort-label" @change=${onSortChange}>
          ${SORTS.map(
            (s) =>
              html`<vscode-option value=${s.value} ?selected=${s.value === ui.sort}
                >${s.label}</vscode-option
              >`,
          )}
        </vscode-single-select>
      </div>
    </div>
    <p class="count" aria-live="polite">
      ${count}${list && list.features.length > 0 ? html`<span class="column">${column}</span>` : nothing}
    </p>
    ${listError ? html`<p class="error" role="alert">${listError}</p>` : nothing}
    <div
      class="results"
      role="listbox"
      tabindex="0"
      aria-label="Features"
      aria-activedescendant=${active >= 0 && list && active < list.features.length ? `feature-option-${active}` : nothing}
      @keydown=${onListKey}
      @focus=${() => active < 0 && list && list.features.length > 0 && moveActive(0, false)}
    >
      ${list?.features.map((f, i) => resultRow(f, i))}
    </div>
    ${
      list && list.features.length < list.total
        ? html`<vscode-button secondary class="more" @click=${() => requestList(true)}
            >Show ${formatCount(Math.min(PAGE, list.total - list.features.length))} more</vscode-button
          >`
        : nothing
    }
  </aside>`;
}

function resultRow(f: FeatureSummaryMessage, i: number): TemplateResult {
  const selected = f.index === ui.feature;
  return html`<div
    id=${`feature-option-${i}`}
    class="result ${selected ? 'selected' : ''} ${i === active ? 'active' : ''}"
    role="option"
    aria-selected=${selected ? 'true' : 'false'}
    @click=${() => {
      active = i;
      requestDashboard(f.index);
    }}
  >
    <span class="index">#${f.index}</span>
    <span class="label ${f.label ? '' : 'unlabelled'}" title=${f.label}
      >${f.dead ? 'dead' : f.label || 'no label'}</span
    >
    <span class="value">${f.dead ? '' : formatValue(f)}</span>
  </div>`;
}

// ---- the dashboard ----

function dashboardPane(): TemplateResult {
  if (dashboardError)
    return html`<main class="dashboard"><p class="error" role="alert">${dashboardError}</p></main>`;
  if (!dashboard) {
    return html`<main class="dashboard">
      <p class="hint">${ui.feature === null ? 'Choose a feature to see its dashboard.' : 'Loading…'}</p>
    </main>`;
  }
  const { dashboard: d, similar, cluster } = dashboard;
  return html`<main class="dashboard" aria-label=${`Feature ${d.index}`} @scroll=${onDashboardScroll}>
    <header class="feature-header">
      <h1>
        <span class="index">#${d.index}</span>
        <span class="label">${d.dead ? 'dead feature' : d.label.text || 'no label'}</span>
      </h1>
      <p class="subtitle">
        ${d.dead ? 'Never fired in the corpus.' : `Active on ${formatPercent(d.stats.density)} of tokens · max ${formatAct(d.stats.maxAct)}`}
        ${cluster ? html` · <a href="#" @click=${(e: Event) => showInMap(e, d.index, cluster.id)}>cluster #${cluster.id}</a>` : nothing}
      </p>
      <div class="actions">
        <vscode-button
          @click=${() => post({ type: 'showHeatMap', feature: d.index })}
          title="Tint the file in the editor by this feature's activation on each token"
          >Show heat map in the editor</vscode-button
        >
        <vscode-button secondary @click=${(e: Event) => showInMap(e, d.index, d.cluster)}
          >Show on the cluster map</vscode-button
        >
      </div>
    </header>
    <div class="columns">
      <div class="column-side">
        ${labelSection(d)} ${statsSection(d)} ${histogramSection(d)} ${logitsSection(d)}
        ${similarSection(d, similar)} ${clusterSection(d, cluster)}
      </div>
      <div class="column-main">${topSection(d)} ${bandsSection(d)}</div>
    </div>
    ${noticeBar()}
  </main>`;
}

function showInMap(event: Event, feature: number, cluster: number | null): void {
  event.preventDefault();
  post({ type: 'showInClusterMap', feature, cluster });
}

function noticeBar(): TemplateResult | typeof nothing {
  if (!notice) return nothing;
  return html`<div class="notice ${notice.level}" role="status">
    <span>${notice.message}</span>
    <vscode-button
      secondary
      aria-label="Dismiss"
      title="Dismiss"
      @click=${() => {
        notice = null;
        draw();
      }}
      >×</vscode-button
    >
  </div>`;
}

type SectionKey = 'label' | 'stats' | 'histogram' | 'top' | 'bands' | 'logits' | 'similar' | 'cluster';

/** A titled part of the dashboard; its key orders it when the two columns become one. */
function section(key: SectionKey, title: string, body: TemplateResult, note?: string): TemplateResult {
  return html`<section class=${`part-${key}`}>
    <h2>${title}${note ? html`<span class="note">${note}</span>` : nothing}</h2>
    ${body}
  </section>`;
}

const LABEL_KINDS: Record<FeatureDashboardMessage['label']['kind'], string> = {
  token: 'Fires on',
  previous: 'Fires just after',
  phrase: 'Fires on the phrase',
  none: 'No token explains it',
};

function labelSection(d: FeatureDashboardMessage): TemplateResult {
  const l = d.label;
  if (d.dead) return section('label', 'Label', html`<p class="hint">A dead feature has no label.</p>`);
  const body = html`<p class="label-kind">${LABEL_KINDS[l.kind]}</p>
    ${
      l.tokens.length > 0
        ? html`<div class="rows" role="list">
            ${l.tokens.map(
              (t) =>
                html`<div class="row" role="listitem" title=${`Contrast score ${t.score.toFixed(3)}`}>
                  <code class="chip">${visible(t.text)}</code>
                  ${bar(t.share)}
                  <span class="value">${formatPercent(t.share)}</span>
                </div>`,
            )}
          </div>`
        : nothing
    }
    <p class="hint">
      The label's tokens carry ${formatPercent(l.coverage)} of the activation in the top contexts.
    </p>`;
  return section('label', 'Label', body, 'share of the activation');
}

function statsSection(d: FeatureDashboardMessage): TemplateResult {
  const s = d.stats;
  return section(
    'stats',
    'Statistics',
    html`<dl class="stats">
      <div>
        <dt>Density</dt>
        <dd>${formatPercent(s.density)}</dd>
        <dd class="detail">${formatCount(s.activeTokens)} of ${formatCount(s.tokens)} tokens</dd>
      </div>
      <div>
        <dt>Max activation</dt>
        <dd>${formatAct(s.maxAct)}</dd>
      </div>
      <div>
        <dt>Mean when active</dt>
        <dd>${formatAct(s.meanActive)}</dd>
      </div>
      <div>
        <dt>Mean over all tokens</dt>
        <dd>${formatAct(s.mean)}</dd>
      </div>
    </dl>`,
  );
}

function histogramSection(d: FeatureDashboardMessage): TemplateResult | typeof nothing {
  if (!d.histogram) return nothing;
  const h = d.histogram;
  return section(
    'histogram',
    'Activations',
    html`<div
        class="histogram"
        role="img"
        aria-label=${`Histogram of the activations where the feature fires, from ${formatAct(h.edges[0])} to ${formatAct(h.edges[h.edges.length - 1])}, on a log scale; dashed lines divide the activation bands`}
      ></div>
      <p class="hint histogram-caption" aria-live="off"></p>`,
    `log scale, ${h.binsPerOctave} bins per doubling`,
  );
}

function logitsSection(d: FeatureDashboardMessage): TemplateResult | typeof nothing {
  const l = d.logits;
  if (!l) return nothing;
  const top = Math.max(
    1e-9,
    ...l.promoted.map((t) => Math.abs(t.value)),
    ...l.suppressed.map((t) => Math.abs(t.value)),
  );
  const column = (title: string, tokens: typeof l.promoted, kind: string) =>
    html`<div class="logit-column ${kind}">
      <h3>${title}</h3>
      <div class="rows" role="list" aria-label=${title}>
        ${tokens.map(
          (t) =>
            html`<div class="row" role="listitem">
              <code class="chip" title=${`token id ${t.id}`}>${visible(t.token)}</code>
              ${bar(Math.abs(t.value) / top)}
              <span class="value">${t.value > 0 ? '+' : ''}${t.value.toFixed(2)}</span>
            </div>`,
        )}
      </div>
    </div>`;
  return section(
    'logits',
    'Logit effects',
    html`<div class="logits">
      ${column('Promotes', l.promoted, 'promoted')} ${column('Suppresses', l.suppressed, 'suppressed')}
    </div>`,
    'decoder direction · unembedding',
  );
}

function similarSection(
  d: FeatureDashboardMessage,
  similar: readonly FeatureSummaryMessage[],
): TemplateResult {
  const byIndex = new Map(similar.map((s) => [s.index, s]));
  return section(
    'similar',
    'Similar features',
    html`<div class="rows" role="list">
      ${d.similar.map((s) => {
        const f = byIndex.get(s.index);
        return html`<div
          class="row link"
          role="button"
          tabindex="0"
          aria-label=${`Feature ${s.index}${f?.label ? `, ${f.label}` : ''}, cosine ${s.cosine.toFixed(2)}; open its dashboard`}
          @click=${() => requestDashboard(s.index)}
          @keydown=${(e: KeyboardEvent) => activateKey(e, () => requestDashboard(s.index))}
        >
          <span class="title"
            ><span class="index">#${s.index}</span>
            <span class="label ${f?.label ? '' : 'unlabelled'}">${f?.label || 'no label'}</span></span
          >
          <span class="value" title="cosine similarity of the decoder directions"
            >${s.cosine.toFixed(2)}</span
          >
        </div>`;
      })}
    </div>`,
    'decoder cosine',
  );
}

function clusterSection(
  d: FeatureDashboardMessage,
  cluster: ClusterRef | null,
): TemplateResult | typeof nothing {
  if (!cluster) return nothing;
  return section(
    'cluster',
    'Cluster',
    html`<p>
        <a href="#" @click=${(e: Event) => showInMap(e, d.index, cluster.id)}
          >Cluster #${cluster.id}: ${cluster.label || 'unlabelled'}</a
        >
        <span class="hint">(${formatCount(cluster.size)} features)</span>
      </p>
      <p class="hint">
        Features whose decoder directions point the same way; the link shows them on the map.
      </p>`,
  );
}

function topSection(d: FeatureDashboardMessage): TemplateResult {
  if (d.top.length === 0)
    return section('top', 'Top activations', html`<p class="hint">None in the corpus.</p>`);
  return section(
    'top',
    'Top activations',
    html`<div class="contexts">${d.top.map((c) => contextRow(c, d.stats.maxAct))}</div>`,
    'click a context to open its source',
  );
}

function bandsSection(d: FeatureDashboardMessage): TemplateResult | typeof nothing {
  if (d.bands.length === 0) return nothing;
  return section(
    'bands',
    'Activation bands',
    html`${d.bands.map(
      (b) =>
        html`<div class="band">
          <h3>
            ${formatAct(b.lo)} – ${formatAct(b.hi)}
            <span class="note">${formatPercent(b.fraction)} of the active tokens</span>
          </h3>
          ${
            b.samples.length === 0
              ? html`<p class="hint">No sample.</p>`
              : html`<div class="contexts">${b.samples.map((c) => contextRow(c, d.stats.maxAct))}</div>`
          }
        </div>`,
    )}`,
    'samples from equal slices of 0 … max',
  );
}

/** One context: the tokens before the focus right-aligned, so that the focus tokens line up down the list. */
function contextRow(c: FeatureContextMessage, maxAct: number): TemplateResult {
  const token = (t: string, i: number) =>
    html`<span
      class="tok ${c.acts[i] > 0 ? 'on' : ''} ${i === c.focus ? 'focus' : ''}"
      data-a=${maxAct > 0 ? (c.acts[i] / maxAct).toFixed(3) : '0'}
      title=${`${JSON.stringify(t)}: ${formatAct(c.acts[i])}`}
      >${shown(t)}</span
    >`;
  const open = () =>
    post({ type: 'openContext', source: c.source, span: [...c.span], text: c.tokens[c.focus] });
  return html`<div
    class="context"
    role="button"
    tabindex="0"
    title=${`${c.source} · activation ${formatAct(c.act)} · open the source`}
    aria-label=${`Activation ${formatAct(c.act)} on ${JSON.stringify(c.tokens[c.focus])} in ${c.source}; open the source`}
    @click=${open}
    @keydown=${(e: KeyboardEvent) => activateKey(e, open)}
  >
    <span class="act">${formatAct(c.act)}</span>
    <span class="before">${c.tokens.slice(0, c.focus).map((t, i) => token(t, i))}</span>
    <span class="after">${c.tokens.slice(c.focus).map((t, i) => token(t, c.focus + i))}</span>
  </div>`;
}

function activateKey(event: KeyboardEvent, activate: () => void): void {
  if (event.key === 'Enter' || event.key === ' ') {
    event.preventDefault();
    activate();
  }
}

/** A bar filled to `fraction` (0..1); applied after rendering (see the top of the file). */
function bar(fraction: number): TemplateResult {
  return html`<span class="bar" aria-hidden="true"
    ><span data-fraction=${Math.max(0, Math.min(1, fraction)).toFixed(4)}></span
  ></span>`;
}

let scrollTimer: number | undefined;
function onDashboardScroll(event: Event): void {
  const top = (event.currentTarget as HTMLElement).scrollTop;
  clearTimeout(scrollTimer);
  scrollTimer = window.setTimeout(() => saveUi({ scroll: top }), 200);
}

// ---- the whole page ----

function footer(): TemplateResult | typeof nothing {
  if (database?.kind !== 'ready') return nothing;
  const i = database.info;
  return html`<footer>
    ${i.sae} · ${formatCount(i.dSae)} features (${formatCount(i.liveFeatures)} live) at ${i.hook} of
    ${i.model} · ${formatCount(i.tokens)} tokens of ${i.corpus}
  </footer>`;
}

function draw(): void {
  const ready = database?.kind === 'ready';
  render(
    html`${pending() && ready ? html`<vscode-progress-bar class="busy" aria-label="Loading"></vscode-progress-bar>` : nothing}
    ${
      ready
        ? html`<div class="browser">${listPane()} ${dashboardPane()}</div>
            ${footer()}`
        : databasePane(database, (command) => post({ type: 'run', command }))
    }`,
    root,
  );
  for (const el of root.querySelectorAll<HTMLElement>('[data-fraction]')) {
    el.style.width = `${Number(el.dataset.fraction) * 100}%`;
  }
  for (const el of root.querySelectorAll<HTMLElement>('.tok[data-a]')) {
    el.style.setProperty('--a', el.dataset.a!);
  }
  drawChart();
  // A new dashboard starts at its top, except the one a reload brings back, which returns to where it was.
  const pane = root.querySelector<HTMLElement>('.dashboard');
  const index = dashboard?.dashboard.index ?? -1;
  if (pane && index >= 0 && index !== drawnFeature) {
    pane.scrollTop = restoreScroll && index === ui.feature ? ui.scroll : 0;
    restoreScroll = false;
    drawnFeature = index;
  }
}

/** The histogram lives in an element lit keeps across renders; a new feature (or element) gets a new chart. */
function drawChart(): void {
  const host = root.querySelector<HTMLElement>('.histogram');
  const d = dashboard?.dashboard;
  if (!host || !d?.histogram) {
    chart?.chart.destroy();
    chart = null;
    return;
  }
  if (chart && chart.host === host && chart.feature === d.index) return;
  chart?.chart.destroy();
  const caption = root.querySelector<HTMLElement>('.histogram-caption')!;
  const bandEdges = d.bands.map((b) => b.lo);
  chart = {
    host,
    feature: d.index,
    chart: new HistogramChart(host, caption, { histogram: d.histogram, bandEdges }),
  };
}

// The theme changed: VS Code updates the body's classes and variables; the canvas must be drawn again.
new MutationObserver(() => chart?.chart.draw()).observe(document.body, {
  attributes: true,
  attributeFilter: ['class', 'data-vscode-theme-kind'],
});

draw();
post({ type: 'ready' });
