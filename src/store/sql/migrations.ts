import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Database, Queryable } from './database.ts';

export const MIGRATIONS_DIRECTORY = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'migrations');

/** Advisory lock key held while migrating, so nodes starting together migrate one at a time. */
export const MIGRATION_LOCK_KEY = 0x7e55e7a;

/** A file whose first line is this comment runs outside a transaction (e.g. CREATE INDEX CONCURRENTLY). */
const NO_TRANSACTION_MARKER = '-- tessera:no-transaction';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrationReport {
  applied: Migration[];
  current: number;
}

/** Reads NNNN_name.sql files, in order; numbers must be unique and files never edited once released. */
export async function readMigrations(directory = MIGRATIONS_DIRECTORY): Promise<Migration[]> {
  const files = (await readdir(directory)).filter((file) => file.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!match) throw new Error(`migration file ${file} is not named NNNN_name.sql`);
    const sql = await readFile(join(directory, file), 'utf8');
    const version = Number(match[1]);
    if (migrations.some((m) => m.version === version)) throw new Error(`two migrations share the number ${match[1]}`);
    migrations.push({ version, name: match[2]!, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  return migrations;
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
}

async function apply(connection: Queryable, migration: Migration): Promise<void> {
  const record = () =>
    connection.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [migration.version, migration.name, migration.checksum]);
  if (migration.sql.startsWith(NO_TRANSACTION_MARKER)) {
    await connection.exec(migration.sql);
    await record();
    return;
  }
  await connection.exec('BEGIN');
  try {
    await connection.exec(migration.sql);
    await record();
    await connection.exec('COMMIT');
  } catch (error) {
    await connection.exec('ROLLBACK');
    throw new Error(`migration ${migration.version}_${migration.name} failed: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Brings the schema up to date, forward only, under an advisory lock. Refuses to run when an
 * applied migration's file has changed, or when the database is newer than this release.
 */
export async function migrate(database: Database, migrations?: Migration[]): Promise<MigrationReport> {
  const known = migrations ?? (await readMigrations());
  return database.withAdvisoryLock(MIGRATION_LOCK_KEY, async (connection) => {
    await connection.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer     PRIMARY KEY,
      name       text        NOT NULL,
      checksum   text        NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await connection.query<AppliedRow>('SELECT version, name, checksum FROM schema_migrations ORDER BY version');
    const byVersion = new Map(known.map((m) => [m.version, m]));
    for (const row of rows) {
      const migration = byVersion.get(row.version);
      if (!migration) {
        throw new Error(`the database has migration ${row.version}_${row.name}, which this release of Tessera does not know: it is newer than this code`);
      }
      if (migration.checksum !== row.checksum) {
        throw new Error(`migration ${row.version}_${row.name} was changed after it was applied; released migrations are immutable, add a new one instead`);
      }
    }
    const done = new Set(rows.map((row) => row.version));
    const applied: Migration[] = [];
    for (const migration of known) {
      if (done.has(migration.version)) continue;
      await apply(connection, migration);
      applied.push(migration);
    }
    return { applied, current: known.at(-1)?.version ?? 0 };
  });
}
