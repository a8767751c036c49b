import { describe, expect, it } from '@jest/globals';
import { Counter, Histogram, Registry } from 'prom-client';
import { hotCounter, hotHistogram } from '../../../src/metrics/hot-metrics.ts';

// The hot-path metrics against prom-client's own: the same observations give the same text and
// the same JSON (what the workers' supervisor adds up), and a reset clears them alike.

const BUCKETS = [0.001, 0.01, 0.1, 1];
const OBSERVED = [0.0005, 0.002, 0.002, 0.05, 0.5, 3, 0.01];

function both() {
  const ours = new Registry();
  const theirs = new Registry();
  const counter = { help: 'Things counted.', labelNames: ['route', 'status'] };
  const histogram = { help: 'Things timed.', labelNames: ['route'], buckets: BUCKETS };
  return {
    ours,
    theirs,
    hot: { counter: hotCounter(ours, { name: 'c_total', ...counter }), histogram: hotHistogram(ours, { name: 'h_seconds', ...histogram }) },
    reference: { counter: new Counter({ name: 'c_total', ...counter, registers: [theirs] }), histogram: new Histogram({ name: 'h_seconds', ...histogram, registers: [theirs] }) },
  };
}

describe('hot-path metrics', () => {
  it('read as prom-client reads its own counters and histograms', async () => {
    const { ours, theirs, hot, reference } = both();
    for (const [route, status] of [['/a', '200'], ['/a', '200'], ['/b', '404'], ['/a "quoted"\\', '500']] as const) {
      hot.counter.labels(route, status).inc();
      reference.counter.labels(route, status).inc();
    }
    hot.counter.labels('/a', '200').inc(3);
    reference.counter.labels('/a', '200').inc(3);
    for (const value of OBSERVED) {
      hot.histogram.labels('/a').observe(value);
      reference.histogram.labels('/a').observe(value);
    }
    hot.histogram.labels('/b').observe(0.2);
    reference.histogram.labels('/b').observe(0.2);

    expect(await ours.metrics()).toBe(await theirs.metrics());
    // The JSON the supervisor of workers adds up: each value's labels, value and series name.
    const values = async (registry: Registry) =>
      (await registry.getMetricsAsJSON())
        .map((metric) => ({
          name: metric.name,
          aggregator: metric.aggregator,
          values: (metric.values as { labels: object; value: number; metricName?: string }[])
            .map(({ labels, value, metricName }) => JSON.stringify({ labels: Object.entries(labels).sort(), value, metricName: metricName ?? metric.name }))
            .sort(),
        }));
    expect(await values(ours)).toEqual(await values(theirs));

    ours.resetMetrics();
    theirs.resetMetrics();
    hot.counter.labels('/a', '200').inc();
    reference.counter.labels('/a', '200').inc();
    expect(await ours.metrics()).toMatch(/^c_total\{route="\/a",status="200"\} 1$/m);
    expect(await theirs.metrics()).toMatch(/^c_total\{route="\/a",status="200"\} 1$/m);
  });
});
