import { appendFileSync } from 'node:fs';

/**
 * Records a figure a resilience test measured (a latency, the outcomes of a race): printed, and
 * appended as one JSON line to the file named by TESSERA_RESILIENCE_FIGURES when it is set, so a
 * run can collect them for the report.
 */
export function recordFigure(figure: Record<string, unknown>): void {
  const line = JSON.stringify(figure);
  process.stdout.write(`resilience figure: ${line}\n`);
  const file = process.env.TESSERA_RESILIENCE_FIGURES;
  if (file) appendFileSync(file, `${line}\n`);
}
