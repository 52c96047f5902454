/** Starting a Node server on a port, and naming its address in URLs. */
import type { AddressInfo, Server } from 'node:net'

/** Listens on `host:port` (0 picks a free port); rejects on EADDRINUSE and the like. */
export function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve(server.address() as AddressInfo)
    })
  })
}

/** The host as it goes into a URL: IPv6 addresses in brackets. */
export const urlHost = (host: string): string => (host.includes(':') ? `[${host}]` : host)
