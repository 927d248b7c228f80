/**
 * The long lab set: tests that `deno task test --long` runs and the default suite skips
 * (reported as ignored), to keep the default suite under its time budget. Each one covers
 * a property that a default-suite test also reaches by another way (the scenarios run every
 * fault kind once, for example); the long set checks it again in depth.
 *
 * @module
 */

/** For `Deno.test`'s `ignore`: true unless `deno task test --long` set `RRL_TEST_LONG=1`. */
export const longOnly = { ignore: Deno.env.get("RRL_TEST_LONG") !== "1" };
