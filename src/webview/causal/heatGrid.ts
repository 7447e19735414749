/**
 * A canvas heat map of a patching grid: rows (layers, or layer × head)
 * against columns (token positions with their text, or heads), in diverging
 * colours around 0 (the corrupted run) with 1 (the clean run) at full
 * strength, a legend, and the cell under the pointer (or the keyboard's
 * cell: arrow keys move it) described in a caption. A canvas cannot read CSS
 * variables, so the theme's colours are read from the computed style at each draw.
 */
import { GridView } from '../causalProtocol';

const CELL_MIN = 26;
const ROW_HEIGHT = 26;
const LEFT = 56;
const TOP = 8;
/** Column labels slant up at this angle from the horizontal, ending under their column. */
const LABEL_ANGLE = Math.PI / 3;
const LABEL_MAX_CHARS = 12;

export function themeColour(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

/** rgb triplet of a CSS colour the canvas understands. */
function rgbOf(colour: string): [number, number, number] {
  const ctx = document.createElement('canvas').getContext('2d')!;
  ctx.fillStyle = colour;
  const hex = ctx.fillStyle;
  if (/^#[0-9a-f]{6}$/i.test(hex)) {
    return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
  }
  const m = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(hex);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [128, 128, 128];
}

/** The diverging scale: negative toward blue, positive toward red, 0 the background. */
export function divergingColour(v: number, scale: number): string {
  const bg = rgbOf(themeColour('--vscode-editor-background', '#1e1e1e'));
  const pos = rgbOf(themeColour('--vscode-charts-red', '#f14c4c'));
  const neg = rgbOf(themeColour('--vscode-charts-blue', '#3794ff'));
  const t = Math.max(-1, Math.min(1, v / scale));
  const to = t >= 0 ? pos : neg;
  const a = Math.abs(t);
  const mix = bg.map((b, i) => Math.round(b + (to[i] - b) * a));
  return `rgb(${mix[0]}, ${mix[1]}, ${mix[2]})`;
}

export class HeatGrid {
  private readonly canvas = document.createElement('canvas');
  private readonly caption = document.createElement('p');
  private focusCell = 0;
  private readonly resize = new ResizeObserver(() => this.draw());

  constructor(
    readonly host: HTMLElement,
    private readonly grid: GridView,
    /** What a cell is, in words, for the caption. */
    private readonly describe: (row: number, column: number) => string,
    label: string,
  ) {
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', `${label}; arrow keys move between cells`);
    this.caption.className = 'caption';
    this.caption.setAttribute('aria-live', 'polite');
    host.append(this.canvas, this.caption);
    this.canvas.addEventListener('mousemove', (e) => {
      const cell = this.cellAt(e.offsetX, e.offsetY);
      this.caption.textContent = cell ? this.text(cell.row, cell.column) : this.hint();
    });
    this.canvas.addEventListener('mouseleave', () => (this.caption.textContent = this.hint()));
    this.canvas.addEventListener('keydown', (e) => this.key(e));
    this.canvas.addEventListener('focus', () => this.showFocus());
    this.resize.observe(host);
    this.caption.textContent = this.hint();
  }

  destroy(): void {
    this.resize.disconnect();
  }

  get rows(): number {
    return this.grid.rowLabels.length;
  }

  get columns(): number {
    return this.grid.columnLabels.length;
  }

  draw(): void {
    const width = Math.max(300, this.host.clientWidth);
    const cell = Math.max(CELL_MIN, Math.floor((width - LEFT - 8) / Math.max(1, this.columns)));
    const w = LEFT + cell * this.columns + 8;
    const fg = themeColour('--vscode-foreground', '#cccccc');
    const font = `${themeColour('--vscode-font-size', '13px')} ${themeColour('--vscode-font-family', 'sans-serif')}`;
    const mono = `12px ${themeColour('--vscode-editor-font-family', 'monospace')}`;
    const labels = this.grid.columnLabels.map((l) =>
      l.length > LABEL_MAX_CHARS ? `${l.slice(0, LABEL_MAX_CHARS - 1)}…` : l,
    );
    // Room below the cells for the longest slanted label, so that none is cut off.
    const measure = this.canvas.getContext('2d')!;
    measure.font = mono;
    const longest = Math.max(0, ...labels.map((l) => measure.measureText(l).width));
    const h = TOP + ROW_HEIGHT * this.rows + 6 + Math.ceil(longest * Math.sin(LABEL_ANGLE)) + 12;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = w * dpr;
    this.canvas.height = h * dpr;
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h}px`;
    const ctx = this.canvas.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const scale = this.scale();
    for (let r = 0; r < this.rows; r++) {
      for (let c = 0; c < this.columns; c++) {
        ctx.fillStyle = divergingColour(this.grid.values[r * this.columns + c], scale);
        ctx.fillRect(LEFT + c * cell + 0.5, TOP + r * ROW_HEIGHT + 0.5, cell - 1, ROW_HEIGHT - 1);
      }
    }
    ctx.fillStyle = fg;
    ctx.font = font;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'right';
    this.grid.rowLabels.forEach((l, r) => ctx.fillText(l, LEFT - 6, TOP + r * ROW_HEIGHT + ROW_HEIGHT / 2));
    ctx.font = mono;
    ctx.textAlign = 'right';
    labels.forEach((l, c) => {
      ctx.save();
      ctx.translate(LEFT + c * cell + cell / 2, TOP + this.rows * ROW_HEIGHT + 6);
      ctx.rotate(-LABEL_ANGLE);
      ctx.fillText(l, 0, 0);
      ctx.restore();
    });
    // The keyboard's cell, outlined while the canvas has the focus.
    if (document.activeElement === this.canvas) {
      const r = Math.floor(this.focusCell / this.columns);
      const c = this.focusCell % this.columns;
      ctx.strokeStyle = themeColour('--vscode-focusBorder', fg);
      ctx.lineWidth = 2;
      ctx.strokeRect(LEFT + c * cell + 1, TOP + r * ROW_HEIGHT + 1, cell - 2, ROW_HEIGHT - 2);
    }
    this.cellWidth = cell;
  }

  private cellWidth = CELL_MIN;

  /** The colour scale's end: 1 (the clean run), or more where a patch overshoots. */
  scale(): number {
    return Math.max(1, ...this.grid.values.map((v) => Math.abs(v)));
  }

  private cellAt(x: number, y: number): { row: number; column: number } | null {
    const column = Math.floor((x - LEFT) / this.cellWidth);
    const row = Math.floor((y - TOP) / ROW_HEIGHT);
    if (column < 0 || column >= this.columns || row < 0 || row >= this.rows) return null;
    return { row, column };
  }

  private text(row: number, column: number): string {
    const k = row * this.columns + column;
    return `${this.describe(row, column)}: ${this.grid.values[k].toFixed(3)} (logit difference ${this.grid.logitDiffs[k].toFixed(3)})`;
  }

  private hint(): string {
    return 'Point at a cell (or focus the map and use the arrow keys) for its value.';
  }

  private showFocus(): void {
    this.draw();
    this.caption.textContent = this.text(
      Math.floor(this.focusCell / this.columns),
      this.focusCell % this.columns,
    );
  }

  private key(e: KeyboardEvent): void {
    const moves: Record<string, number> = {
      ArrowLeft: -1,
      ArrowRight: 1,
      ArrowUp: -this.columns,
      ArrowDown: this.columns,
    };
    const step = moves[e.key];
    if (step === undefined) return;
    e.preventDefault();
    const next = this.focusCell + step;
    if (next < 0 || next >= this.rows * this.columns) return;
    if (Math.abs(step) === 1 && Math.floor(next / this.columns) !== Math.floor(this.focusCell / this.columns))
      return;
    this.focusCell = next;
    this.showFocus();
    // Keep the keyboard's cell in view when the map scrolls sideways.
    const left = LEFT + (next % this.columns) * this.cellWidth;
    const view = this.host;
    if (left < view.scrollLeft + LEFT) view.scrollLeft = Math.max(0, left - LEFT);
    else if (left + this.cellWidth > view.scrollLeft + view.clientWidth)
      view.scrollLeft = left + this.cellWidth - view.clientWidth;
  }
}
