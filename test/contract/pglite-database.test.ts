import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPGliteDatabase } from '../../src/store/sql/pglite-database.ts';
import { describeDatabaseContract } from './database.contract.ts';

describeDatabaseContract('PGlite (embedded, on disk)', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'tessera-pglite-'));
  const database = await createPGliteDatabase({ dataDir });
  return { database, cleanup: () => rm(dataDir, { recursive: true, force: true }) };
});
