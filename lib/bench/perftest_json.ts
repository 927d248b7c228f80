/**
 * perftest's `--out_json` report (perftest 4.5) decoded into typed numbers. The file is
 * JSON-like rather than JSON: keys and most values are unquoted, entries end with a comma
 * even before `}`, one key has a dot (`percentile_99.9`). It is read line by line into
 * sections of strings, then checked field by field.
 *
 * @example
 * ```ts
 * import { parsePerftestJson } from "./perftest_json.ts";
 * const text = `{\ntest_info: {\ntest: Send_Latency_Test,\n},\nresults: {\nMsgSize: 64,\n` +
 *   `n_iterations: 500,\nt_min: 93.53,\nt_max: 1415.60,\nt_typical: 123.59,\nt_avg: 195.69,\n` +
 *   `t_stdev: 186.28,\npercentile_99: 809.13,\npercentile_99.9: 1415.60,\n},\n}\n`;
 * const r = parsePerftestJson("ib_send_lat", text);
 * if (r.kind === "latency") console.log(`${r.typicalUs} us one way`);
 * ```
 *
 * @module
 */

/** The perftest programs the bench runs. */
export type PerftestTool =
  | "ib_write_lat"
  | "ib_send_lat"
  | "ib_read_lat"
  | "ib_write_bw"
  | "ib_send_bw"
  | "ib_read_bw";

/**
 * A latency test's result (`*_lat`), in microseconds. perftest reports ONE-WAY latency:
 * half of each measured round trip.
 */
export interface PerftestLatency {
  kind: "latency";
  tool: PerftestTool;
  bytes: number;
  iterations: number;
  minUs: number;
  maxUs: number;
  typicalUs: number;
  avgUs: number;
  stdevUs: number;
  p99Us: number;
  p999Us: number;
}

/** A bandwidth test's result (`*_bw`); perftest's MB are 2^20 bytes. */
export interface PerftestBandwidth {
  kind: "bandwidth";
  tool: PerftestTool;
  bytes: number;
  iterations: number;
  peakMBps: number;
  avgMBps: number;
  msgRateMpps: number;
}

/** What one perftest run measured. */
export type PerftestResult = PerftestLatency | PerftestBandwidth;

/** perftest's `--out_json` file could not be read into a result; the message says why. */
export class PerftestJsonError extends Error {
  override name = "PerftestJsonError";
}

/** A section of the report: leaves are the raw value strings (quotes removed). */
export interface PerftestSection {
  [key: string]: string | PerftestSection;
}

/** Most lines a report may have (perftest writes about 40). */
const linesMax = 10_000;
/** Deepest nesting of sections accepted (perftest uses 2). */
const depthMax = 8;

/**
 * Reads perftest's JSON-like text into nested sections of strings.
 * @throws {PerftestJsonError} on a line that is none of `{`, `key: {`, `key: value,`, `}`.
 */
export function parsePerftestSections(text: string): PerftestSection {
  const lines = text.split("\n");
  if (lines.length > linesMax) {
    throw new PerftestJsonError(`The perftest report has ${lines.length} lines (> ${linesMax})`);
  }
  const stack: PerftestSection[] = [];
  let root: PerftestSection | undefined;
  lines.forEach((raw, index) => {
    const line = raw.trim();
    const where = `line ${index + 1} '${line}'`;
    if (line === "") return;
    if (line === "{") {
      if (root) throw new PerftestJsonError(`A second top-level '{' at ${where}`);
      root = {};
      stack.push(root);
      return;
    }
    if (/^},?$/.test(line)) {
      if (!stack.pop()) throw new PerftestJsonError(`An unmatched '}' at ${where}`);
      return;
    }
    const match = /^([^:{}]+?)\s*:\s*(.*?)\s*,?$/.exec(line);
    const top = stack.at(-1);
    if (!match || !top) {
      throw new PerftestJsonError(`Cannot read ${where}: expected 'key: value,' inside '{ }'`);
    }
    const [, key, value] = match;
    if (value === "{") {
      if (stack.length >= depthMax) throw new PerftestJsonError(`Nested too deep at ${where}`);
      const child: PerftestSection = {};
      top[key] = child;
      stack.push(child);
    } else top[key] = value.replace(/^"(.*)"$/, "$1");
  });
  if (!root) throw new PerftestJsonError("The perftest report is empty: no '{' found");
  if (stack.length > 0) throw new PerftestJsonError("The perftest report ends inside '{ }'");
  return root;
}

const testNames: Record<PerftestTool, string> = {
  ib_write_lat: "RDMA_Write_Latency_Test",
  ib_send_lat: "Send_Latency_Test",
  ib_read_lat: "RDMA_Read_Latency_Test",
  ib_write_bw: "RDMA_Write_BW_Test",
  ib_send_bw: "Send_BW_Test",
  ib_read_bw: "RDMA_Read_BW_Test",
};

/**
 * Decodes the `--out_json` report of `tool` into a typed result.
 * @throws {PerftestJsonError} when the report is of another test or a field is missing or
 * not a finite number ≥ 0.
 */
export function parsePerftestJson(tool: PerftestTool, text: string): PerftestResult {
  const root = parsePerftestSections(text);
  const info = root.test_info;
  const results = root.results;
  if (typeof info !== "object" || typeof results !== "object") {
    throw new PerftestJsonError("The perftest report lacks its test_info or results section");
  }
  if (info.test !== testNames[tool]) {
    throw new PerftestJsonError(
      `The perftest report is of test '${info.test}', expected ${testNames[tool]} for ${tool}`,
    );
  }
  const num = (key: string): number => {
    const raw = results[key];
    const value = typeof raw === "string" && raw !== "" ? Number(raw) : NaN;
    if (!Number.isFinite(value) || value < 0) {
      throw new PerftestJsonError(
        `The perftest report's results.${key} is not a number ≥ 0: '${raw ?? "(missing)"}'`,
      );
    }
    return value;
  };
  const bytes = num("MsgSize");
  const iterations = num("n_iterations");
  if (tool.endsWith("_lat")) {
    return {
      kind: "latency",
      tool,
      bytes,
      iterations,
      minUs: num("t_min"),
      maxUs: num("t_max"),
      typicalUs: num("t_typical"),
      avgUs: num("t_avg"),
      stdevUs: num("t_stdev"),
      p99Us: num("percentile_99"),
      p999Us: num("percentile_99.9"),
    };
  }
  return {
    kind: "bandwidth",
    tool,
    bytes,
    iterations,
    peakMBps: num("BW_peak"),
    avgMBps: num("BW_average"),
    msgRateMpps: num("MsgRate"),
  };
}
