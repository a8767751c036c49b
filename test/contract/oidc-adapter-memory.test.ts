import { createMemoryEphemeralStore } from '../../src/store/ephemeral/memory-ephemeral-store.ts';
import { describeOidcAdapterContract } from './oidc-adapter.contract.ts';

describeOidcAdapterContract('in-process store', async () => {
  let now = Date.parse('2030-01-01T00:00:00Z');
  const clock = () => now;
  const store = createMemoryEphemeralStore({ keyPrefix: 'tessera:', clock });
  return {
    store,
    clock,
    advance: async (ms) => {
      now += ms;
    },
    cleanup: () => store.close(),
  };
});
