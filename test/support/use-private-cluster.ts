import { afterAll, beforeAll } from '@jest/globals';
import { startPrivateCluster, type PrivateCluster, type PrivateClusterOptions } from './private-cluster.ts';

// The jest hooks of test/support/private-cluster.ts, apart so that the bench can start a cluster
// without jest.

/**
 * A cluster for the test file that calls this (at its top level): started before its tests,
 * stopped after them. Returns a getter for it.
 */
export function usePrivateCluster(options: PrivateClusterOptions = {}): () => PrivateCluster {
  let cluster: PrivateCluster | undefined;
  beforeAll(async () => {
    cluster = await startPrivateCluster(options);
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });
  return () => {
    if (!cluster) throw new Error('the private Redis Cluster is not running');
    return cluster;
  };
}
