-- pg-authorize 0005: envelope v2, and an auth.session() at 3.3 us a call instead of 8.1 (per-row bench).
--
-- The v2 envelope (src/database/session.ts sealClaims), fields separated by TAB (E'\t'):
--   v2 TAB <exp> TAB <claims JSON> TAB <hex(HMAC-SHA256(key, 'v2' TAB <exp> TAB <claims JSON> TAB))>
-- The MAC covers every byte before it, version first. The claims travel as raw JSON: JSON text never holds a
-- raw TAB (control characters are always escaped inside strings), so the fields split unambiguously.
--
-- Where 0004's ~8.5 us a call went, and what this version does instead (bench/rls.ts, per-row form):
--   * base64url of the payload and of the MAC (encode, translate, rtrim, rpad, decode): raw JSON, hex MAC;
--   * text functions that count characters (left, length, substr walk the UTF-8 string): byte offsets in
--     one bytea, and split_part, which searches bytes;
--   * a SET search_path clause, applied and undone on every call: every name is schema-qualified instead
--     (functions, operators and types), so no search_path a caller sets can substitute anything;
--   * the setting read inside the function: auth.session() is now an SQL function the planner inlines,
--     so the caller's own expression reads the setting and passes it to the SECURITY DEFINER check.
-- What is left is the floor (reading the setting, parsing the JSON), the PL/pgSQL call, and four SHA-256
-- calls: HMAC inner and outer, and the two that make the comparison of the MACs timing-independent.
--
-- v1 envelopes (0002's format) are still accepted, on a slower path, while gateways of an older version
-- may still send them. A MAC of one version never validates the other: each covers its own version tag.

-- v1 envelopes, and the reason for any envelope the fast path did not accept (0004's checks, unchanged).
create or replace function pgauthorize.session_v1(envelope text) returns jsonb
language plpgsql stable parallel safe security definer
set search_path = pg_catalog, pg_temp as $$
declare
  mac text;
  signing_input text;
  payload text;
begin
  if envelope is null or envelope = '' then
    return 'null'::jsonb;
  end if;
  if starts_with(envelope, E'v2\t') then
    -- A v2 envelope lands here only when it is too short to hold a MAC.
    return pgauthorize.reject_session('signature mismatch');
  end if;
  mac := split_part(envelope, '.', -1);
  signing_input := left(envelope, length(envelope) - length(mac) - 1);
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
revoke all on function pgauthorize.session_v1(text) from public;

-- The check itself: the claims of a valid v2 envelope, JSON null for none, SQLSTATE 28000 otherwise.
-- No SET clause (it would cost ~0.2 us a call): every function, operator and type below is qualified with
-- pg_catalog or pgauthorize, and no string literal depends on standard_conforming_strings.
-- One expression, evaluated in this order (CASE guarantees it): the version tag and a length that can
-- hold a MAC; the MAC (hashes of the hex MACs are compared, never the MACs, so the comparison's time says
-- nothing about the expected MAC; a missing key makes the HMAC NULL, which is not equal: rejected); only
-- then the expiry and the JSON, which come from MAC-checked bytes. The given MAC is hashed as the bytes it
-- is, so no hex decoding can fail on a forged one; the computed MAC's hex digits become the same bytes
-- through bytea input (no backslash in hex digits, and no setting changes how bytea input reads them).
-- Callable by everyone because auth.session() is inlined into the caller's query; the restricted roles
-- still cannot name it (no USAGE on the schema), and it only answers what auth.session() answers.
create or replace function pgauthorize.session_v2(envelope text) returns jsonb
language plpgsql stable parallel safe security definer as $$
declare
  b pg_catalog.bytea := pg_catalog.convert_to(envelope, 'UTF8');
begin
  return case
    when pg_catalog.substring(b, 1, 3) operator(pg_catalog.=) pg_catalog.decode('763209', 'hex') -- 'v2' TAB
         and pg_catalog.length(b) operator(pg_catalog.>) 64 then
      case when pg_catalog.sha256(pg_catalog.encode(pg_catalog.sha256(
                  pgauthorize.key_opad() operator(pg_catalog.||) pg_catalog.sha256(
                    pgauthorize.key_ipad() operator(pg_catalog.||)
                    pg_catalog.substring(b, 1, pg_catalog.length(b) operator(pg_catalog.-) 64))),
                'hex')::pg_catalog.bytea)
              operator(pg_catalog.=)
              pg_catalog.sha256(pg_catalog.substring(b, pg_catalog.length(b) operator(pg_catalog.-) 63))
        then
          case when pg_catalog.to_timestamp(pg_catalog.split_part(envelope, E'\t', 2)::pg_catalog.int8)
                    operator(pg_catalog.>) pg_catalog.clock_timestamp()
            then pg_catalog.split_part(envelope, E'\t', 3)::pg_catalog.jsonb
            else pgauthorize.reject_session('expired')
          end
        else pgauthorize.reject_session('signature mismatch')
      end
    when envelope is null or envelope operator(pg_catalog.=) '' then 'null'::pg_catalog.jsonb
    else pgauthorize.session_v1(envelope)
  end;
end
$$;
grant execute on function pgauthorize.session_v2(text) to public;

-- The verified claims of the current identity; JSON null when no identity is set.
-- Not SECURITY DEFINER, so the planner inlines it: the per-row cost is one PL/pgSQL call, not two
-- function calls. The body is SQL-standard (BEGIN ATOMIC): its names were resolved here, once.
create or replace function auth.session() returns jsonb
language sql stable parallel safe security invoker
begin atomic
  select pgauthorize.session_v2(pg_catalog.current_setting('pg_authorize.session', true));
end;

-- Installs a session identity from an HS256 JWT signed with this database's key, as a v2 envelope.
-- Unchanged from 0002 except the envelope it writes.
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
  body text;
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
  -- Re-serialize the verified claims into a v2 envelope, as the gateway does (jsonb's text form escapes
  -- every control character, so it holds no TAB).
  body := 'v2' || E'\t' || floor(exp_s)::bigint || E'\t' || claims::text || E'\t';
  perform set_config('pg_authorize.session',
    body || encode(sha256(k.opad || sha256(k.ipad || convert_to(body, 'UTF8'))), 'hex'), false);
end
$$;
