-- pg-authorize 0004: a faster auth.session(), same envelope, same checks.
--
-- Measured per call on Postgres 17 (bench/rls.ts, per-row form): the SQL-function version of 0002 took
-- about 17 us, most of it executor start-up for its FROM clause (the key table and a sub-select) on every
-- call. This PL/pgSQL version keeps its plans for the session and reads the key through two IMMUTABLE
-- functions, which the planner folds into constants once per session instead of a table read per call.
-- (If the key ever changed under a running session, its cached plans would fail every envelope: closed.)

-- The HMAC pads. Only the owner may call these (no grant; the restricted roles cannot even see the schema).
create or replace function pgauthorize.key_ipad() returns bytea
language sql immutable parallel safe
begin atomic
  select ipad from pgauthorize.secret where id = 1;
end;
revoke all on function pgauthorize.key_ipad() from public;

create or replace function pgauthorize.key_opad() returns bytea
language sql immutable parallel safe
begin atomic
  select opad from pgauthorize.secret where id = 1;
end;
revoke all on function pgauthorize.key_opad() from public;

-- The verified claims of the current identity; JSON null when no identity is set.
-- SET search_path pins every unqualified name (functions and operators) to pg_catalog whatever the
-- caller's search_path; pg_temp last, so no temporary object can shadow anything.
create or replace function auth.session() returns jsonb
language plpgsql stable parallel safe security definer
set search_path = pg_catalog, pg_temp as $$
declare
  envelope text := current_setting('pg_authorize.session', true);
  mac text;
  signing_input text;
  payload text;
begin
  if envelope is null or envelope = '' then
    return 'null'::jsonb;
  end if;
  mac := split_part(envelope, '.', -1);
  signing_input := left(envelope, length(envelope) - length(mac) - 1);
  -- Compare hashes of the two MACs, not the MACs: the comparison's time says nothing about the expected
  -- MAC. IS DISTINCT FROM: a missing key (NULL) must reject, never pass.
  if sha256(convert_to(rtrim(translate(encode(
         sha256(pgauthorize.key_opad() || sha256(pgauthorize.key_ipad() || convert_to(signing_input, 'UTF8'))),
         'base64'), '+/', '-_'), '='), 'UTF8'))
     is distinct from sha256(convert_to(mac, 'UTF8')) then
    return pgauthorize.reject_session('signature mismatch');
  end if;
  if split_part(envelope, '.', 1) <> 'v1' then
    return pgauthorize.reject_session('unknown envelope version');
  end if;
  if split_part(envelope, '.', 2)::bigint <= date_part('epoch', clock_timestamp()) then
    return pgauthorize.reject_session('expired');
  end if;
  payload := split_part(envelope, '.', 3);
  return convert_from(decode(rpad(translate(payload, '-_', '+/'), (length(payload) + 3) / 4 * 4, '='), 'base64'), 'UTF8')::jsonb;
end
$$;
