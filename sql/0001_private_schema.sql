-- pg-authorize 0001: the private schema.
-- Internals live here: the key that seals claims, the restricted roles' login passwords, and the JWT
-- providers. Only the owner (the role that ran `pg-authorize setup`) can use this schema; the restricted
-- roles can neither read nor call anything in it.

create schema if not exists pgauthorize;
revoke all on schema pgauthorize from public;

-- The per-database key that seals verified claims (see src/database/session.ts).
-- ipad/opad are the HMAC-SHA256 inner and outer padded keys, precomputed at setup so that
-- auth.session() needs nothing but the core sha256() function (no extension, any Postgres 14+).
create table if not exists pgauthorize.secret (
  id int primary key default 1 check (id = 1),
  key bytea not null check (length(key) = 32),
  ipad bytea not null check (length(ipad) = 64),
  opad bytea not null check (length(opad) = 64),
  created_at timestamptz not null default now()
);
revoke all on pgauthorize.secret from public;

-- Login passwords of the restricted roles. Only the gateway (holding the owner's URL) reads them, so
-- only the gateway can log in as those roles (security property 5).
create table if not exists pgauthorize.role_credentials (
  role name primary key,
  password text not null,
  created_at timestamptz not null default now()
);
revoke all on pgauthorize.role_credentials from public;

-- JWT providers, shared by every gateway instance serving this database.
create table if not exists pgauthorize.providers (
  name text primary key check (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
  jwks_url text check (jwks_url ~ '^https?://'),
  jwks jsonb check (jwks is null or jsonb_typeof(jwks -> 'keys') = 'array'),
  issuer text,
  audience text[],
  algorithms text[] not null,
  roles text[] not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (jwks_url is not null or jwks is not null)
);
revoke all on pgauthorize.providers from public;

-- Gateways LISTEN on this channel so a provider change reaches them without a restart.
create or replace function pgauthorize.providers_changed() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  perform pg_notify('pg_authorize_providers', coalesce(new.name, old.name));
  return null;
end
$$;
revoke all on function pgauthorize.providers_changed() from public;

drop trigger if exists providers_changed on pgauthorize.providers;
create trigger providers_changed after insert or update or delete on pgauthorize.providers
  for each row execute function pgauthorize.providers_changed();
