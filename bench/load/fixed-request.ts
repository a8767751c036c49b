/** A request sent again and again by a load generator (autocannon.ts, wrk.ts), and what every good answer contains. */
export interface FixedRequest {
  url: string;
  method: string;
  headers?: Record<string, string>;
  body?: string;
  /** A text every good answer contains (e.g. `"active":true`). */
  expect: string;
}
