import proxyAddr from 'proxy-addr';
import type { Config } from '../config/schema.ts';

/** Whether the peer at `address`, `hop` proxies away from the server, is trusted to forward. */
export type TrustProxy = (address: string, hop: number) => boolean;

/**
 * The `http.trustProxy` setting compiled once, as express compiles its "trust proxy": `true`
 * trusts every hop, a number that many hops, a string a comma-separated list of addresses and
 * subnets (proxy-addr's names such as `loopback` too), `false` none. Express and the node:http
 * endpoints share the result, so they always agree on which request came over https.
 */
export function compileTrustProxy(setting: Config['http']['trustProxy']): TrustProxy {
  if (setting === true) return () => true;
  if (typeof setting === 'number') return (_address, hop) => hop < setting;
  if (setting === false) return proxyAddr.compile([]);
  return proxyAddr.compile(setting.split(',').map((part) => part.trim()));
}
