/**
 * Testing RLS policies: impersonation (`as`), a test library for any test runner, the policy matrix
 * and the policy linter. Published as the subpath `pg-authorize/testing`.
 *
 * @module
 */
export { policyTester } from './policy-tester.js'
export type { Actor, AsOptions, IsolatedTester, PolicyTester, PolicyTesterOptions, RowsOptions } from './policy-tester.js'
export { claimsFromToken, parseClaimsOption } from './identity.js'
export type { Impersonation } from './identity.js'
export { openAsSession, statementsFromLines } from './run-as.js'
export type { AsSession, AsSessionOptions, ScriptResult, StatementResult } from './run-as.js'
export { OPERATIONS, cellLabel, formatMatrix, parseClaimSets, policyMatrix } from './matrix.js'
export type { MatrixCell, MatrixEntry, MatrixFormat, MatrixIdentity, MatrixOptions, Operation, PolicyMatrix } from './matrix.js'
export { LINT_RULES, RULES, formatLint, ignoredRules, lintConnection, lintFails, lintPolicies, wrapAuthCalls } from './lint.js'
export type { Category, FailOn, Finding, LintOptions, LintReport, LintRule, RuleInfo, Severity, SuppressedFinding } from './lint.js'
export { toSarif } from './lint-sarif.js'
export type { SarifOptions } from './lint-sarif.js'
