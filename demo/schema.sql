-- The guide's demo ("Using Custom JWTs with Neon Authorize"): tenants and users, each row visible only
-- to the JWT whose claims own it. The policies are drizzle-kit's output for crudPolicy, verbatim.
CREATE TABLE IF NOT EXISTS "tenants" (
	"id" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL
);
CREATE TABLE IF NOT EXISTS "users" (
	"tenant_id" uuid NOT NULL,
	"id" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"email" text NOT NULL,
	"settings" jsonb,
	"created_at" timestamp DEFAULT now() NOT NULL,
	"updated_at" timestamp DEFAULT now() NOT NULL
);
ALTER TABLE "tenants" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "users" ENABLE ROW LEVEL SECURITY;
DO $$ BEGIN
 ALTER TABLE "users" ADD CONSTRAINT "users_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
CREATE POLICY "crud-authenticated-policy-insert" ON "tenants" AS PERMISSIVE FOR INSERT TO "authenticated" WITH CHECK ((select auth.session()->>'tenant_id' = "tenants"."id"::text));
CREATE POLICY "crud-authenticated-policy-update" ON "tenants" AS PERMISSIVE FOR UPDATE TO "authenticated" USING ((select auth.session()->>'tenant_id' = "tenants"."id"::text)) WITH CHECK ((select auth.session()->>'tenant_id' = "tenants"."id"::text));
CREATE POLICY "crud-authenticated-policy-delete" ON "tenants" AS PERMISSIVE FOR DELETE TO "authenticated" USING ((select auth.session()->>'tenant_id' = "tenants"."id"::text));
CREATE POLICY "crud-authenticated-policy-select" ON "tenants" AS PERMISSIVE FOR SELECT TO "authenticated" USING ((select auth.session()->>'tenant_id' = "tenants"."id"::text));
CREATE POLICY "crud-authenticated-policy-insert" ON "users" AS PERMISSIVE FOR INSERT TO "authenticated" WITH CHECK ((select auth.user_id() = "users"."id"::text));
CREATE POLICY "crud-authenticated-policy-update" ON "users" AS PERMISSIVE FOR UPDATE TO "authenticated" USING ((select auth.user_id() = "users"."id"::text)) WITH CHECK ((select auth.user_id() = "users"."id"::text));
CREATE POLICY "crud-authenticated-policy-delete" ON "users" AS PERMISSIVE FOR DELETE TO "authenticated" USING ((select auth.user_id() = "users"."id"::text));
CREATE POLICY "crud-authenticated-policy-select" ON "users" AS PERMISSIVE FOR SELECT TO "authenticated" USING ((select auth.user_id() = "users"."id"::text));
