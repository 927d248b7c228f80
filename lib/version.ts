/**
 * The Deno version this project is tested with (`.deno-version`), checked at start.
 *
 * @module
 */

/** The pinned Deno version, e.g. `2.9.6`. */
export const denoVersionPinned: string = Deno.readTextFileSync(
  new URL("../.deno-version", import.meta.url),
).trim();

/**
 * Throws when the running Deno's major.minor differs from the pinned one; warns (once,
 * on stderr) when only the patch differs.
 */
export function checkDenoVersion(running: string = Deno.version.deno): void {
  const [major, minor] = denoVersionPinned.split(".");
  const [runMajor, runMinor] = running.split(".");
  if (major !== runMajor || minor !== runMinor) {
    throw new Error(
      `Deno ${running} is running; this project is tested with ${denoVersionPinned}: ` +
        `run it as 'npx --yes deno@${denoVersionPinned} task ...'`,
    );
  }
  if (running !== denoVersionPinned && !warned) {
    warned = true;
    console.error(`warning: Deno ${running}; this project is tested with ${denoVersionPinned}`);
  }
}

let warned = false;
