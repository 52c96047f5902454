-- pg-authorize 0010: the session reset as one function call (issue 18 item 2).
--
-- Before a pooled connection serves its next request the gateway undoes every piece of session state the
-- last one could have left (security property 4): the statements of Neon's local_proxy check-in. Sent as
-- seven statements they cost seven Parse/Bind/Execute exchanges per request, in the gateway and in
-- Postgres; as one function they cost one.
--
-- With `in_transaction`, the caller runs it inside the transaction of the request that follows (no COMMIT
-- between them, one statement and one warning fewer per request). Everything here takes effect at once
-- except UNLISTEN, which Postgres applies at commit: the request would still see the previous user's
-- channels in pg_listening_channels(). So when the session listens, it raises SQLSTATE PGL01 before doing
-- anything, and the gateway resets in a transaction of its own instead.
--
-- SECURITY INVOKER on purpose: it resets the caller's own session and nothing else, so any role may call
-- it (setup grants the restricted roles execute on every function in `auth`). No SET clause: a function's
-- SET restores the setting when it returns, which would undo `RESET ALL` for that setting. Every command
-- is a utility statement run with EXECUTE or a schema-qualified function, so no name a client could
-- shadow (a temporary function, a search_path of its own) is looked up.
create or replace function auth.reset_session(in_transaction boolean default false) returns void
language plpgsql volatile as $$
begin
  if in_transaction and exists (select 1 from pg_catalog.pg_listening_channels()) then
    raise exception using errcode = 'PGL01', message = 'the session listens: reset it in a transaction of its own';
  end if;
  execute 'CLOSE ALL';
  execute 'RESET ALL';
  execute 'DEALLOCATE ALL';
  execute 'UNLISTEN *';
  perform pg_catalog.pg_advisory_unlock_all();
  execute 'DISCARD TEMP';
  execute 'DISCARD SEQUENCES';
end
$$;
comment on function auth.reset_session(boolean) is 'pg-authorize: undoes what the previous user of a pooled connection left in its session (the gateway calls it before each reuse)';
