/** The program: runs `main` on the process's arguments and sets the exit status. */
import { main } from './main.js'

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  () => {
    console.error('error [ERR_INTERNAL]: unexpected failure')
    process.exitCode = 1
  },
)
