/**
 * A small Prometheus metrics registry: counters, gauges (set or computed at scrape time) and
 * histograms, with labels, rendered in the text exposition format (version 0.0.4) that `/metrics`
 * serves. Names and help texts are the caller's (antrea_controller_*, antrea_agent_*).
 */

export type Labels = Readonly<Record<string, string>>;

interface Series<V> {
  readonly labels: Labels;
  value: V;
}

function labelKey(labels: Labels | undefined): string {
  if (labels === undefined) return '';
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k] ?? ''}`)
    .join('\u0000');
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatLabels(labels: Labels, extra?: [string, string]): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${escapeLabel(labels[k] ?? '')}"`);
  if (extra !== undefined) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  render(out: string[]): void;
}

export class Counter implements Metric {
  readonly type = 'counter';
  readonly name: string;
  readonly help: string;
  private readonly series = new Map<string, Series<number>>();

  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  inc(labels?: Labels, n = 1): void {
    const k = labelKey(labels);
    const s = this.series.get(k);
    if (s === undefined) this.series.set(k, { labels: labels ?? {}, value: n });
    else s.value += n;
  }

  get(labels?: Labels): number {
    return this.series.get(labelKey(labels))?.value ?? 0;
  }

  render(out: string[]): void {
    if (this.series.size === 0) out.push(`${this.name} 0`);
    for (const s of this.series.values()) out.push(`${this.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
  }
}

export class Gauge implements Metric {
  readonly type = 'gauge';
  readonly name: string;
  readonly help: string;
  private readonly series = new Map<string, Series<number>>();
  private readonly collect: (() => number | readonly (readonly [Labels, number])[]) | undefined;

  constructor(name: string, help: string, collect?: () => number | readonly (readonly [Labels, number])[]) {
    this.name = name;
    this.help = help;
    this.collect = collect;
  }

  set(value: number, labels?: Labels): void {
    const k = labelKey(labels);
    const s = this.series.get(k);
    if (s === undefined) this.series.set(k, { labels: labels ?? {}, value });
    else s.value = value;
  }

  render(out: string[]): void {
    if (this.collect !== undefined) {
      const v = this.collect();
      if (typeof v === 'number') out.push(`${this.name} ${formatValue(v)}`);
      else for (const [labels, x] of v) out.push(`${this.name}${formatLabels(labels)} ${formatValue(x)}`);
      return;
    }
    if (this.series.size === 0) out.push(`${this.name} 0`);
    for (const s of this.series.values()) out.push(`${this.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
  }
}

interface HistogramValue {
  readonly counts: number[];
  sum: number;
  count: number;
}

export class Histogram implements Metric {
  readonly type = 'histogram';
  readonly name: string;
  readonly help: string;
  readonly buckets: readonly number[];
  private readonly series = new Map<string, Series<HistogramValue>>();

  constructor(name: string, help: string, buckets: readonly number[]) {
    this.name = name;
    this.help = help;
    this.buckets = [...buckets].sort((a, b) => a - b);
  }

  observe(v: number, labels?: Labels): void {
    const k = labelKey(labels);
    let s = this.series.get(k);
    if (s === undefined) {
      s = { labels: labels ?? {}, value: { counts: this.buckets.map(() => 0), sum: 0, count: 0 } };
      this.series.set(k, s);
    }
    const h = s.value;
    for (let i = 0; i < this.buckets.length; i++)
      if (v <= (this.buckets[i] ?? Infinity)) h.counts[i] = (h.counts[i] ?? 0) + 1;
    h.sum += v;
    h.count++;
  }

  render(out: string[]): void {
    const all =
      this.series.size === 0
        ? [{ labels: {}, value: { counts: this.buckets.map(() => 0), sum: 0, count: 0 } }]
        : this.series.values();
    for (const s of all) {
      this.buckets.forEach((b, i) =>
        out.push(`${this.name}_bucket${formatLabels(s.labels, ['le', formatValue(b)])} ${s.value.counts[i] ?? 0}`),
      );
      out.push(`${this.name}_bucket${formatLabels(s.labels, ['le', '+Inf'])} ${s.value.count}`);
      out.push(`${this.name}_sum${formatLabels(s.labels)} ${formatValue(s.value.sum)}`);
      out.push(`${this.name}_count${formatLabels(s.labels)} ${s.value.count}`);
    }
  }
}

/** Exponential buckets: `count` bounds from `start`, each `factor` times the previous. */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start * factor ** i);
}

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();

  private add<M extends Metric>(m: M): M {
    if (this.metrics.has(m.name)) throw new Error(`metric ${m.name} is already registered`);
    this.metrics.set(m.name, m);
    return m;
  }

  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }

  /** A gauge set by the caller, or computed at scrape time by `collect`. */
  gauge(name: string, help: string, collect?: () => number | readonly (readonly [Labels, number])[]): Gauge {
    return this.add(new Gauge(name, help, collect));
  }

  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, buckets));
  }

  /** The text exposition of every metric, in registration order. */
  render(): string {
    const out: string[] = [];
    for (const m of this.metrics.values()) {
      out.push(`# HELP ${m.name} ${m.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
      out.push(`# TYPE ${m.name} ${m.type}`);
      m.render(out);
    }
    return out.join('\n') + '\n';
  }
}

/** The content type of the text exposition format. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
