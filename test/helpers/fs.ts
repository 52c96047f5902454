/** Temporary folders for tests. */
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

/**
 * A fresh folder under the OS temp dir, readable by others (an embedded Postgres runs initdb as `postgres`
 * when the tests run as root). With `t`, it is removed when that test ends.
 */
export async function tempDir(prefix: string, t?: { after(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix))
  await chmod(dir, 0o755)
  t?.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}
