/**
 * CRC32C throughput per backend: `deno bench -A bench/crc32c_bench.ts`.
 *
 * Every iteration checksums exactly 1 MiB (256 × 4 KiB or 4 × 256 KiB), so MiB/s is
 * 1 s divided by the time per iteration; each group's `js` case is the baseline Deno
 * compares the others to. Deno prints the CPU and runtime it ran on.
 *
 * @module
 */

import {
  crc32cBackend,
  crc32cView,
  isalBackend,
  isalLoadError,
  jsBackend,
} from "../lib/log/crc32c.ts";
import { Prng } from "../lib/prng.ts";

const mib = 1024 * 1024;
const buffer = new ArrayBuffer(mib);
const bytes = new Prng(1).fill(new Uint8Array(buffer));
const address = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
const isal = isalBackend();

console.log(`crc32c active backend: ${crc32cBackend()}${isal ? "" : ` (${isalLoadError()})`}`);

let sink = 0;

for (const chunk of [4 * 1024, 256 * 1024]) {
  const group = `crc32c ${chunk / 1024} KiB chunks, 1 MiB per iteration`;
  const views = Array.from(
    { length: mib / chunk },
    (_, i) => bytes.subarray(i * chunk, (i + 1) * chunk),
  );
  const backends = isal === null ? [jsBackend] : [jsBackend, isal];
  for (const backend of backends) {
    Deno.bench(`${backend.name} bytes`, { group, baseline: backend === jsBackend }, () => {
      for (const view of views) sink ^= backend.update(0, view);
    });
    Deno.bench(`${backend.name} address`, { group }, () => {
      for (let at = 0; at < mib; at += chunk) sink ^= backend.updateAt(0, address, at, chunk);
    });
  }
}

const record = new DataView(buffer, 0, 64);
const recordBytes = bytes.subarray(0, 56);
Deno.bench("js DataView kernel (crc32cView)", { group: "record CRC, 56 B", baseline: true }, () => {
  sink ^= crc32cView(record, 0, 56);
});
if (isal !== null) {
  Deno.bench("isal bytes", { group: "record CRC, 56 B" }, () => {
    sink ^= isal.update(0, recordBytes);
  });
}

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink); // keeps the results observable
});
