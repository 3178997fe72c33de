// Live uPlot charts over fixed-size ring buffers: an hour-long session keeps
// the last `capacity` points per chart and nothing more, and a redraw costs
// the same at minute one and at minute sixty.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** x plus k columns of y, oldest overwritten first. NaN marks "no value" (a gap). */
export class Ring {
  private readonly xs: Float64Array;
  private readonly ys: Float64Array[];
  private start = 0;
  private size = 0;

  constructor(
    readonly capacity: number,
    columns: number,
  ) {
    this.xs = new Float64Array(capacity);
    this.ys = Array.from({ length: columns }, () => new Float64Array(capacity));
  }

  get length(): number {
    return this.size;
  }

  push(x: number, values: ReadonlyArray<number | null | undefined>): void {
    const at = (this.start + this.size) % this.capacity;
    this.xs[at] = x;
    for (let c = 0; c < this.ys.length; c++) {
      const v = values[c];
      this.ys[c]![at] = v === null || v === undefined ? NaN : v;
    }
    if (this.size < this.capacity) this.size++;
    else this.start = (this.start + 1) % this.capacity;
  }

  /** Changes the newest value of column `c` at `x` (a late value, e.g. a gradient norm reported one step later). */
  set(x: number, c: number, value: number): boolean {
    for (let i = this.size - 1; i >= 0 && i >= this.size - 8; i--) {
      const at = (this.start + i) % this.capacity;
      if (this.xs[at] === x) {
        this.ys[c]![at] = value;
        return true;
      }
    }
    return false;
  }

  clear(): void {
    this.start = 0;
    this.size = 0;
  }

  /** Oldest first, gaps as null (uPlot's gap marker). */
  aligned(): uPlot.AlignedData {
    const x = new Array<number>(this.size);
    const cols = this.ys.map(() => new Array<number | null>(this.size));
    for (let i = 0; i < this.size; i++) {
      const at = (this.start + i) % this.capacity;
      x[i] = this.xs[at]!;
      for (let c = 0; c < cols.length; c++) {
        const v = this.ys[c]![at]!;
        cols[c]![i] = Number.isNaN(v) ? null : v;
      }
    }
    return [x, ...cols] as uPlot.AlignedData;
  }

  /** Number of non-gap values in column c. */
  count(c: number): number {
    let n = 0;
    for (let i = 0; i < this.size; i++) if (!Number.isNaN(this.ys[c]![(this.start + i) % this.capacity]!)) n++;
    return n;
  }
}

/** Bounded list of x positions where a reset happened. */
export class Markers {
  readonly items: Array<{ x: number; manual: boolean }> = [];
  constructor(private readonly capacity = 200) {}
  add(x: number, manual: boolean): void {
    this.items.push({ x, manual });
    if (this.items.length > this.capacity) this.items.shift();
  }
  clear(): void {
    this.items.length = 0;
  }
}

export interface SeriesSpec {
  label: string;
  stroke: string;
  width?: number;
  dash?: number[];
  /** Draw dots, no line (sparse series such as per-update values). */
  dots?: boolean;
  /** Connect across gaps. */
  spanGaps?: boolean;
}

export interface LivePlotSpec {
  el: HTMLElement;
  xLabel: string;
  yLabel: string;
  series: SeriesSpec[];
  /** Fixed y range, or a function of the data's range. */
  yRange?: [number, number] | ((min: number, max: number) => [number, number]);
  height?: number;
  capacity?: number;
  markers: Markers;
}

export class LivePlot {
  readonly ring: Ring;
  readonly plot: uPlot;
  private dirty = false;

  constructor(readonly spec: LivePlotSpec) {
    this.ring = new Ring(spec.capacity ?? 1200, spec.series.length);
    const markers = spec.markers;
    const yRange = spec.yRange;
    const opts: uPlot.Options = {
      width: Math.max(200, spec.el.clientWidth),
      height: spec.height ?? 108,
      // Not live, and clicks do nothing: which series show is the page's choice (side by side, camera).
      legend: { show: true, live: false },
      cursor: { show: false },
      scales: {
        x: { time: false },
        y: yRange === undefined ? {} : { range: typeof yRange === 'function' ? (_u, min, max) => yRange(min, max) : yRange },
      },
      axes: [
        { label: spec.xLabel, labelSize: 16, labelGap: 0, size: 36, font: '11px system-ui', labelFont: '11px system-ui' },
        { label: spec.yLabel, labelSize: 16, labelGap: 0, size: 44, font: '11px system-ui', labelFont: '11px system-ui' },
      ],
      series: [
        { label: spec.xLabel },
        ...spec.series.map((s): uPlot.Series => ({
          label: s.label,
          stroke: s.stroke,
          width: s.dots ? 1 : (s.width ?? 1.5),
          ...(s.dash ? { dash: s.dash } : {}),
          spanGaps: s.spanGaps ?? false,
          points: s.dots ? { show: true, size: 5, width: 0, fill: s.stroke, stroke: s.stroke } : { show: false },
          ...(s.dots ? { paths: () => null } : {}),
        })),
      ],
      hooks: {
        draw: [
          (u) => {
            if (markers.items.length === 0) return;
            const { ctx, bbox } = u;
            ctx.save();
            ctx.lineWidth = Math.max(1, devicePixelRatio);
            for (const m of markers.items) {
              const px = u.valToPos(m.x, 'x', true);
              if (px < bbox.left || px > bbox.left + bbox.width) continue;
              ctx.strokeStyle = '#dc2626';
              ctx.setLineDash(m.manual ? [4 * devicePixelRatio, 3 * devicePixelRatio] : []);
              ctx.beginPath();
              ctx.moveTo(Math.round(px) + 0.5, bbox.top);
              ctx.lineTo(Math.round(px) + 0.5, bbox.top + bbox.height);
              ctx.stroke();
            }
            ctx.restore();
          },
        ],
      },
    };
    this.plot = new uPlot(opts, this.ring.aligned(), spec.el);
  }

  push(x: number, values: ReadonlyArray<number | null | undefined>): void {
    this.ring.push(x, values);
    this.dirty = true;
  }

  set(x: number, c: number, value: number): void {
    if (this.ring.set(x, c, value)) this.dirty = true;
  }

  touch(): void {
    this.dirty = true;
  }

  clear(): void {
    this.ring.clear();
    this.dirty = true;
  }

  /** Redraws when something changed since the last call; returns whether it did. */
  render(): boolean {
    if (!this.dirty) return false;
    this.dirty = false;
    this.plot.setData(this.ring.aligned());
    return true;
  }

  resize(): void {
    const w = Math.max(200, this.spec.el.clientWidth);
    if (w !== this.plot.width) this.plot.setSize({ width: w, height: this.plot.height });
  }

  /** Shows or hides a series, legend entry included (the page decides, not legend clicks). */
  setShown(series: number, show: boolean): void {
    this.plot.setSeries(series + 1, { show });
    const row = this.legendRow(series);
    if (row) row.style.display = show ? '' : 'none';
  }

  private legendRow(series: number): HTMLElement | undefined {
    const label = String(this.plot.series[series + 1]?.label ?? '');
    for (const cell of this.spec.el.querySelectorAll<HTMLElement>('.u-legend .u-series .u-label')) {
      if (cell.textContent === label) return cell.closest<HTMLElement>('.u-series') ?? undefined;
    }
    return undefined;
  }

  setLabel(series: number, label: string): void {
    const s = this.plot.series[series + 1];
    if (!s || s.label === label) return;
    const before = String(s.label);
    s.label = label;
    // uPlot writes legend labels once; change the text of the matching entry in place.
    for (const cell of this.spec.el.querySelectorAll('.u-legend .u-series .u-label')) {
      if (cell.textContent === before) {
        cell.textContent = label;
        break;
      }
    }
  }
}

/** A fixed-length window of booleans (as 0/1) with its running sum. */
export class RollingRate {
  private readonly buf: Uint8Array;
  private start = 0;
  private size = 0;
  private sum = 0;
  constructor(readonly window: number) {
    this.buf = new Uint8Array(window);
  }
  push(ok: boolean): number {
    const v = ok ? 1 : 0;
    if (this.size === this.window) {
      this.sum -= this.buf[this.start]!;
      this.buf[this.start] = v;
      this.start = (this.start + 1) % this.window;
    } else {
      this.buf[(this.start + this.size) % this.window] = v;
      this.size++;
    }
    this.sum += v;
    return this.sum / this.size;
  }
  clear(): void {
    this.start = 0;
    this.size = 0;
    this.sum = 0;
  }
}
