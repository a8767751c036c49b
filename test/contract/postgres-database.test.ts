import { createPostgresDatabase } from '../../src/store/sql/postgres-database.ts';
import { createTestDatabase } from '../support/services.ts';
import { describeDatabaseContract } from './database.contract.ts';

describeDatabaseContract('PostgreSQL (pg)', async () => {
  const testDatabase = await createTestDatabase();
  const database = await createPostgresDatabase({ url: testDatabase.url, poolSize: 4 });
  return { database, cleanup: testDatabase.drop };
});
