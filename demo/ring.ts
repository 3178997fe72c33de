// The fixed-size buffers behind the live charts and scores: an hour-long
// session keeps the last `capacity` points per chart and the last `window`
// outcomes per rate, and nothing more.
import type uPlot from 'uplot';

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
