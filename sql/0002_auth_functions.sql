-- pg-authorize 0002: the `auth` schema, API-compatible with Neon's pg_session_jwt.
--
-- The gateway installs verified claims as a sealed envelope in the setting `pg_authorize.session`:
--   v1.<exp>.<base64url(claims JSON)>.<base64url(HMAC-SHA256(key, 'v1.<exp>.<payload>'))>
-- Any client can SET that setting, so auth.session() re-checks the HMAC and the expiry on every read
-- (security property 2) and fails closed: nothing set -> JSON null; forged, altered or expired -> error.
--
-- Functions use SQL-standard bodies (BEGIN ATOMIC, Postgres 14+): every name is resolved once, here, and
-- pinned by OID, so no search_path a client sets can substitute an object, and no per-call SET clause
-- is needed (that would cost microseconds per row).

create schema if not exists auth;

-- Raises the error for a bad envelope. Called only on failure paths, so the common path stays plain SQL.
create or replace function pgauthorize.reject_session(reason text) returns jsonb
language plpgsql volatile parallel safe set search_path = pg_catalog, pg_temp as $$
begin
  raise exception using
    errcode = '28000',
    message = 'invalid session claims: ' || reason,
    hint = 'claims are installed by the pg-authorize gateway from a verified JWT; they cannot be set from SQL';
end
$$;
revoke all on function pgauthorize.reject_session(text) from public;

-- The verified claims of the current identity; JSON null when no identity is set.
-- SECURITY DEFINER: it reads the sealing key, which the caller cannot. One function, no nested calls,
-- because policies may call it once per row.
create or replace function auth.session() returns jsonb
language sql stable parallel safe security definer
begin atomic
  select case
    when s.envelope is null or s.envelope = '' then 'null'::jsonb
    -- Compare hashes of the two MACs rather than the MACs themselves, so the time a comparison takes
    -- says nothing about the expected MAC.
    when pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.rtrim(pg_catalog.translate(pg_catalog.encode(
           pg_catalog.sha256(k.opad || pg_catalog.sha256(k.ipad || pg_catalog.convert_to(
             pg_catalog.left(s.envelope, pg_catalog.length(s.envelope) - pg_catalog.length(pg_catalog.split_part(s.envelope, '.', -1)) - 1),
             'UTF8'))),
           'base64'), '+/', '-_'), '='), 'UTF8'))
         <> pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.split_part(s.envelope, '.', -1), 'UTF8'))
      then pgauthorize.reject_session('signature mismatch')
    when pg_catalog.split_part(s.envelope, '.', 1) <> 'v1'
      then pgauthorize.reject_session('unknown envelope version')
    when pg_catalog.split_part(s.envelope, '.', 2)::bigint <= pg_catalog.date_part('epoch', pg_catalog.clock_timestamp())
      then pgauthorize.reject_session('expired')
    else pg_catalog.convert_from(pg_catalog.decode(pg_catalog.rpad(
           pg_catalog.translate(pg_catalog.split_part(s.envelope, '.', 3), '-_', '+/'),
           (pg_catalog.length(pg_catalog.split_part(s.envelope, '.', 3)) + 3) / 4 * 4, '='), 'base64'), 'UTF8')::jsonb
  end
  from pgauthorize.secret k,
       (select pg_catalog.current_setting('pg_authorize.session', true) as envelope) s
  where k.id = 1;
end;

-- Alias of session(), as in pg_session_jwt 0.4.
create or replace function auth.jwt() returns jsonb
language sql stable parallel safe
begin atomic
  select auth.session();
end;

-- The `sub` claim, or NULL. Never casts: providers' subjects are often not UUIDs.
create or replace function auth.user_id() returns text
language sql stable parallel safe
begin atomic
  select auth.session() ->> 'sub';
end;

-- `sub` as a UUID, or NULL when it is not one.
create or replace function auth.uid() returns uuid
language sql stable parallel safe
begin atomic
  select case when s ~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' then s::uuid end
  from (select auth.user_id() as s) u;
end;

-- Accepted for compatibility with pg_session_jwt; there is nothing to initialise.
create or replace function auth.init() returns void
language sql volatile
begin atomic
  select;
end;

-- Installs a session identity from an HS256 JWT signed with this database's key (what the gateway's
-- sealing key also signs). Raises 28000 if the token does not verify, is expired or not yet valid.
create or replace function auth.jwt_session_init(token text) returns void
language plpgsql volatile strict security definer set search_path = pg_catalog, pg_temp as $$
declare
  k pgauthorize.secret%rowtype;
  parts text[];
  header jsonb;
  payload_text text;
  claims jsonb;
  expected text;
  exp_s numeric;
  nbf_s numeric;
  now_s numeric := date_part('epoch', clock_timestamp());
  payload_b64 text;
  mac text;
begin
  if length(token) > 16384 then
    raise exception using errcode = '28000', message = 'invalid JWT: too long';
  end if;
  parts := string_to_array(token, '.');
  if array_length(parts, 1) is distinct from 3 then
    raise exception using errcode = '28000', message = 'invalid JWT: expected three segments';
  end if;
  select * into k from pgauthorize.secret where id = 1;
  if not found then
    raise exception using errcode = '55000', message = 'pg-authorize is not set up in this database';
  end if;
  expected := rtrim(translate(encode(sha256(k.opad || sha256(k.ipad || convert_to(parts[1] || '.' || parts[2], 'UTF8'))), 'base64'), '+/', '-_'), '=');
  if sha256(convert_to(expected, 'UTF8')) <> sha256(convert_to(parts[3], 'UTF8')) then
    raise exception using errcode = '28000', message = 'invalid JWT: signature mismatch';
  end if;
  begin
    header := convert_from(decode(rpad(translate(parts[1], '-_', '+/'), (length(parts[1]) + 3) / 4 * 4, '='), 'base64'), 'UTF8')::jsonb;
    payload_text := convert_from(decode(rpad(translate(parts[2], '-_', '+/'), (length(parts[2]) + 3) / 4 * 4, '='), 'base64'), 'UTF8');
    claims := payload_text::jsonb;
  exception when others then
    raise exception using errcode = '28000', message = 'invalid JWT: undecodable segment';
  end;
  if header ->> 'alg' is distinct from 'HS256' or header ? 'crit' then
    raise exception using errcode = '28000', message = 'invalid JWT: alg must be HS256';
  end if;
  if jsonb_typeof(claims) is distinct from 'object' then
    raise exception using errcode = '28000', message = 'invalid JWT: payload is not an object';
  end if;
  if jsonb_typeof(claims -> 'exp') is distinct from 'number' then
    raise exception using errcode = '28000', message = 'invalid JWT: exp is required';
  end if;
  exp_s := (claims ->> 'exp')::numeric;
  if exp_s <= now_s then
    raise exception using errcode = '28000', message = 'invalid JWT: expired';
  end if;
  if jsonb_typeof(claims -> 'nbf') = 'number' then
    nbf_s := (claims ->> 'nbf')::numeric;
    if nbf_s > now_s + 30 then
      raise exception using errcode = '28000', message = 'invalid JWT: not yet valid';
    end if;
  end if;
  -- Re-serialize the verified claims into an envelope, as the gateway does.
  payload_b64 := rtrim(translate(replace(encode(convert_to(claims::text, 'UTF8'), 'base64'), E'\n', ''), '+/', '-_'), '=');
  mac := rtrim(translate(encode(sha256(k.opad || sha256(k.ipad || convert_to('v1.' || floor(exp_s)::bigint || '.' || payload_b64, 'UTF8'))), 'base64'), '+/', '-_'), '=');
  perform set_config('pg_authorize.session', 'v1.' || floor(exp_s)::bigint || '.' || payload_b64 || '.' || mac, false);
end
$$;
