/**
 * Warms Deno's caches on the host (transpiled modules and V8 code cache) for every
 * module the lab runs, so processes in the lab VM — which sees the host's DENO_DIR
 * read-only under its overlay — start without transpiling under emulation.
 * `deno run -A scripts/warm_cache.ts` (run by `deno task test` and `deno task lab`).
 *
 * @module
 */
const root = new URL("..", import.meta.url).pathname;
const dirs = ["lib", "cmd", "ffi", "tests/lab", "examples", "scenarios"];
const files: string[] = [];
for (const dir of dirs) {
  try {
    for (const f of walk(`${root}${dir}`)) if (f.endsWith(".ts")) files.push(f);
  } catch {
    // a folder that does not exist yet
  }
}

function* walk(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* walk(path);
    else yield path;
  }
}

// Importing runs top-level code: every program guards its main with import.meta.main (or
// throws when imported), and Deno.test outside `deno test` registers nothing.
// Lab tests and tools refuse to run here (no topology, not main): loading them is enough.
for (const f of files) {
  try {
    await import(`file://${f}`);
  } catch {
    // transpiled and cached all the same
  }
}
if (Deno.env.get("RRL_DEBUG")) console.error(`warm_cache: ${files.length} modules`);
