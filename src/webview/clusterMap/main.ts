/**
 * The Cluster Map webview: the SAE's live features on a canvas at their 2-D
 * map positions (the feature database's layout of the decoder directions),
 * coloured by cluster, beside the list of clusters. Wheel, the +/− buttons
 * and keys zoom; dragging and the arrow keys pan; hovering a point names its
 * feature; clicking one opens its dashboard in the Feature Browser. Choosing
 * a cluster highlights its members, zooms to them and lists them, which is
 * also the keyboard's way to any feature.
 *
 * Colours: the cluster palette is spread over the hue circle with lightness
 * and saturation per theme kind (a canvas cannot use CSS variables, so the
 * theme's background and foreground are read from the computed style at each
 * draw, and everything is drawn again when the theme changes). Only the
 * view (centre, zoom), the chosen cluster and the highlighted feature are
 * saved with setState; the map comes from the host each time the webview loads.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import { TemplateResult, html, nothing, render } from 'lit';
import { FeatureClusterMessage, FeatureMapPoints } from '../../shared/featureSchemas';
import { DatabaseState, MapToHost, hostToMap } from '../featureProtocol';
import { databasePane } from '../featureBrowser/databaseState';
import { onHostMessage, vsCodeApi } from '../shared/host';
import './clusterMap.css';

interface View {
  /** The world point at the canvas's centre. */
  readonly cx: number;
  readonly cy: number;
  /** CSS pixels per world unit. */
  readonly scale: number;
}

/** Saved UI state; bump `schema` when its shape changes (an older one is then ignored). */
interface UiState {
  readonly schema: 1;
  readonly view: View | null;
  readonly cluster: number | null;
  /** The feature marked on the map: the last one clicked, or the one the browser asked to show. */
  readonly feature: number | null;
}

const POINT_RADIUS = 2.6;
const HOVER_RADIUS_PX = 8;
const PAN_STEP_PX = 60;
const ZOOM_STEP = 1.5;
const MEMBERS_SHOWN = 60;

const vscode = vsCodeApi<MapToHost, UiState>();
const root = document.getElementById('root')!;

let ui: UiState = restoreUi(vscode.getState());
let database: DatabaseState | null = null;
let points: FeatureMapPoints | null = null;
let clusters: FeatureClusterMessage[] = [];
let mapError: string | null = null;
let hovered = -1; // index into points
let canvas: HTMLCanvasElement | null = null;
let drawQueued = false;

function restoreUi(saved: unknown): UiState {
  const s = saved as Partial<UiState> | undefined;
  const fresh: UiState = { schema: 1, view: null, cluster: null, feature: null };
  if (s?.schema !== 1) return fresh;
  const v = s.view;
  const view =
    v && [v.cx, v.cy, v.scale].every((n) => typeof n === 'number' && Number.isFinite(n)) && v.scale > 0
      ? v
      : null;
  const index = (n: unknown) => (Number.isSafeInteger(n) && (n as number) >= 0 ? (n as number) : null);
  return { schema: 1, view, cluster: index(s.cluster), feature: index(s.feature) };
}

function saveUi(change: Partial<Omit<UiState, 'schema'>>): void {
  ui = { ...ui, ...change };
  vscode.setState(ui);
}

function post(message: MapToHost): void {
  vscode.postMessage(message);
}

onHostMessage(
  'cluster map',
  (raw) => hostToMap.parse(raw),
  (message) => {
    switch (message.type) {
      case 'database':
        database = message.state;
        if (database.kind !== 'ready') {
          points = null;
          clusters = [];
        }
        break;
      case 'map': {
        const first = points === null;
        points = message.points;
        clusters = message.clusters;
        mapError = null;
        hovered = -1;
        if (ui.cluster !== null && !clusters.some((c) => c.id === ui.cluster)) saveUi({ cluster: null });
        draw();
        if (first && !ui.view) fitTo(allIndices());
        return;
      }
      case 'failed':
        mapError = message.message;
        break;
      case 'focus':
        saveUi({ feature: message.feature });
        draw();
        if (message.cluster !== null) chooseCluster(message.cluster, true);
        else if (message.feature !== null) centreOn(message.feature);
        return;
    }
    draw();
  },
);

// ---- geometry ----

function allIndices(): number[] {
  return points ? points.index.map((_, i) => i) : [];
}

function size(): { w: number; h: number } {
  return { w: canvas?.clientWidth ?? 0, h: canvas?.clientHeight ?? 0 };
}

function view(): View {
  return ui.view ?? { cx: 0, cy: 0, scale: 1 };
}

function toScreen(i: number, v: View, w: number, h: number): [number, number] {
  return [w / 2 + (points!.x[i] - v.cx) * v.scale, h / 2 - (points!.y[i] - v.cy) * v.scale];
}

/** Zooms and pans so that the given points (indices into `points`) fill the canvas with a margin. */
function fitTo(members: readonly number[]): void {
  const { w, h } = size();
  if (!points || members.length === 0 || w === 0 || h === 0) return;
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const i of members) {
    x0 = Math.min(x0, points.x[i]);
    x1 = Math.max(x1, points.x[i]);
    y0 = Math.min(y0, points.y[i]);
    y1 = Math.max(y1, points.y[i]);
  }
  const spanX = Math.max(x1 - x0, 1e-3);
  const spanY = Math.max(y1 - y0, 1e-3);
  const scale = Math.min((w * 0.85) / spanX, (h * 0.85) / spanY);
  setView({ cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, scale });
}

function setView(v: View): void {
  saveUi({ view: v });
  requestDraw();
}

function zoomAt(factor: number, sx?: number, sy?: number): void {
  const { w, h } = size();
  const v = view();
  const px = sx ?? w / 2;
  const py = sy ?? h / 2;
  // The world point under (px, py) stays there.
  const wx = v.cx + (px - w / 2) / v.scale;
  const wy = v.cy - (py - h / 2) / v.scale;
  const scale = Math.max(1e-3, Math.min(1e6, v.scale * factor));
  setView({ cx: wx - (px - w / 2) / scale, cy: wy + (py - h / 2) / scale, scale });
}

function pan(dx: number, dy: number): void {
  const v = view();
  setView({ cx: v.cx - dx / v.scale, cy: v.cy + dy / v.scale, scale: v.scale });
}

function centreOn(feature: number): void {
  const i = points?.index.indexOf(feature) ?? -1;
  if (i < 0) return;
  setView({ ...view(), cx: points!.x[i], cy: points!.y[i] });
}

/** The point nearest to (sx, sy) within HOVER_RADIUS_PX, or -1. */
function pick(sx: number, sy: number): number {
  if (!points) return -1;
  const { w, h } = size();
  const v = view();
  const members = ui.cluster === null ? null : new Set(clusters.find((c) => c.id === ui.cluster)?.members);
  let best = -1;
  let bestD = HOVER_RADIUS_PX * HOVER_RADIUS_PX;
  for (let i = 0; i < points.index.length; i++) {
    const [x, y] = toScreen(i, v, w, h);
    // With a cluster chosen, its members win over the faded points around them.
    const d = (x - sx) ** 2 + (y - sy) ** 2 + (members && !members.has(points.index[i]) ? 16 : 0);
    if (d < bestD) {
      bestD = d;
      best = i;
    }
  }
  return best;
}

// ---- colours ----

function themeKind(): string {
  return document.body.dataset.vscodeThemeKind ?? 'vscode-dark';
}

/** Cluster colours: hues a golden angle apart, with lightness and saturation that read on the theme's background. */
function clusterColour(id: number, alpha = 1): string {
  const kind = themeKind();
  const hue = (id * 137.508 + 200) % 360;
  const [s, l] =
    kind === 'vscode-light'
      ? [70, 40]
      : kind === 'vscode-high-contrast-light'
        ? [100, 30]
        : kind === 'vscode-high-contrast'
          ? [100, 66]
          : [65, 62];
  return `hsl(${hue.toFixed(1)} ${s}% ${l}% / ${alpha})`;
}

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

// ---- drawing the canvas ----

function requestDraw(): void {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => {
    drawQueued = false;
    paint();
  });
}

function paint(): void {
  if (!canvas || !points) return;
  const dpr = window.devicePixelRatio || 1;
  const { w, h } = size();
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = cssVar('--vscode-editor-background', '#1e1e1e');
  ctx.fillRect(0, 0, w, h);
  const v = view();
  const chosen = ui.cluster;
  const faded = chosen === null ? 1 : kindIsHighContrast() ? 0.28 : 0.16;
  // One path per cluster; the chosen cluster last, on top.
  const byCluster = new Map<number, number[]>();
  for (let i = 0; i < points.index.length; i++) {
    const c = points.cluster[i];
    let list = byCluster.get(c);
    if (!list) byCluster.set(c, (list = []));
    list.push(i);
  }
  const order = [...byCluster.keys()].sort((a, b) => (a === chosen ? 1 : b === chosen ? -1 : a - b));
  for (const c of order) {
    const inChosen = chosen === c;
    const r = inChosen ? POINT_RADIUS + 1 : POINT_RADIUS;
    ctx.fillStyle = clusterColour(c, chosen === null || inChosen ? 0.9 : faded);
    ctx.beginPath();
    for (const i of byCluster.get(c)!) {
      const [x, y] = toScreen(i, v, w, h);
      if (x < -r || y < -r || x > w + r || y > h + r) continue;
      ctx.moveTo(x + r, y);
      ctx.arc(x, y, r, 0, Math.PI * 2);
    }
    ctx.fill();
  }
  const foreground = cssVar('--vscode-foreground', '#ccc');
  const marked = ui.feature === null ? -1 : points.index.indexOf(ui.feature);
  for (const [i, ring] of [
    [marked, 7],
    [hovered, 6],
  ] as const) {
    if (i < 0) continue;
    const [x, y] = toScreen(i, v, w, h);
    ctx.strokeStyle = i === marked ? cssVar('--vscode-focusBorder', foreground) : foreground;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(x, y, ring, 0, Math.PI * 2);
    ctx.stroke();
  }
  if (marked >= 0) {
    // The marked feature's number beside its ring, on the theme's background so it reads over points.
    const [x, y] = toScreen(marked, v, w, h);
    const text = `#${points.index[marked]}`;
    ctx.font = `600 ${cssVar('--vscode-font-size', '13px')} ${cssVar('--vscode-font-family', 'sans-serif')}`;
    const width = ctx.measureText(text).width;
    ctx.fillStyle = cssVar('--vscode-editorWidget-background', '#252526');
    ctx.fillRect(x + 10, y - 19, width + 8, 18);
    ctx.fillStyle = foreground;
    ctx.fillText(text, x + 14, y - 5);
  }
}

function kindIsHighContrast(): boolean {
  return themeKind().startsWith('vscode-high-contrast');
}

// ---- pointer and keys ----

let drag: { x: number; y: number; moved: boolean; id: number } | null = null;

function local(event: MouseEvent): [number, number] {
  const rect = canvas!.getBoundingClientRect();
  return [event.clientX - rect.left, event.clientY - rect.top];
}

function onPointerDown(event: PointerEvent): void {
  if (event.button !== 0) return;
  canvas!.setPointerCapture(event.pointerId);
  drag = { x: event.clientX, y: event.clientY, moved: false, id: event.pointerId };
}

function onPointerMove(event: PointerEvent): void {
  if (drag && drag.id === event.pointerId) {
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    if (drag.moved || dx * dx + dy * dy > 9) {
      drag = { ...drag, x: event.clientX, y: event.clientY, moved: true };
      pan(dx, dy);
      hideTooltip();
      return;
    }
  }
  const [sx, sy] = local(event);
  const i = pick(sx, sy);
  if (i !== hovered) {
    hovered = i;
    requestDraw();
  }
  if (i >= 0) showTooltip(i, sx, sy);
  else hideTooltip();
}

function onPointerUp(event: PointerEvent): void {
  if (!drag || drag.id !== event.pointerId) return;
  const moved = drag.moved;
  drag = null;
  if (moved) return;
  const [sx, sy] = local(event);
  const i = pick(sx, sy);
  if (i >= 0) openFeature(points!.index[i]);
}

function onPointerLeave(): void {
  if (hovered >= 0) {
    hovered = -1;
    requestDraw();
  }
  hideTooltip();
}

function onWheel(event: WheelEvent): void {
  event.preventDefault();
  const [sx, sy] = local(event);
  zoomAt(Math.exp(-event.deltaY * 0.0015), sx, sy);
}

function onCanvasKey(event: KeyboardEvent): void {
  const pans: Record<string, [number, number]> = {
    ArrowLeft: [PAN_STEP_PX, 0],
    ArrowRight: [-PAN_STEP_PX, 0],
    ArrowUp: [0, PAN_STEP_PX],
    ArrowDown: [0, -PAN_STEP_PX],
  };
  if (event.key in pans) pan(...pans[event.key]);
  else if (event.key === '+' || event.key === '=') zoomAt(ZOOM_STEP);
  else if (event.key === '-' || event.key === '_') zoomAt(1 / ZOOM_STEP);
  else if (event.key === '0') fitTo(allIndices());
  else if (event.key === 'Escape' && ui.cluster !== null) chooseCluster(null, false);
  else return;
  event.preventDefault();
}

function openFeature(feature: number): void {
  saveUi({ feature });
  requestDraw();
  post({ type: 'openFeature', feature });
}

function showTooltip(i: number, sx: number, sy: number): void {
  const tip = root.querySelector<HTMLElement>('.tooltip');
  if (!tip || !points) return;
  const label = points.label[i];
  tip.querySelector('.index')!.textContent = `#${points.index[i]}`;
  const text = tip.querySelector('.label')!;
  text.textContent = label || 'no label';
  text.classList.toggle('unlabelled', !label);
  tip.querySelector('.cluster')!.textContent = `cluster #${points.cluster[i]}`;
  tip.hidden = false;
  const { w, h } = size();
  // Beside the pointer, flipped to stay inside the canvas.
  const left = sx + 14 + tip.offsetWidth > w ? sx - 14 - tip.offsetWidth : sx + 14;
  const top = sy + 14 + tip.offsetHeight > h ? sy - 14 - tip.offsetHeight : sy + 14;
  tip.style.left = `${Math.max(0, left)}px`;
  tip.style.top = `${Math.max(0, top)}px`;
}

function hideTooltip(): void {
  const tip = root.querySelector<HTMLElement>('.tooltip');
  if (tip) tip.hidden = true;
}

/** Chooses a cluster (null: none), highlights its members and, if asked, zooms to them. */
function chooseCluster(id: number | null, zoom: boolean): void {
  saveUi({ cluster: id });
  draw();
  if (id === null || !points) {
    requestDraw();
    return;
  }
  const members = new Set(clusters.find((c) => c.id === id)?.members ?? []);
  const indices = allIndices().filter((i) => members.has(points!.index[i]));
  if (zoom) fitTo(indices);
  else requestDraw();
  root.querySelector(`#cluster-${id}`)?.scrollIntoView({ block: 'nearest' });
}

// ---- the page ----

function clusterList(): TemplateResult {
  const labels = new Map<number, string>();
  if (points) points.index.forEach((f, i) => labels.set(f, points!.label[i]));
  return html`<aside class="clusters" aria-label="Clusters">
    <h2>Clusters <span class="note">${clusters.length}</span></h2>
    <div class="cluster-list" role="list">
      ${clusters.map((c) => {
        const chosen = c.id === ui.cluster;
        return html`<div class="cluster-item ${chosen ? 'chosen' : ''}" role="listitem">
          <button
            id=${`cluster-${c.id}`}
            class="cluster"
            aria-pressed=${chosen ? 'true' : 'false'}
            title=${chosen ? 'Show all clusters again' : 'Highlight this cluster and zoom to it'}
            @click=${() => chooseCluster(chosen ? null : c.id, !chosen)}
          >
            <span class="swatch" data-cluster=${c.id} aria-hidden="true"></span>
            <span class="name">Cluster #${c.id}: ${c.label || 'unlabelled'}</span>
            <span class="size">(${c.size.toLocaleString('en-US')})</span>
          </button>
          ${chosen ? memberList(c, labels) : nothing}
        </div>`;
      })}
    </div>
  </aside>`;
}

function memberList(c: FeatureClusterMessage, labels: Map<number, string>): TemplateResult {
  const shown = c.members.slice(0, MEMBERS_SHOWN);
  return html`<div class="members" role="list" aria-label=${`Features of cluster ${c.id}, the densest first`}>
    ${shown.map(
      (f) =>
        html`<button
          class="member ${f === ui.feature ? 'marked' : ''}"
          role="listitem"
          title="Open this feature's dashboard"
          @click=${() => openFeature(f)}
          @focus=${() => {
            saveUi({ feature: f });
            requestDraw();
          }}
        >
          <span class="index">#${f}</span>
          <span class="label ${labels.get(f) ? '' : 'unlabelled'}">${labels.get(f) || 'no label'}</span>
        </button>`,
    )}
    ${c.members.length > shown.length ? html`<p class="hint">and ${c.members.length - shown.length} more on the map</p>` : nothing}
  </div>`;
}

function mapPane(): TemplateResult {
  const n = points?.index.length ?? 0;
  return html`<div class="map-pane">
    <div class="canvas-wrap">
      <canvas
        tabindex="0"
        role="img"
        aria-label=${`Map of ${n.toLocaleString('en-US')} features in ${clusters.length} clusters. Arrow keys pan, plus and minus zoom, 0 shows everything; the cluster list names the features.`}
        @pointerdown=${onPointerDown}
        @pointermove=${onPointerMove}
        @pointerup=${onPointerUp}
        @pointerleave=${onPointerLeave}
        @wheel=${onWheel}
        @keydown=${onCanvasKey}
      ></canvas>
      <div class="tooltip" role="tooltip" hidden>
        <span class="index"></span> <span class="label"></span>
        <span class="cluster"></span>
      </div>
      <div class="zoom" role="toolbar" aria-label="Zoom">
        <vscode-button secondary title="Zoom in (+)" aria-label="Zoom in" @click=${() => zoomAt(ZOOM_STEP)}
          >+</vscode-button
        >
        <vscode-button
          secondary
          title="Zoom out (−)"
          aria-label="Zoom out"
          @click=${() => zoomAt(1 / ZOOM_STEP)}
          >−</vscode-button
        >
        <vscode-button secondary title="Show all features (0)" @click=${() => fitTo(allIndices())}
          >Fit</vscode-button
        >
      </div>
    </div>
    <p class="hint help">
      Scroll to zoom, drag to pan, click a point for its dashboard. Each point is a feature; nearby points
      have similar decoder directions.
    </p>
  </div>`;
}

function draw(): void {
  const ready = database?.kind === 'ready';
  render(
    ready && points
      ? html`<div class="layout">${mapPane()} ${clusterList()}</div>`
      : ready && mapError
        ? html`<p class="error" role="alert">${mapError}</p>`
        : ready
          ? html`<vscode-progress-bar aria-label="Loading the map"></vscode-progress-bar>`
          : databasePane(database, (command) => post({ type: 'run', command })),
    root,
  );
  for (const el of root.querySelectorAll<HTMLElement>('.swatch[data-cluster]')) {
    el.style.background = clusterColour(Number(el.dataset.cluster));
  }
  const c = root.querySelector('canvas');
  if (c !== canvas) {
    canvas = c;
    if (canvas) resize.observe(canvas);
  }
  requestDraw();
}

/** The canvas's size at the last resize, so that a resize keeps the same stretch of the map in view. */
let lastSize = { w: 0, h: 0 };
const resize = new ResizeObserver(() => {
  const now = size();
  if (points && !ui.view) fitTo(allIndices());
  else if (ui.view && lastSize.w > 0 && lastSize.h > 0 && now.w > 0 && now.h > 0) {
    const factor = Math.min(now.w / lastSize.w, now.h / lastSize.h);
    if (Math.abs(factor - 1) > 1e-3) setView({ ...ui.view, scale: ui.view.scale * factor });
  }
  if (now.w > 0 && now.h > 0) lastSize = now;
  requestDraw();
});

// The theme changed: the swatches and the canvas take the new colours.
new MutationObserver(() => draw()).observe(document.body, {
  attributes: true,
  attributeFilter: ['class', 'data-vscode-theme-kind'],
});

draw();
post({ type: 'ready' });
