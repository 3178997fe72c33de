// Every frame's outcome for scoring (its label, the prediction, the
// reference's), kept in a fixed ring of columns so an hour-long session costs
// a few MB and no garbage per frame.
import type { FrameRecords } from './engine-types';

/** Frames kept in the record ring: an hour at 25 frames per second. */
export const RECORD_CAPACITY = 90_000;

const COLUMNS = ['frame', 'step', 'label', 'predicted', 'referenceInput', 'referenceClean', 'tag'] as const;

export type FrameRecord = Record<(typeof COLUMNS)[number], number>;

export class RecordRing {
  private readonly cols: Int32Array[];
  private start = 0;
  private size = 0;
  private dropped = 0;

  constructor(readonly capacity = RECORD_CAPACITY) {
    this.cols = COLUMNS.map(() => new Int32Array(capacity));
  }

  push(r: FrameRecord): void {
    const at = (this.start + this.size) % this.capacity;
    COLUMNS.forEach((c, i) => (this.cols[i]![at] = r[c]));
    if (this.size < this.capacity) this.size++;
    else {
      this.start = (this.start + 1) % this.capacity;
      this.dropped++;
    }
  }

  clear(): void {
    this.start = 0;
    this.size = 0;
    this.dropped = 0;
  }

  /** Oldest first. */
  records(): FrameRecords {
    const column = (i: number) => {
      const out = new Array<number>(this.size);
      for (let k = 0; k < this.size; k++) out[k] = this.cols[i]![(this.start + k) % this.capacity]!;
      return out;
    };
    const [frame, step, label, predicted, referenceInput, referenceClean, tag] = COLUMNS.map((_, i) => column(i)) as number[][];
    return {
      frame: frame!,
      step: step!,
      label: label!,
      predicted: predicted!,
      referenceInput: referenceInput!,
      referenceClean: referenceClean!,
      tag: tag!,
      dropped: this.dropped,
      capacity: this.capacity,
    };
  }
}
