/**
 * drizzle-kit settings: `npx drizzle-kit generate` writes the migration (tables, RLS, crudPolicy
 * policies) to ./drizzle; `npx drizzle-kit migrate` applies it with the owner's connection string.
 * The roles are Neon's (`authenticated`, `anonymous`), which `pg-authorize setup` creates, so drizzle-kit
 * never emits CREATE ROLE for them.
 */
import { defineConfig } from 'drizzle-kit'

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './drizzle',
  entities: { roles: { provider: 'neon' } },
  dbCredentials: { url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:55432/neondb' },
})
