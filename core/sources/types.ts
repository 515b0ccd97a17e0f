import type { Readable } from 'node:stream';

/** Rows of one table, as the dump contains them. */
export interface TableCount {
  /** Schema (PostgreSQL) or database (MySQL). */
  readonly schema: string;
  readonly name: string;
  readonly rows: number;
}

export type ArtifactFormat =
  | 'pg_dump-custom'
  | 'pg_dumpall-globals-sql'
  | 'mysqldump-sql'
  /** A per-tenant export (core/tenants/format.ts): COPY sections / batched INSERTs. */
  | 'tenant-pg-copy'
  | 'tenant-mysql-insert';

/** A dump in progress: its bytes, and what it will have contained once it has finished. */
export interface RunningDump {
  readonly format: ArtifactFormat;
  /** File name extension of the plaintext (before `.zst.enc`). */
  readonly extension: string;
  readonly stdout: Readable;
  /**
   * Resolves, once the tool exited cleanly and every check passed, with the exact row count of
   * every table the dump contains; rejects with a clear error otherwise. The pipeline holds back
   * the end of the stream until it resolves, so a failed dump never completes an upload.
   */
  readonly completed: Promise<readonly TableCount[]>;
  /** Stops the dump and releases its connections. */
  abort(): void;
  /** Passes every byte of the dump (in order), for sources that count rows from the stream. */
  observe?(chunk: Buffer): void;
  /** Size of the largest statement (MySQL), known once `completed` has resolved. */
  largestStatementBytes?(): number;
}

/** What a source reports about its server and tools. */
export interface SourceInfo {
  readonly serverVersion: string;
  readonly toolVersions: Readonly<Record<string, string>>;
}
