import { appendFileSync } from 'node:fs';

// The figures a resilience scenario measured: one line printed, and one JSON line appended to the
// file named by TESSERA_RESILIENCE_FIGURES (.ci/run prints that file after the run).

export function reportFigures(summary: string, figures: Record<string, unknown>): void {
  console.log(summary);
  const file = process.env.TESSERA_RESILIENCE_FIGURES;
  if (file) appendFileSync(file, `${JSON.stringify(figures)}\n`);
}
