/**
 * What every command shares: option parsers that validate command-line values before use,
 * the secret, and running a commander program with the exit-code convention (0 ok,
 * 1 run-time failure, 2 usage error).
 *
 * @module
 */
import { type Command, CommanderError, InvalidArgumentError } from "@commander-js/extra-typings";

/** Parser for an integer option in [min, max]; names the bounds when the value is wrong. */
export function parseIntOption(min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got '${value}'`);
    }
    return n;
  };
}

/** The shared secret from `--secret` or `RRL_SECRET`; a usage error when missing. */
export function readSecret(option: string | undefined): string {
  const secret = option ?? Deno.env.get("RRL_SECRET");
  if (!secret) {
    throw new RangeError(
      "No shared secret: pass --secret or set RRL_SECRET (the same on both sides, 8+ bytes; " +
        "e.g. export RRL_SECRET=$(openssl rand -hex 16))",
    );
  }
  return secret;
}

/**
 * Parses `args` with `program` and runs `body` with the options: usage errors (bad
 * options, RangeError from validation) exit 2 with the message, run-time errors exit 1
 * with the message (the stack with RRL_DEBUG=1).
 */
// deno-lint-ignore no-explicit-any
export async function runCommand<C extends Command<any, any, any>>(
  program: C,
  args: string[],
  body: (opts: ReturnType<C["opts"]>, program: C) => Promise<number>,
): Promise<number> {
  program.exitOverride().configureOutput({ writeErr: (text) => console.error(text.trimEnd()) });
  try {
    program.parse(args, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    throw error;
  }
  const name = program.name();
  try {
    return await body(program.opts() as ReturnType<C["opts"]>, program);
  } catch (error) {
    const debug = Deno.env.get("RRL_DEBUG");
    const text = debug ? (error as Error).stack : (error as Error).message ?? String(error);
    console.error(`${name}: ${text}`);
    if (error instanceof RangeError) {
      console.error(`${name}: see '${name} --help'`);
      return 2;
    }
    return 1;
  }
}
