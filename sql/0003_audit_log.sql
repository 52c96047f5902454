-- pg-authorize 0003: the optional audit table (enabled with --audit-table).
-- One row per verified identity use: who (provider, sub), as which role, over which transport, what kind
-- of statement, and the outcome. Never the token, the claims or query parameters.
create table if not exists pgauthorize.audit_log (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  request_id text,
  provider text,
  subject text,
  role text not null,
  database text not null,
  transport text not null,
  statement text,
  outcome text not null,
  code text
);
create index if not exists audit_log_at on pgauthorize.audit_log (at);
revoke all on pgauthorize.audit_log from public;
