/** The program: runs `main` on the process's arguments and sets the exit status. */
import { main } from './main.js'

// `pg-authorize config print | head -1`: the reader left, which is not a failure of ours.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 0 : 1))
}

// Exit as soon as the command is done: a failed start may leave handles open (a pool, a listener that
// did bind), and a process that then idles is, under systemd or a container, a hung service instead of a
// restart. Standard output and error are synchronous for files and pipes on POSIX, so nothing is lost.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  () => {
    console.error('error [ERR_INTERNAL]: unexpected failure')
    process.exit(1)
  },
)
