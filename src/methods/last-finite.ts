// The adapted state that last gave finite outputs, kept on the device so that
// a frame whose outputs are NaN or infinite (a diverged update, an overflow)
// can put it back without any extra GPU→CPU read.
//
// A step copies the state it starts from into `candidate` before its
// forward (Tent updates during the forward, so after it is too late). Its one
// read then says whether that forward's outputs were finite: if so, the
// candidate becomes the state to go back to (a swap, no copy); if not, the
// last confirmed one is put back. Two fixed sets of variables, made on the
// first step, so the tensor count stays flat.
import * as tf from '@tensorflow/tfjs-core';

interface Slot {
  theta: tf.Variable;
  momentum: tf.Variable;
  state: Map<string, tf.Variable>;
}

/** The adapted state as the adapter holds it: θ (flat), the momentum buffer, method state by name. */
export interface AdaptedState {
  theta: tf.Tensor;
  momentum: tf.Tensor;
  state: ReadonlyMap<string, tf.Tensor>;
}

/** Variables shaped like `s` (tidy frees the zeros they are made from, never the variables). */
function slotLike(s: AdaptedState): Slot {
  const like = (t: tf.Tensor) => tf.tidy(() => tf.variable(tf.zerosLike(t), false));
  return { theta: like(s.theta), momentum: like(s.momentum), state: new Map([...s.state].map(([k, t]) => [k, like(t)] as const)) };
}

function copyInto(slot: Slot, s: AdaptedState): void {
  slot.theta.assign(s.theta);
  slot.momentum.assign(s.momentum);
  for (const [k, t] of s.state) slot.state.get(k)!.assign(t);
}

export class LastFinite {
  private confirmed: Slot | undefined;
  private candidate: Slot | undefined;
  /** Whether `confirmed` holds a state that gave finite outputs since the last import or reset. */
  private valid = false;

  /** Copies the state a step starts from. Inside tf.tidy. */
  take(s: AdaptedState): void {
    this.candidate ??= slotLike(s);
    this.confirmed ??= slotLike(s);
    copyInto(this.candidate, s);
  }

  /** The step's outputs were finite: what it started from is the state to go back to. */
  confirm(): void {
    [this.confirmed, this.candidate] = [this.candidate, this.confirmed];
    this.valid = this.confirmed !== undefined;
  }

  /** After an import or a reset the state kept no longer belongs to the adapter's history. */
  forget(): void {
    this.valid = false;
  }

  /** The last state that gave finite outputs, or undefined when none is known (go back to the source). */
  get last(): AdaptedState | undefined {
    return this.valid ? this.confirmed : undefined;
  }

  dispose(): void {
    for (const s of [this.confirmed, this.candidate]) if (s) tf.dispose([s.theta, s.momentum, ...s.state.values()]);
    this.confirmed = this.candidate = undefined;
    this.valid = false;
  }
}
