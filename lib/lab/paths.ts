/**
 * Where the project and its lab cache live.
 *
 * @module
 */

/** Absolute path of the repository (the folder holding deno.json). */
export const repoDir: string = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** The ignored cache folder: kernel, initramfs, run folders of the lab VM, test results. */
export const labDir = `${repoDir}/.lab`;

/** The state file `scripts/softroce-pair.sh up` writes (topology, names, addresses). */
export const pairStateFile: string = Deno.env.get("RRL_PAIR_STATE") ?? "/run/rrl-pair.env";

/** Reads a `KEY=VALUE` file into a record; a missing file gives `undefined`. */
export function readEnvFile(path: string): Record<string, string> | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match) out[match[1]] = match[2];
  }
  return out;
}
