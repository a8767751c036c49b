import { createMemoryEphemeralStore } from '../../src/store/ephemeral/memory-ephemeral-store.ts';
import { describeApiSessionStoreContract } from './api-session-store.contract.ts';

describeApiSessionStoreContract('in-process store', async () => {
  let now = Date.parse('2030-01-01T00:00:00Z');
  // One clock for both: the store's TTLs and the session store's decisions move together.
  const clock = () => now;
  const store = createMemoryEphemeralStore({ keyPrefix: 'tessera:', clock });
  return {
    store,
    clock,
    advance: (ms) => {
      now += ms;
    },
    cleanup: () => store.close(),
  };
});
