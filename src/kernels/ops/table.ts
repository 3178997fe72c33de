// Every op in tfjs ops: the implementation any backend runs where its own
// table lacks the op.
import type { Kernels } from '../types';
import { backwardOps } from './backward';
import { convBackwardOps } from './conv-backward';
import { normOps } from './norm';
import { updateOps } from './update';
import { vitOps } from './vit';

export const opsTable: Kernels = { ...updateOps, ...vitOps, ...backwardOps, ...convBackwardOps, ...normOps };
