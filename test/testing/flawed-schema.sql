-- A deliberately flawed schema: every rule of `pg-authorize lint` fires on it (run after setup, so the
-- default privileges grant each new table to the restricted roles).

-- rls-disabled: granted, no RLS.
create table public.secrets (id int primary key, owner text not null, body text);

-- rls-no-policy: RLS on, no policy.
create table public.locked (id int primary key);
alter table public.locked enable row level security;

-- auth-call-per-row, permissive-true, uid-not-uuid and sequence-grant, all on one table.
create table public.notes (id serial primary key, owner text not null, body text);
alter table public.notes enable row level security;
create policy notes_read on public.notes for select to authenticated using (owner = auth.user_id());
create policy notes_insert on public.notes for insert to authenticated with check (true);
create policy notes_update on public.notes for update to authenticated using ((select auth.uid())::text = owner);
revoke usage, select on sequence public.notes_id_seq from authenticated, anonymous;

-- security-definer: executable through PUBLIC, the default for a new function.
create function public.all_notes() returns setof public.notes language sql security definer
  as 'select * from public.notes';

-- large-objects: a restricted role given a large-object function back (setup revoked them from PUBLIC).
grant execute on function pg_catalog.lo_get(oid) to authenticated;
