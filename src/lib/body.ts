/**
 * Reads a Request's or Response's body with a size cap enforced while reading: a declared
 * Content-Length over the cap fails at once, and reading stops at the first chunk past it, so an
 * oversized body is never buffered. Web-standard streams only (runs on any runtime).
 *
 * @module
 */
export async function readCapped(
  source: { headers: Headers; body: ReadableStream<Uint8Array> | null },
  max: number,
  tooLarge: () => Error,
): Promise<Uint8Array> {
  const declared = source.headers.get('content-length')
  if (declared !== null && Number(declared) > max) {
    source.body?.cancel().catch(() => {})
    throw tooLarge()
  }
  if (source.body === null) return new Uint8Array(0)
  const reader = source.body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > max) {
      reader.cancel().catch(() => {})
      throw tooLarge()
    }
    chunks.push(value)
  }
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(total)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.byteLength
  }
  return out
}
