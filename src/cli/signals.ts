/** Keeps a long-running command alive until SIGINT/SIGTERM, then stops it cleanly; SIGHUP reloads. */
export function runUntilSignal(stop: () => Promise<void>, options: { reload?: () => Promise<void>; onSignal?: (s: string) => void } = {}): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false
    const onStop = (signal: NodeJS.Signals) => {
      if (stopping) return
      stopping = true
      options.onSignal?.(signal)
      process.off('SIGHUP', onHup)
      stop().then(
        () => resolve(0),
        () => resolve(1),
      )
    }
    const onHup = () => void options.reload?.().catch(() => {})
    process.once('SIGINT', onStop)
    process.once('SIGTERM', onStop)
    if (options.reload) process.on('SIGHUP', onHup)
  })
}
