// Owns the list of scenarios `npm run bench -- <scenario>` knows. A new scenario is a module
// exporting defineScenario({...}), added to this list.
import { cpuScenario } from './cpu.ts';
import { emailsScenario } from './emails.ts';
import { importScenario } from './import.ts';
import { queueScenario } from './queue.ts';
import { rushScenario } from './rush.ts';
import type { RegisteredScenario } from './scenario.ts';
import { seedScenario } from './seed.ts';

export const SCENARIOS: readonly RegisteredScenario[] = [seedScenario, rushScenario, queueScenario, importScenario, cpuScenario, emailsScenario];

export function findScenario(name: string): RegisteredScenario | undefined {
  return SCENARIOS.find((scenario) => scenario.name === name);
}
