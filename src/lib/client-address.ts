/**
 * The peer address of a Web `Request` that came in through the Node adapter. A `Request` has no place
 * for it, and a header would be the client's to forge, so the adapter records it here, keyed by the
 * request object itself (nothing to clean up: the entry goes with the request).
 *
 * @module
 */

const addresses = new WeakMap<Request, string>()

/** Records the socket's peer address for `req` (the Node adapter calls this). */
export function rememberClientAddress(req: Request, address: string | undefined): void {
  if (address) addresses.set(req, address)
}

/** The socket peer address of `req`, or undefined when it did not come through the Node adapter. */
export function clientAddress(req: Request): string | undefined {
  return addresses.get(req)
}
