import type { Registry } from 'prom-client';

// Counters and histograms for the hot paths (every request, every store command): a child is a
// plain object, and counting is an addition, where prom-client's own metrics hash their labels
// on every call. They are registered as prom-client metrics and read only at a scrape, in
// prom-client's format, so the text, promtool and the workers' aggregation see no difference.

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

interface Declared {
  name: string;
  help: string;
  labelNames: readonly string[];
}

/** The children of a metric, one per label set, found by the label values in order. */
function childrenOf<C>(labelNames: readonly string[], make: (labels: Record<string, string>) => C) {
  const byKey = new Map<string, { labels: Record<string, string>; child: C }>();
  return {
    all: () => byKey.values(),
    get(values: readonly string[]): C {
      const key = values.join('\u0000');
      let entry = byKey.get(key);
      if (!entry) {
        const labels = Object.fromEntries(labelNames.map((name, i) => [name, values[i] ?? '']));
        entry = { labels, child: make(labels) };
        byKey.set(key, entry);
      }
      return entry.child;
    },
  };
}

function register(registry: Registry, name: string, help: string, type: 'counter' | 'histogram', values: () => MetricValue[], reset: () => void): void {
  registry.registerMetric({
    name,
    help,
    type,
    aggregator: 'sum',
    get: async () => ({ name, help, type, aggregator: 'sum', values: values() }),
    reset,
  } as unknown as Parameters<Registry['registerMetric']>[0]);
}

export interface HotCounter {
  /** The child of these label values (in the order of labelNames); keep it to count with it. */
  labels(...values: string[]): { inc(by?: number): void };
}

export function hotCounter(registry: Registry, { name, help, labelNames }: Declared): HotCounter {
  const children = childrenOf(labelNames, () => ({
    value: 0,
    inc(by = 1) {
      this.value += by;
    },
  }));
  register(
    registry,
    name,
    help,
    'counter',
    () => [...children.all()].map(({ labels, child }) => ({ labels, value: child.value })),
    () => {
      for (const { child } of children.all()) child.value = 0;
    },
  );
  return { labels: (...values) => children.get(values) };
}

export interface HotHistogram {
  labels(...values: string[]): { observe(value: number): void };
}

export function hotHistogram(registry: Registry, { name, help, labelNames, buckets }: Declared & { buckets: readonly number[] }): HotHistogram {
  const children = childrenOf(labelNames, () => ({
    counts: new Array<number>(buckets.length).fill(0),
    sum: 0,
    count: 0,
    observe(value: number) {
      this.sum += value;
      this.count += 1;
      for (let i = 0; i < buckets.length; i++) {
        if (value <= buckets[i]!) {
          this.counts[i]! += 1;
          return;
        }
      }
    },
  }));
  register(
    registry,
    name,
    help,
    'histogram',
    () =>
      [...children.all()].flatMap(({ labels, child }) => {
        let cumulative = 0;
        return [
          ...buckets.map((le, i) => ({ labels: { le, ...labels }, value: (cumulative += child.counts[i]!), metricName: `${name}_bucket` })),
          { labels: { le: '+Inf', ...labels }, value: child.count, metricName: `${name}_bucket` },
          { labels, value: child.sum, metricName: `${name}_sum` },
          { labels, value: child.count, metricName: `${name}_count` },
        ];
      }),
    () => {
      for (const { child } of children.all()) {
        child.counts.fill(0);
        child.sum = 0;
        child.count = 0;
      }
    },
  );
  return { labels: (...values) => children.get(values) };
}
