// Turns the results a runtime reports for the shared scenarios into node:test tests, one
// per scenario, so every runtime's run reads (and counts) the same way.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import { scenarioNames } from "./scenarios.mjs";

/**
 * A suite `label` with one test per scenario. `run` is called once, before the tests, and
 * resolves with the runtime's results (`runScenarios`' array); if it throws, every test
 * of the suite fails with its error.
 */
export function scenarioSuite(label, run, options = {}) {
  describe(label, options, () => {
    let results;
    let failure;
    before(async () => {
      try {
        results = await run();
      } catch (error) {
        failure = error;
      }
    });
    for (const name of scenarioNames) {
      test(name, () => {
        if (failure) throw failure;
        const result = results.find((r) => r.name === name);
        assert.ok(result, `the runtime reported nothing for ${name}`);
        if (!result.ok) assert.fail(result.error);
      });
    }
  });
}
