-- Two tenants with one user each. User A's ids are the guide's (its token's `sub` and `tenant_id`).
INSERT INTO "tenants" ("id", "name") VALUES
  ('f330c503-5e9c-46a7-8393-2995aeb03675', 'Neon'),
  ('5b7ad2a4-3f1d-4c1c-9a8e-0d6a3c2b1e90', 'Other Company')
ON CONFLICT DO NOTHING;
INSERT INTO "users" ("tenant_id", "id", "name", "email", "settings") VALUES
  ('f330c503-5e9c-46a7-8393-2995aeb03675', '2e7e25e8-5445-40bd-8f89-dc19bba64faa', 'Alice', 'alice@neon.example', '{"theme": "dark"}'),
  ('5b7ad2a4-3f1d-4c1c-9a8e-0d6a3c2b1e90', '9c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e', 'Bob', 'bob@other.example', '{"theme": "light"}')
ON CONFLICT DO NOTHING;
GRANT SELECT, UPDATE, INSERT, DELETE ON ALL TABLES IN SCHEMA public to authenticated;
