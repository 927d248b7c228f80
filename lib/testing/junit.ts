/**
 * Counts the results in a JUnit report written by `deno test --junit-path`.
 *
 * @module
 */

/** Top-level test counts (steps, reported as `parent > step`, are counted apart). */
export interface TestCounts {
  passed: number;
  failed: number;
  skipped: number;
  steps: number;
}

/** Parses a Deno JUnit report. Test names with ` > ` are steps of the test before them. */
export function countJunit(xml: string): TestCounts {
  const counts: TestCounts = { passed: 0, failed: 0, skipped: 0, steps: 0 };
  const testcase = /<testcase name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const match of xml.matchAll(testcase)) {
    if (match[1].includes(" &gt; ")) {
      counts.steps++;
      continue;
    }
    const body = match[3] ?? "";
    if (/<failure|<error/.test(body)) counts.failed++;
    else if (/<skipped/.test(body)) counts.skipped++;
    else counts.passed++;
  }
  return counts;
}

/** `N passed, N failed` and `, N skipped` when any were. */
export function formatCounts(c: TestCounts): string {
  return `${c.passed} passed, ${c.failed} failed${c.skipped ? `, ${c.skipped} skipped` : ""}`;
}
