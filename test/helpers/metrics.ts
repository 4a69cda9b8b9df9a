import parsePrometheusTextFormat, { type PrometheusFamily } from "parse-prometheus-text-format";

/** A scrape of GET /metrics, parsed by a Prometheus text-format parser. */
export interface Scrape {
  readonly families: PrometheusFamily[];
  /** The value of a counter or gauge sample with exactly these labels (0 when absent). */
  value(name: string, labels?: Record<string, string>): number;
  /**
   * The sample count of a histogram with these labels (0 when absent). The parser folds a histogram's
   * series into one, so this is reliable only for histograms without labels.
   */
  histogramCount(name: string, labels?: Record<string, string>): number;
  /** Every label value in the scrape. */
  labelValues(): string[];
}

function sameLabels(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  const left = a ?? {};
  return Object.keys(left).length === Object.keys(b).length && Object.entries(b).every(([key, value]) => left[key] === value);
}

/** The /metrics URL of a test server, from its GraphQL URL. */
export function metricsUrl(httpUrl: string): string {
  return httpUrl.replace(/\/graphql$/, "/metrics");
}

/** Scrapes a server's /metrics (with a bearer token when given) and parses it; throws unless 200. */
export async function scrape(httpUrl: string, token?: string): Promise<Scrape> {
  const response = await fetch(metricsUrl(httpUrl), { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
  const families = parsePrometheusTextFormat(await response.text());
  const family = (name: string) => families.find((candidate) => candidate.name === name);
  return {
    families,
    value: (name, labels = {}) => Number(family(name)?.metrics.find((sample) => sameLabels(sample.labels, labels))?.value ?? 0),
    histogramCount: (name, labels = {}) => Number(family(name)?.metrics.find((sample) => sameLabels(sample.labels, labels))?.count ?? 0),
    labelValues: () => families.flatMap((candidate) => candidate.metrics.flatMap((sample) => Object.values(sample.labels ?? {}))),
  };
}
