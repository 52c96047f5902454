-- pg-authorize 0006: the sealing key never leaves the private schema, every key is rotated, and the envelope
-- is bound to the role, database and provider it was sealed for (envelope v3).
--
-- Why. 0004 and 0005 read the HMAC pads through IMMUTABLE functions, so the planner folded the key into the
-- plans of auth.session(); `SET debug_print_plan = on` then printed it to any client and to the server log.
-- Every key that existed then must be treated as known: this migration drops it and makes a new one.
--
-- The rule this file is written to (security property 8): no value derived from a key may become a
-- constant of any plan, parse or rewrite tree, a PL/pgSQL variable that a later statement reads (custom plans
-- inline those as constants), a notice, an error or a catalog entry. So:
--   * keys are read only as columns of pgauthorize.sealing_key, by the statement that uses them, and are never
--     returned by a function, stored in a variable or passed as a parameter;
--   * every HMAC is computed and compared inside that one statement; only its verdict leaves it;
--   * keys are made inside Postgres (from gen_random_uuid(), the server's strong random source), so they never
--     travel as SQL text or bind parameters that a statement log could record.
-- The gateway reads the current key through its owner connection (it seals with it); nothing else does.

-- Keys by generation. The current key has retire_at null; a rotated one is still accepted until retire_at,
-- so envelopes sealed a moment before a rotation finish their work while gateways reseal with the new key.
create table if not exists pgauthorize.sealing_key (
  generation int primary key check (generation > 0),
  key bytea not null check (length(key) = 32),
  ipad bytea not null check (length(ipad) = 64),
  opad bytea not null check (length(opad) = 64),
  created_at timestamptz not null default now(),
  retire_at timestamptz
);
revoke all on pgauthorize.sealing_key from public;
create unique index if not exists sealing_key_one_current on pgauthorize.sealing_key ((true)) where retire_at is null;

-- Makes a new current key, retires the others `grace` from now (at the latest), forgets keys retired a day
-- ago, and tells running gateways (NOTIFY pg_authorize_keys, carrying only the new generation number).
create or replace function pgauthorize.rotate_sealing_key(grace interval) returns int
language plpgsql volatile set search_path = pg_catalog, pg_temp as $$
declare
  made int;
begin
  if grace is null or grace < interval '0' then
    raise exception using errcode = '22023', message = 'grace must be a non-negative interval';
  end if;
  lock table pgauthorize.sealing_key in exclusive mode;
  update pgauthorize.sealing_key
     set retire_at = clock_timestamp() + grace
   where retire_at is null or retire_at > clock_timestamp() + grace;
  delete from pgauthorize.sealing_key where retire_at < clock_timestamp() - interval '1 day';
  -- One statement makes the key and both pads: 366 random bits from three UUIDv4s, hashed to 256.
  insert into pgauthorize.sealing_key (generation, key, ipad, opad)
  select g.next, k.key, p.ipad, p.opad
    from (select coalesce(max(generation), 0) + 1 as next from pgauthorize.sealing_key) g,
         (select sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')) as key offset 0) k,
         lateral (
           select decode(string_agg(lpad(to_hex(case when i < 32 then get_byte(k.key, i) else 0 end # 54), 2, '0'), '' order by i), 'hex') as ipad,
                  decode(string_agg(lpad(to_hex(case when i < 32 then get_byte(k.key, i) else 0 end # 92), 2, '0'), '' order by i), 'hex') as opad
             from generate_series(0, 63) i
         ) p
  returning generation into made;
  perform pg_notify('pg_authorize_keys', made::text);
  return made;
end
$$;
revoke all on function pgauthorize.rotate_sealing_key(interval) from public;

-- The check of a v3 envelope (src/database/session.ts sealClaims), fields separated by TAB:
--   v3 <gen> <exp> <role> <provider> <database> <claims JSON> <hex(HMAC-SHA256(key[gen], every byte before it))>
-- Returns the claims, JSON null when no identity is set, and raises 28000 for anything else: an unknown or
-- retired generation, a wrong MAC, an expired envelope, one sealed for another login role or another
-- database. The role is session_user: the role the gateway logged in as, which no SQL can change (SET ROLE
-- changes current_user only), so an envelope sealed for `anonymous` cannot run as `authenticated`, and
-- SECURITY DEFINER functions that call auth.user_id() still see the caller's identity.
-- Everything is schema-qualified (no SET clause: it costs ~0.2 us a call), so no search_path can substitute
-- an object. The MAC is checked before any field is trusted, each check its own statement: one SQL
-- statement a call (the key read), the rest PL/pgSQL expressions on the client's own envelope.
create or replace function pgauthorize.session_v3(envelope text) returns jsonb
language plpgsql stable parallel safe security definer as $$
declare
  b pg_catalog.bytea;
  verdict boolean;
begin
  if envelope is null or envelope operator(pg_catalog.=) '' then
    return 'null'::pg_catalog.jsonb;
  end if;
  if not (envelope operator(pg_catalog.~) E'^v3\t[0-9]{1,9}\t[0-9]{1,12}\t' and pg_catalog.octet_length(envelope) operator(pg_catalog.>) 80) then
    return pgauthorize.reject_session('unknown envelope format');
  end if;
  b := pg_catalog.convert_to(envelope, 'UTF8');
  -- The one statement that reads a key: the MAC of every byte before the last 64, with the key of the
  -- envelope's generation (while it is not retired), compared with the given MAC. Hashes of the hex MACs are
  -- compared, never the MACs: the comparison's time says nothing about the expected MAC. The given MAC is
  -- hashed as the bytes it is, so no decoding of a forged one can fail. Only the verdict leaves it.
  select pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.encode(pg_catalog.sha256(
           k.opad operator(pg_catalog.||) pg_catalog.sha256(k.ipad operator(pg_catalog.||)
             pg_catalog.substring(b, 1, pg_catalog.length(b) operator(pg_catalog.-) 64))), 'hex'), 'UTF8'))
         operator(pg_catalog.=) pg_catalog.sha256(pg_catalog.substring(b, pg_catalog.length(b) operator(pg_catalog.-) 63))
    into verdict
    from pgauthorize.sealing_key k
   where k.generation operator(pg_catalog.=) pg_catalog.split_part(envelope, E'\t', 2)::pg_catalog.int4
     and (k.retire_at is null or k.retire_at operator(pg_catalog.>) pg_catalog.clock_timestamp());
  if verdict is null then
    return pgauthorize.reject_session('unknown or retired key');
  elsif not verdict then
    return pgauthorize.reject_session('signature mismatch');
  end if;
  -- From here on every field is MAC-checked.
  if pg_catalog.to_timestamp(pg_catalog.split_part(envelope, E'\t', 3)::pg_catalog.int8) operator(pg_catalog.<=) pg_catalog.clock_timestamp() then
    return pgauthorize.reject_session('expired');
  end if;
  if pg_catalog.split_part(envelope, E'\t', 4) operator(pg_catalog.<>) session_user::pg_catalog.text then
    return pgauthorize.reject_session('sealed for another role');
  end if;
  if pg_catalog.split_part(envelope, E'\t', 6) operator(pg_catalog.<>) pg_catalog.current_database()::pg_catalog.text then
    return pgauthorize.reject_session('sealed for another database');
  end if;
  return pg_catalog.split_part(envelope, E'\t', 7)::pg_catalog.jsonb;
end
$$;
grant execute on function pgauthorize.session_v3(text) to public;

-- The verified claims of the current identity; JSON null when no identity is set. Not SECURITY DEFINER, so
-- the planner inlines it into the caller's query (one PL/pgSQL call a use); the restricted roles still cannot
-- name session_v3 themselves (no USAGE on the schema). Same OID as before: policies keep working.
create or replace function auth.session() returns jsonb
language sql stable parallel safe security invoker
begin atomic
  select pgauthorize.session_v3(pg_catalog.current_setting('pg_authorize.session', true));
end;

-- Installs a session identity from an HS256 JWT signed with this database's current key, as a v3 envelope
-- for the login role, with provider `jwt_session_init`. The MAC of the token and the MAC of the new envelope
-- are each computed in the one statement that reads the key; no variable ever holds key material.
create or replace function auth.jwt_session_init(token text) returns void
language plpgsql volatile strict security definer set search_path = pg_catalog, pg_temp as $$
declare
  parts text[];
  header jsonb;
  claims jsonb;
  verdict boolean;
  exp_s numeric;
  nbf_s numeric;
  now_s numeric := date_part('epoch', clock_timestamp());
  body text;
  installed boolean;
begin
  if length(token) > 16384 then
    raise exception using errcode = '28000', message = 'invalid JWT: too long';
  end if;
  parts := string_to_array(token, '.');
  if array_length(parts, 1) is distinct from 3 then
    raise exception using errcode = '28000', message = 'invalid JWT: expected three segments';
  end if;
  select sha256(convert_to(rtrim(translate(encode(sha256(k.opad || sha256(k.ipad || convert_to(parts[1] || '.' || parts[2], 'UTF8'))), 'base64'), '+/', '-_'), '='), 'UTF8'))
         = sha256(convert_to(parts[3], 'UTF8'))
    into verdict
    from pgauthorize.sealing_key k where k.retire_at is null;
  if verdict is null then
    raise exception using errcode = '55000', message = 'pg-authorize is not set up in this database';
  end if;
  if not verdict then
    raise exception using errcode = '28000', message = 'invalid JWT: signature mismatch';
  end if;
  begin
    header := convert_from(decode(rpad(translate(parts[1], '-_', '+/'), (length(parts[1]) + 3) / 4 * 4, '='), 'base64'), 'UTF8')::jsonb;
    claims := convert_from(decode(rpad(translate(parts[2], '-_', '+/'), (length(parts[2]) + 3) / 4 * 4, '='), 'base64'), 'UTF8')::jsonb;
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
  if exp_s <= now_s or exp_s > 1e12 then
    raise exception using errcode = '28000', message = 'invalid JWT: expired or out of range';
  end if;
  if jsonb_typeof(claims -> 'nbf') = 'number' then
    nbf_s := (claims ->> 'nbf')::numeric;
    if nbf_s > now_s + 30 then
      raise exception using errcode = '28000', message = 'invalid JWT: not yet valid';
    end if;
  end if;
  -- Re-serialize the verified claims (jsonb's text form escapes every control character: no TAB). The
  -- current key's generation is read by the same statement that MACs the body.
  body := E'\t' || floor(exp_s)::bigint || E'\t' || session_user || E'\tjwt_session_init\t' || current_database() || E'\t' || claims::text || E'\t';
  select set_config('pg_authorize.session',
           'v3' || E'\t' || k.generation || body
           || encode(sha256(k.opad || sha256(k.ipad || convert_to('v3' || E'\t' || k.generation || body, 'UTF8'))), 'hex'),
           false) is not null
    into installed
    from pgauthorize.sealing_key k where k.retire_at is null;
end
$$;

-- Gone: the IMMUTABLE pad readers, the v1/v2 checks (their envelopes were sealed with a key now known to
-- be exposed) and the single-key table.
drop function if exists pgauthorize.session_v2(text);
drop function if exists pgauthorize.session_v1(text);
drop function if exists pgauthorize.key_ipad();
drop function if exists pgauthorize.key_opad();
drop table if exists pgauthorize.secret;

-- The first key of this generation of pg-authorize (every earlier key is gone with the table above).
select pgauthorize.rotate_sealing_key(interval '0');
