// Every model family, one line each. The loader asks them in turn which one
// a file's tensors are (the first that claims it builds it); the engine and
// the methods see only the Backbone it builds. Adding a family is its own
// file (a Backbone and a Family) and one line here (docs/contributing.md).
import type { Family } from './family';
import { convNeXtFamily } from './convnext';
import { resnetGnFamily } from './resnet-gn';
import { vitFamily } from './vit';

export type { Family };

/** The families in the order they are asked. */
export const FAMILIES: readonly Family[] = [
  resnetGnFamily,
  convNeXtFamily,
  // The ViT last: a file no other family claims is read as one, and its checks say what it lacks.
  vitFamily,
];

/** The family of a file with these tensor names. */
export function familyOf(names: ReadonlySet<string>): Family {
  return FAMILIES.find((f) => f.detect(names))!;
}
