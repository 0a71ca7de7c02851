// A strict reader of the Prometheus text exposition format (version 0.0.4): every line must be
// a comment, a HELP/TYPE line, or `name{labels} value`; anything else fails the parse.
export type Sample = { name: string; labels: Record<string, string>; value: number };

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/gy;

export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    if (line === '' || (line.startsWith('#') && !/^# (HELP|TYPE) /.test(line))) continue;
    if (/^# TYPE \S+ (counter|gauge|histogram|summary|untyped)$/.test(line) || /^# HELP \S+ /.test(line)) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`line ${index + 1} is not Prometheus text: ${line}`);
    const labels: Record<string, string> = {};
    const body = match[2] ?? '';
    LABEL.lastIndex = 0;
    let consumed = 0;
    for (let label = LABEL.exec(body); label; label = LABEL.exec(body)) {
      labels[label[1]!] = label[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      consumed = LABEL.lastIndex;
    }
    if (consumed !== body.length) throw new Error(`line ${index + 1} has malformed labels: ${line}`);
    // Values are read as Go's strconv.ParseFloat reads them, NaN and Inf in any case (prom-client
    // writes `Nan` for an event-loop lag not yet sampled).
    const written = match[3]!.toLowerCase();
    const value = Number(written === '+inf' || written === 'inf' ? Infinity : written === '-inf' ? -Infinity : match[3]);
    if (Number.isNaN(value) && written !== 'nan') throw new Error(`line ${index + 1} has a bad value: ${line}`);
    samples.push({ name: match[1]!, labels, value });
  }
  return samples;
}

export function sum(samples: Sample[], name: string, where: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);
}
