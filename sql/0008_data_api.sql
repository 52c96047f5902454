-- pg-authorize 0008: the Data API (issue 17, PostgREST-compatible REST at /rest/v1).
--
-- auth.role(): Supabase-style policies call it. It answers the role the request runs as: session_user, the
-- role the gateway logged in as (the envelope is bound to it; SET ROLE cannot change it). Not the token's
-- `role` claim: a token claiming a role its provider does not allow runs as the provider's default role,
-- and a policy testing auth.role() must see that role, not the claim.
create or replace function auth.role() returns text
language sql stable parallel safe
begin atomic
  select session_user::text;
end;

-- Schema reloads: every gateway serving the Data API LISTENs on `pgrst` (PostgREST's channel) and reloads
-- its schema cache, coalesced, on `NOTIFY pgrst, 'reload schema'`. DDL sends that notification itself through
-- this event trigger (temporary objects excepted: they are invisible to the API). Creating an event trigger
-- needs a superuser; without one the trigger is skipped with a notice, and NOTIFY by hand still works.
create or replace function pgauthorize.notify_schema_change() returns event_trigger
language plpgsql as $$
begin
  if tg_event = 'sql_drop' then
    if not exists (select 1 from pg_catalog.pg_event_trigger_dropped_objects() d where not d.is_temporary) then
      return;
    end if;
  elsif not exists (select 1 from pg_catalog.pg_event_trigger_ddl_commands() c
                     where c.schema_name is null or c.schema_name operator(pg_catalog.!~) '^pg_temp') then
    return;
  end if;
  perform pg_catalog.pg_notify('pgrst', 'reload schema');
end
$$;
revoke all on function pgauthorize.notify_schema_change() from public;

do $$
begin
  if not exists (select 1 from pg_catalog.pg_event_trigger where evtname = 'pgauthorize_schema_change') then
    create event trigger pgauthorize_schema_change on ddl_command_end execute function pgauthorize.notify_schema_change();
  end if;
  if not exists (select 1 from pg_catalog.pg_event_trigger where evtname = 'pgauthorize_schema_drop') then
    create event trigger pgauthorize_schema_drop on sql_drop execute function pgauthorize.notify_schema_change();
  end if;
exception when insufficient_privilege then
  raise notice 'pg-authorize: not a superuser, so no event trigger reloads the Data API after DDL; run NOTIFY pgrst, ''reload schema'' after schema changes';
end
$$;
