/**
 * Decoding what a child tool prints: small schemas that turn an `unknown` (a parsed JSON
 * line) into a typed value, or refuse it with a {@linkcode ToolOutputError} naming the field
 * that was wrong. A decoded object holds only the fields its schema declares (a fresh
 * object, never the input), so a caller never sees a half-checked value.
 *
 * @example
 * ```ts
 * import { decodeJsonLine, num, obj, opt, str } from "./decode.ts";
 * const point = obj({ x: num, label: opt(str) });
 * const p = decodeJsonLine(point, '{"x": 1}', "example"); // { x: 1, label: undefined }
 * ```
 *
 * @module
 */

/** A child tool printed something that is not what its module declares. */
export class ToolOutputError extends Error {
  override name = "ToolOutputError";
  /** The tool (`replica`, `primary`, `cache`, or a file name). */
  readonly tool: string;
  /** Where in the value (`result.acked`), or `line` for the line itself. */
  readonly path: string;

  /** `problem` says what was wrong at `path`. */
  constructor(tool: string, path: string, problem: string) {
    super(`${tool} printed a bad report: ${path}: ${problem}`);
    this.tool = tool;
    this.path = path;
  }
}

/** Decodes an `unknown` at `path` into a `T`, or throws {@linkcode ToolOutputError}. */
export interface Schema<T> {
  decode(value: unknown, path: string, tool: string): T;
}

/** The type a schema decodes to. */
export type Decoded<S> = S extends Schema<infer T> ? T : never;

function kind(value: unknown): string {
  if (value === undefined) return "nothing (the field is missing)";
  return value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`;
}

function refuse(tool: string, path: string, want: string, value: unknown): never {
  throw new ToolOutputError(tool, path, `expected ${want}, got ${kind(value)}`);
}

/** A finite number. */
export const num: Schema<number> = {
  decode(v, path, tool) {
    return typeof v === "number" && Number.isFinite(v) ? v : refuse(tool, path, "a number", v);
  },
};

/** A safe integer. */
export const int: Schema<number> = {
  decode(v, path, tool) {
    return Number.isSafeInteger(v) ? v as number : refuse(tool, path, "an integer", v);
  },
};

/** A safe integer ≥ 0. */
export const nat: Schema<number> = {
  decode(v, path, tool) {
    return Number.isSafeInteger(v) && (v as number) >= 0
      ? v as number
      : refuse(tool, path, "an integer ≥ 0", v);
  },
};

/** A string. */
export const str: Schema<string> = {
  decode(v, path, tool) {
    return typeof v === "string" ? v : refuse(tool, path, "a string", v);
  },
};

/** A boolean. */
export const bool: Schema<boolean> = {
  decode(v, path, tool) {
    return typeof v === "boolean" ? v : refuse(tool, path, "a boolean", v);
  },
};

/** One of `values` (a string). */
export function oneOf<const T extends string>(values: readonly T[]): Schema<T> {
  return {
    decode(v, path, tool) {
      return values.includes(v as T) ? v as T : refuse(tool, path, values.join("|"), v);
    },
  };
}

/** `inner`, or absent (`undefined`; JSON has no undefined, so a missing field). */
export function opt<T>(inner: Schema<T>): Schema<T | undefined> {
  return { decode: (v, path, tool) => v === undefined ? undefined : inner.decode(v, path, tool) };
}

/** An array of at most `max` items of `item`. */
export function arr<T>(item: Schema<T>, max = 100_000): Schema<T[]> {
  return {
    decode(v, path, tool) {
      if (!Array.isArray(v)) refuse(tool, path, "an array", v);
      if (v.length > max) refuse(tool, path, `at most ${max} items`, v);
      return v.map((x, i) => item.decode(x, `${path}[${i}]`, tool));
    },
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** An object with string keys (at most `max`), each value an `item`. */
export function rec<T>(item: Schema<T>, max = 1000): Schema<Record<string, T>> {
  return {
    decode(v, path, tool) {
      if (!isObject(v)) refuse(tool, path, "an object", v);
      const entries = Object.entries(v);
      if (entries.length > max) refuse(tool, path, `at most ${max} keys`, v);
      return Object.fromEntries(entries.map(([k, x]) => [k, item.decode(x, `${path}.${k}`, tool)]));
    },
  };
}

/** An object with exactly the fields of `shape` decoded (others are dropped). */
export function obj<S extends Record<string, Schema<unknown>>>(
  shape: S,
): Schema<{ [K in keyof S]: Decoded<S[K]> }> {
  return {
    decode(v, path, tool) {
      if (!isObject(v)) refuse(tool, path, "an object", v);
      const out: Record<string, unknown> = {};
      for (const [key, field] of Object.entries(shape)) {
        out[key] = field.decode(v[key], path ? `${path}.${key}` : key, tool);
      }
      return out as { [K in keyof S]: Decoded<S[K]> };
    },
  };
}

/** Parses one JSON line and decodes it with `schema`; a typed refusal otherwise. */
export function decodeJsonLine<T>(schema: Schema<T>, line: string, tool: string): T {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new ToolOutputError(tool, "line", `not JSON: ${line.slice(0, 80)}`);
  }
  return schema.decode(value, "", tool);
}
