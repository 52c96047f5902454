/** Waiting for something to become true, bounded (tests never assert wall-clock times). */

/** Polls `check` until it returns true, at most `tries` times, `ms` apart; a check that throws counts as false. */
export async function eventually(check: () => Promise<boolean> | boolean, tries = 100, ms = 50): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await Promise.resolve().then(check).catch(() => false)) return true
    await new Promise((r) => setTimeout(r, ms))
  }
  return false
}
