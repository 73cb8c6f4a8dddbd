/**
 * Prometheus metrics in the text exposition format (version 0.0.4), hand-written: a few counters,
 * gauges read at scrape time and one latency histogram. Label values are escaped; no label carries
 * a tenant name or anything a client chose freely (bounded cardinality).
 */

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const escape = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const labelText = (labels: Record<string, string>) => {
  const entries = Object.entries(labels);
  return entries.length ? `{${entries.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}` : "";
};

class Counter {
  readonly values = new Map<string, { labels: Record<string, string>; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Record<string, string> = {}, by = 1): void {
    const key = labelText(labels);
    const entry = this.values.get(key);
    if (entry) entry.value += by;
    else this.values.set(key, { labels, value: by });
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.values.values()) lines.push(`${this.name}${labelText(labels)} ${value}`);
    return lines;
  }
}

class Histogram {
  readonly series = new Map<string, { labels: Record<string, string>; counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  observe(labels: Record<string, string>, seconds: number): void {
    const key = labelText(labels);
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { labels, counts: BUCKETS.map(() => 0), sum: 0, count: 0 }));
    BUCKETS.forEach((le, i) => {
      if (seconds <= le) s.counts[i]!++;
    });
    s.sum += seconds;
    s.count++;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      BUCKETS.forEach((le, i) => lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: String(le) })} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: "+Inf" })} ${s.count}`);
      lines.push(`${this.name}_sum${labelText(s.labels)} ${s.sum}`);
      lines.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return lines;
  }
}

export class Metrics {
  readonly requests = new Counter("isol8_http_requests_total", "HTTP requests by route and status.");
  readonly duration = new Histogram("isol8_http_request_duration_seconds", "HTTP request duration (until the last byte for streams) by route.");
  readonly executions = new Counter("isol8_executions_total", "Executions by runtime and outcome (ok, nonzero, timeout, oom, error, cancelled).");
  readonly rejected = new Counter("isol8_rejected_total", "Requests refused before running, by reason.");
  readonly reaped = new Counter("isol8_sessions_reaped_total", "Sessions stopped for being idle.");
  readonly #gauges: { name: string; help: string; read: () => number }[] = [];
  readonly #started = Date.now();
  /** Constant facts about this server (value 1, the facts as labels): isol8_node_info{node}. */
  readonly #infos: { name: string; help: string; labels: Record<string, string> }[] = [];

  info(name: string, help: string, labels: Record<string, string>): void {
    this.#infos.push({ name, help, labels });
  }

  gauge(name: string, help: string, read: () => number): void {
    this.#gauges.push({ name, help, read });
  }

  render(): string {
    const lines: string[] = [];
    for (const metric of [this.requests, this.executions, this.rejected, this.reaped]) lines.push(...metric.render());
    lines.push(...this.duration.render());
    for (const g of this.#gauges) lines.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`, `${g.name} ${g.read()}`);
    for (const i of this.#infos) lines.push(`# HELP ${i.name} ${i.help}`, `# TYPE ${i.name} gauge`, `${i.name}${labelText(i.labels)} 1`);
    lines.push(
      "# HELP isol8_uptime_seconds Seconds since the server started.",
      "# TYPE isol8_uptime_seconds gauge",
      `isol8_uptime_seconds ${(Date.now() - this.#started) / 1000}`,
    );
    return `${lines.join("\n")}\n`;
  }
}
