import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';

// The state of one sign-in at an upstream provider between the redirect there and the callback:
// kept server-side under the `state` it sent, bound to the browser that started it, taken once.

/** Where the sign-in came from, and so where it goes on. */
export type FlowOrigin =
  /** The OAuth/device interaction page: the interaction resumes with the login. */
  | { kind: 'interaction'; uid: string }
  /** The settings sign-in: a browser session, then `next` (a local path). */
  | { kind: 'settings'; next: string }
  /** Settings, signed in: the identity is linked to this account. */
  | { kind: 'link'; userId: string };

export interface UpstreamFlow {
  provider: string;
  codeVerifier: string;
  nonce: string;
  origin: FlowOrigin;
  /** sha256 of the browser's binding cookie. */
  browser: string;
}

const KEY = (state: string) => `idp:flow:${state}`;

/** How long a person has at the provider: long enough for a password manager and a second factor there. */
export const FLOW_TTL_MS = 10 * 60_000;

const digest = (value: string) => createHash('sha256').update(value).digest('base64url');

/** Sign-ins one address may start per minute: each stores a flow for FLOW_TTL_MS. */
export const STARTS_PER_IP_PER_MINUTE = 30;

export function createFlowStore(ephemeral: EphemeralStore) {
  return {
    /** Counts a start from `ip`; false once the address is over STARTS_PER_IP_PER_MINUTE. */
    async allowStart(ip: string): Promise<boolean> {
      const { count } = await ephemeral.increment(`idp:starts:${ip}`, 60_000);
      return count <= STARTS_PER_IP_PER_MINUTE;
    },
    /** Saves a flow; returns its `state` (random, 256 bits). */
    async begin(flow: Omit<UpstreamFlow, 'browser'>, browserBinding: string): Promise<string> {
      const state = randomBytes(32).toString('base64url');
      await ephemeral.set(KEY(state), JSON.stringify({ ...flow, browser: digest(browserBinding) } satisfies UpstreamFlow), { ttlMs: FLOW_TTL_MS });
      return state;
    },
    /**
     * Takes the flow of `state` (GETDEL: of two callbacks with it, one gets it); 'unknown' when it
     * is gone (used, expired, never made), 'other_browser' when the binding cookie does not match.
     */
    async take(state: string, browserBinding: string | undefined): Promise<UpstreamFlow | 'unknown' | 'other_browser'> {
      if (!/^[A-Za-z0-9_-]{43}$/.test(state)) return 'unknown';
      const raw = await ephemeral.getDel(KEY(state));
      if (raw === null) return 'unknown';
      const flow = JSON.parse(raw) as UpstreamFlow;
      if (!browserBinding) return 'other_browser';
      const presented = Buffer.from(digest(browserBinding));
      const expected = Buffer.from(flow.browser);
      return presented.length === expected.length && timingSafeEqual(presented, expected) ? flow : 'other_browser';
    },
  };
}

export type FlowStore = ReturnType<typeof createFlowStore>;
