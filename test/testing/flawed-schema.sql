-- A deliberately flawed schema: what `pg-authorize lint` reports on it is pinned in lint.test.ts (run after
-- setup, so the default privileges grant each new table to the restricted roles). One case per rule, each
-- alone and then fixed, is in lint-rules.test.ts.

-- rls_disabled_in_public: granted, no RLS.
create table public.secrets (id int primary key, owner text not null, body text);

-- rls_enabled_no_policy: RLS on, no policy.
create table public.locked (id int primary key);
alter table public.locked enable row level security;

-- auth_rls_initplan, rls_policy_always_true, uid_compared_as_text, policy_column_unindexed (owner) and
-- sequence_usage_missing, all on one table.
create table public.notes (id serial primary key, owner text not null, body text);
alter table public.notes enable row level security;
create policy notes_read on public.notes for select to authenticated using (owner = auth.user_id());
create policy notes_insert on public.notes for insert to authenticated with check (true);
create policy notes_update on public.notes for update to authenticated using ((select auth.uid())::text = owner);
revoke usage, select on sequence public.notes_id_seq from authenticated, anonymous;

-- {anon,authenticated}_security_definer_function_executable: executable through PUBLIC, the default for a
-- new function; and function_search_path_mutable, an error for such a function.
create function public.all_notes() returns setof public.notes language sql security definer
  as 'select * from public.notes';

-- large_objects_executable: a restricted role given a large-object function back (setup revoked them from PUBLIC).
grant execute on function pg_catalog.lo_get(oid) to authenticated;
