import type { Metric, MetricValueWithName, Registry } from "prom-client";

/**
 * A label-less Prometheus histogram whose `observe` is a bucket search and three additions, for
 * the per-event path (prom-client's own hashes its labels on every observation). It is exposed
 * through the registry like any prom-client metric.
 */
export class FastHistogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly upperBounds: readonly number[],
    registry: Registry,
  ) {
    this.counts = upperBounds.map(() => 0);
    registry.registerMetric(this as unknown as Metric); // the registry only calls name and get()
  }

  observe(value: number): void {
    const bounds = this.upperBounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]! += 1;
        break;
      }
    }
    this.sum += value;
    this.count += 1;
  }

  /** The metric as prom-client's registry serializes it: cumulative buckets, `+Inf`, sum and count. */
  async get(): Promise<{ name: string; help: string; type: "histogram"; aggregator: "sum"; values: MetricValueWithName<string>[] }> {
    const values: MetricValueWithName<string>[] = [];
    let cumulative = 0;
    this.upperBounds.forEach((bound, i) => {
      cumulative += this.counts[i]!;
      values.push({ metricName: `${this.name}_bucket`, labels: { le: bound }, value: cumulative });
    });
    values.push({ metricName: `${this.name}_bucket`, labels: { le: "+Inf" }, value: this.count });
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: this.sum });
    values.push({ metricName: `${this.name}_count`, labels: {}, value: this.count });
    return { name: this.name, help: this.help, type: "histogram", aggregator: "sum", values };
  }
}
