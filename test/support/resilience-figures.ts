import { appendFile } from 'node:fs/promises';

/**
 * Prints a scenario's figures and, when TESSERA_RESILIENCE_FIGURES names a file, appends them to it
 * as one JSON line (CI shows that file after the run).
 */
export async function recordFigures(scenario: string, figures: Record<string, unknown>): Promise<void> {
  const line = JSON.stringify({ scenario, ...figures });
  console.log(`${scenario}: ${line}`);
  const file = process.env.TESSERA_RESILIENCE_FIGURES;
  if (file) await appendFile(file, `${line}\n`);
}
