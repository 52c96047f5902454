/**
 * Runs the documented example (examples/policy-tests/demo.test.ts, shown in docs/testing-policies.md)
 * as part of the default test run, so the documentation cannot rot.
 */
import '../../examples/policy-tests/demo.test.js'
