-- pg-authorize 0009: what a gateway does at run time, without the owner's rights (issue 19).
--
-- `setup` creates a login role for gateways and embedded authorizers (`pgauthorize_gateway`: NOINHERIT,
-- NOBYPASSRLS, owns nothing, a member of nothing) and grants it, per database, only what a running gateway
-- does: read the providers, the sealing key, the restricted roles' credentials and time limits; LISTEN
-- (which needs no privilege); append to the audit table; and the three functions below.
--
-- Those three are SECURITY DEFINER: they run as their owner, the role that ran `setup` (a superuser in
-- `dev`, the database owner with CREATEROLE elsewhere), and each does one narrow thing a gateway needs
-- that its own rights cannot do. Each refuses any role that is not a restricted role of this database:
-- never the owner, a superuser, or the gateway role itself. search_path is pinned; every object is
-- schema-qualified.
--
-- The grants themselves are made by setup (setup.ts, `grantGateway`), after it creates the role.

-- Undoes what a restricted role did to itself (`ALTER ROLE CURRENT_USER PASSWORD ...` / `... SET ...`),
-- as database/role-repair.ts describes: every stored setting of the role is reset and its password set to
-- `verifier`, a SCRAM-SHA-256 verifier the gateway computed from the stored password (the password itself
-- never appears in SQL text, which a failed statement writes to the server log). Serialized per role by
-- an advisory lock. When the owner is a superuser it also holds SHARE locks on the role catalogs for a
-- short window and terminates the role's backends that wait on them (a client looping ALTER ROLE).
-- Returns how many backends it terminated.
--
-- What a caller could do with it: set a restricted role's password to a verifier of its choosing, i.e.
-- lock the other gateways out. The gateway role can read the real password anyway, and the restricted
-- roles can do as much to themselves; it cannot touch any other role.
create or replace function pgauthorize.repair_role(target name, verifier text) returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s' as $$
declare
  r record;
  su boolean;
  caught int := 0;
  n int;
begin
  if not exists (select 1 from pgauthorize.role_credentials c where c.role = target) then
    raise exception using errcode = '42501', message = 'not a restricted role of this database';
  end if;
  if exists (select 1 from pg_catalog.pg_roles x where x.rolname = target
              and (x.rolsuper or x.rolbypassrls or x.rolreplication or x.rolcreaterole or x.rolcreatedb)) then
    raise exception using errcode = '42501', message = 'the role is no longer restricted; run setup';
  end if;
  if verifier is null or verifier !~ '^SCRAM-SHA-256\$[0-9]{4,7}:[A-Za-z0-9+/=]{8,64}\$[A-Za-z0-9+/=]{40,64}:[A-Za-z0-9+/=]{40,64}$' then
    raise exception using errcode = '22023', message = 'expected a SCRAM-SHA-256 verifier';
  end if;
  perform pg_catalog.pg_advisory_xact_lock(1885823346, pg_catalog.hashtext(target));
  select x.rolsuper into su from pg_catalog.pg_roles x where x.rolname = current_user;
  if su then
    lock table pg_catalog.pg_authid, pg_catalog.pg_db_role_setting in share mode;
  end if;
  for r in select d.datname from pg_catalog.pg_db_role_setting s
             left join pg_catalog.pg_database d on d.oid = s.setdatabase
            where s.setrole = (select x.oid from pg_catalog.pg_roles x where x.rolname = target) loop
    if r.datname is null then
      execute pg_catalog.format('alter role %I reset all', target);
    else
      execute pg_catalog.format('alter role %I in database %I reset all', target, r.datname);
    end if;
  end loop;
  execute pg_catalog.format('alter role %I password %L', target, verifier);
  if su then
    for i in 1..4 loop
      perform pg_catalog.pg_sleep(0.015);
      perform pg_catalog.pg_stat_clear_snapshot();
      select count(*) filter (where pg_catalog.pg_terminate_backend(l.pid)) into n
        from pg_catalog.pg_locks l join pg_catalog.pg_stat_activity a on a.pid = l.pid
       where not l.granted and l.locktype = 'relation'
         and l.relation in ('pg_catalog.pg_authid'::pg_catalog.regclass, 'pg_catalog.pg_db_role_setting'::pg_catalog.regclass)
         and a.usename = target;
      caught := caught + n;
    end loop;
  end if;
  return caught;
end
$$;
revoke all on function pgauthorize.repair_role(name, text) from public;

-- Terminates backends of restricted roles whose wire session is over but whose statement ignores the
-- cancel (database/backend-reaper.ts): named by pid and backend_start, so a reused pid is never hit, and
-- only backends logged in as a restricted role of this database.
create or replace function pgauthorize.reap_backends(pids int[], starts numeric[], roles text[]) returns int
language sql volatile security definer
set search_path = pg_catalog, pg_temp as $$
  select (count(*) filter (where pg_catalog.pg_terminate_backend(a.pid)))::int
    from pg_catalog.pg_stat_activity a
    join unnest(pids, starts, roles) as t(pid, started, role) on a.pid = t.pid
   where extract(epoch from a.backend_start) = t.started
     and a.usename::text = t.role
     and a.usename in (select c.role from pgauthorize.role_credentials c)
$$;
revoke all on function pgauthorize.reap_backends(int[], numeric[], text[]) from public;

-- Retention of the audit table: the gateway may append to it and purge what is older than `days` (at
-- least one), never edit or delete recent records.
create or replace function pgauthorize.purge_audit_log(days int) returns bigint
language sql volatile security definer
set search_path = pg_catalog, pg_temp as $$
  with gone as (
    delete from pgauthorize.audit_log
     where at < pg_catalog.now() - pg_catalog.make_interval(days => greatest(coalesce(days, 30), 1))
    returning 1
  )
  select count(*) from gone
$$;
revoke all on function pgauthorize.purge_audit_log(int) from public;

-- The gateway roles' login passwords, one row per gateway role set up here. Only the owner reads it.
create table if not exists pgauthorize.gateway_credentials (
  role name primary key,
  password text not null,
  created_at timestamptz not null default now()
);
revoke all on pgauthorize.gateway_credentials from public;
