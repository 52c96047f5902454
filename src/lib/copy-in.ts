/**
 * Queries that refuse `COPY … FROM STDIN` and still finish, for tools that run a user's SQL on a pg client
 * with no data to send (the console's playground).
 *
 * pg answers a CopyInResponse with CopyFail. In the extended protocol it has already sent its Sync with the
 * Execute, and Postgres ignores a Sync that arrives during COPY IN; after the CopyFail it then discards input
 * until a Sync that never comes, and the connection (with everything queued behind it) waits forever
 * (issue 23). One extended query is one statement, so the COPY is always the one that swallowed the Sync:
 * send another. The simple protocol needs none (Postgres answers ReadyForQuery after the CopyFail itself).
 *
 * @module
 */
import pg from 'pg'

interface CopyConnection {
  sendCopyFail(message: string): void
  sync(): void
}

class NoCopyInQuery extends pg.Query {
  handleCopyInResponse(connection: CopyConnection): void {
    connection.sendCopyFail('COPY FROM STDIN is not supported here')
    if ((this as unknown as { requiresPreparation(): boolean }).requiresPreparation()) connection.sync()
  }
}

/** `client.query(config)`, with COPY FROM STDIN refused as above. */
export function queryRefusingCopyIn<R extends pg.QueryResultRow = pg.QueryResultRow>(
  client: pg.ClientBase,
  config: pg.QueryConfig | pg.QueryArrayConfig,
): Promise<pg.QueryResult<R>> {
  return new Promise((resolve, reject) => {
    const query = new NoCopyInQuery(config, (err, result) => {
      if (err) reject(err)
      else resolve(result as unknown as pg.QueryResult<R>)
    })
    client.query(query)
  })
}
