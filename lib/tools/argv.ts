/**
 * The one way our tools' options become argv: a table per tool naming the flag of every
 * option (a `satisfies` check makes the table complete), values written as `--flag=value`
 * so a value can never be read as another flag.
 *
 * @module
 */

/** A long flag, e.g. `--ring`. */
export type Flag = `--${string}`;

/**
 * How each option of `O` is written: a flag (value or switch), a `--no-x` flag written when
 * false, or a flag whose number is written with a unit (`--reconnect-for=30000ms`).
 */
export type FlagTable<O> = {
  readonly [K in keyof O]-?: Flag | { whenFalse: Flag } | { flag: Flag; unit: string };
};

/** The argv for `options` (absent and `undefined` options are left to the tool's defaults). */
export function encodeArgv<O extends object>(flags: FlagTable<O>, options: Partial<O>): string[] {
  const argv: string[] = [];
  for (const key of Object.keys(flags) as (keyof O & string)[]) {
    const flag = flags[key];
    const value: unknown = options[key];
    if (value === undefined) continue;
    if (typeof flag === "object" && "whenFalse" in flag) {
      if (value !== false && value !== true) throw badValue(key, value);
      if (value === false) argv.push(flag.whenFalse);
    } else if (typeof flag === "object") {
      if (typeof value !== "number" || !Number.isFinite(value)) throw badValue(key, value);
      argv.push(`${flag.flag}=${value}${flag.unit}`);
    } else if (typeof value === "boolean") {
      if (value) argv.push(flag);
    } else if (typeof value === "number") {
      if (!Number.isFinite(value)) throw badValue(key, value);
      argv.push(`${flag}=${value}`);
    } else if (typeof value === "string") {
      argv.push(`${flag}=${value}`);
    } else {
      throw badValue(key, value);
    }
  }
  return argv;
}

function badValue(key: string, value: unknown): RangeError {
  return new RangeError(`Cannot write option ${key} = ${String(value)} as a command-line value`);
}
