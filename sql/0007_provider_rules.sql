-- pg-authorize 0007: providers found by OIDC discovery, and the rules that choose a token's role.
--
--   discovery          the JWKS is found through {issuer}/.well-known/openid-configuration; jwks_url then
--                      holds the jwks_uri discovered when the provider was added (used while the issuer's
--                      document cannot be read), and every gateway re-reads the document periodically.
--   role_claim         a JSONPath subset ($.role, $.realm_access.roles[*], $["cognito:groups"][*]) naming
--                      the claim whose value, through the allow-list `roles`, is the role; null: the role is
--                      the one the client asks for, as before.
--   default_role       the role of a token whose role claim is missing; null: such tokens are refused.
--   authorized_parties required `azp` (any of); null: not checked.
--   strict_audience    refuse tokens carrying `aud` when `audience` is null (PostgREST #4134).
--
-- The gateway validates every value (src/verify/provider.ts); the checks here only keep the row coherent.
alter table pgauthorize.providers
  add column if not exists discovery boolean not null default false,
  add column if not exists role_claim text check (role_claim is null or (role_claim like '$%' and length(role_claim) <= 256)),
  add column if not exists default_role text check (default_role is null or default_role = any (roles)),
  add column if not exists authorized_parties text[] check (authorized_parties is null or cardinality(authorized_parties) > 0),
  add column if not exists strict_audience boolean not null default false;

alter table pgauthorize.providers drop constraint if exists providers_discovery_issuer;
alter table pgauthorize.providers add constraint providers_discovery_issuer
  check (not discovery or (issuer ~ '^https?://' and jwks is null));
