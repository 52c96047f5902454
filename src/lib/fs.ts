/** File-system helpers shared by every part that writes state (keys, dev, embedded Postgres). */
import { mkdir, stat } from 'node:fs/promises'
import path from 'node:path'

/**
 * `mkdir -p`, one level at a time. Node's own `mkdir(dir, { recursive: true })` loops forever (at full
 * CPU) under a parent that refuses new entries with ENOENT, such as `/proc`; this fails at once with the
 * operating system's error instead.
 */
export async function ensureDir(dir: string, mode?: number): Promise<void> {
  const options = mode === undefined ? {} : { mode }
  try {
    await mkdir(dir, options)
    return
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') {
      if ((await stat(dir)).isDirectory()) return
      throw err
    }
    const parent = path.dirname(dir)
    if (code !== 'ENOENT' || parent === dir) throw err
    await ensureDir(parent, mode)
  }
  // The parent exists now: a second failure is final.
  try {
    await mkdir(dir, options)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !(await stat(dir)).isDirectory()) throw err
  }
}
