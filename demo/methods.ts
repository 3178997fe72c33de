// The methods the engine runs, as the cards its worker sends (engine-types.ts):
// the page lists them and reads their defaults from them, and so never loads
// src/methods, whose code would bring tfjs onto the page's own thread.
import type { MethodName } from '../src/methods/registry';
import type { MethodCard } from '../src/runtime/engine-types';
import { knownMethod, methodChoices, tunedOptions } from './config';
import { $ } from './dom';
import { config, syncControlClasses } from './state';

/** The methods the engine runs (empty until its worker answers). */
let cards: MethodCard[] = [];

/** Fills the method picker from the engine's cards, and drops a method the engine does not run (a ?method= typo). */
export function setMethodCards(next: MethodCard[]): void {
  cards = next;
  const picker = $<HTMLSelectElement>('method');
  picker.replaceChildren(...methodChoices(cards).map((c) => Object.assign(document.createElement('option'), { value: c.name, textContent: c.text })));
  picker.disabled = false;
  config.method = knownMethod(config.method, cards);
  picker.value = config.method;
  if (config.lr === null) $<HTMLInputElement>('lr').value = String(tunedOptions(methodCard(config.method)).lr);
  syncControlClasses();
}

/** A method's card; config.method is always one of them once the cards are in (knownMethod). */
export function methodCard(method: MethodName): MethodCard {
  const card = cards.find((c) => c.name === method);
  if (!card) throw new Error(`the engine runs no method '${method}'`);
  return card;
}

/** How the demo names a method. */
export const methodLabel = (method: MethodName): string => cards.find((c) => c.name === method)?.label ?? method;
