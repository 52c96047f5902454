/**
 * The demo's tenants and users. Alice's ids are the guide's own (the `sub` and `tenant_id` of its token);
 * they match `pg-authorize dev`'s demo, so tokens from this app work against its rows too.
 *
 * @module
 */
export const DEMO = {
  alice: {
    sub: '2e7e25e8-5445-40bd-8f89-dc19bba64faa',
    tenantId: 'f330c503-5e9c-46a7-8393-2995aeb03675',
    tenantName: 'Neon',
    name: 'Alice',
    email: 'alice@neon.example',
  },
  bob: {
    sub: '9c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e',
    tenantId: '5b7ad2a4-3f1d-4c1c-9a8e-0d6a3c2b1e90',
    tenantName: 'Other Company',
    name: 'Bob',
    email: 'bob@other.example',
  },
} as const

export type DemoUserName = keyof typeof DEMO
