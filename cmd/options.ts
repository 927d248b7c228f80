/**
 * Option parsers shared by the commands: validate command-line values before use.
 *
 * @module
 */
import { InvalidArgumentError } from "@commander-js/extra-typings";

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
