import { sha256Base64url } from '../shared/sha256.ts';
import { createTurnBatches } from '../shared/turn-batches.ts';
import type { Logger } from 'pino';
import type { ConnectionState, EphemeralStore, Subscription } from '../store/ephemeral/ephemeral-store.ts';

/**
 * What a cached credential answer depends on, named so that whoever ends it can say so without
 * knowing the credential itself. A cached answer lists its targets; an invalidation names some;
 * every cached answer sharing one is dropped. No target carries a secret: tokens appear only as
 * digests, grants as digests of their id.
 */
export const invalidationTarget = {
  user: (userId: string) => `user:${userId}`,
  client: (clientId: string) => `client:${clientId}`,
  /** An oidc-provider grant (everything issued under one authorization). */
  grant: (grantId: string) => invalidationTarget.grantDigest(sha256Base64url(grantId)),
  /** The same, by the digest of the grant id (what the oidc adapter's key names hold). */
  grantDigest: (digest: string) => `grant:${digest}`,
  /** An opaque OAuth token or code, by the digest the adapter keys it with. */
  oauthToken: (digest: string) => `oauth:${digest}`,
  /** A JWT access token without a grant (client credentials), by its jti. */
  jwtAccessToken: (jti: string) => `jwt:${sha256Base64url(jti)}`,
  /** An API session, by the digest of its token. */
  session: (digest: string) => `session:${digest}`,
  /** A personal access token, by its public id. */
  personalToken: (tokenId: string) => `pat:${tokenId}`,
  /** The signing keys changed (a rotation): every node reads them again. */
  signingKeys: () => 'keys:signing',
} as const;

/** Told what ended; each module that ends credentials takes one of these. */
export type InvalidationPublisher = (...targets: string[]) => Promise<void>;

export interface InvalidationSubscriber {
  /** Drop every cached answer that depends on one of these targets. */
  invalidate(targets: string[]): void;
  /**
   * The channel went down ('down': messages may be lost from now on) or came back ('up'). A cache
   * flushes on both and serves nothing from memory while down.
   */
  channelState(state: ConnectionState): void;
}

export interface Invalidations {
  /**
   * Tells this process's subscribers at once, then every other node through the store's pub/sub:
   * the targets published in one turn of the event loop go out together, and the promise settles
   * (never rejects) once they have been handed to the store.
   */
  publish: InvalidationPublisher;
  /** Listens to invalidations from every node, this one included. */
  subscribe(subscriber: InvalidationSubscriber): Promise<Subscription>;
  /** Told, for each message from any node, how long it took to arrive (seconds; the metrics). */
  observeLag(listener: (seconds: number) => void): Promise<Subscription>;
}

/** The channel name (the store adds its key prefix, so deployments sharing a Redis stay apart). */
export const INVALIDATION_CHANNEL = 'tessera:invalidations';

const MAX_TARGETS_PER_MESSAGE = 1000;

/**
 * A message is a JSON array of targets. Its first member, `at:<ms since the epoch>`, says when it
 * was published: a target nothing is cached under, so that a node that does not know it still
 * reads the message right (rolling upgrades).
 */
const SENT_AT = /^at:(\d{1,16})$/;

function parseMessage(message: string): { targets: string[]; sentAt: number | null } | null {
  try {
    const parsed: unknown = JSON.parse(message);
    if (!Array.isArray(parsed) || !parsed.every((t) => typeof t === 'string')) return null;
    const stamp = SENT_AT.exec((parsed[0] as string | undefined) ?? '');
    return stamp ? { targets: (parsed as string[]).slice(1), sentAt: Number(stamp[1]) } : { targets: parsed as string[], sentAt: null };
  } catch {
    return null;
  }
}

/**
 * Invalidations over the ephemeral store's pub/sub (Redis in production). A node that ends a
 * credential invalidates its own caches synchronously and publishes the same targets for the
 * others. Publishing never fails the operation that ended the credential: when Redis refuses the
 * message it also refuses the other nodes' subscriptions, and their caches are then bypassed.
 */
export function createInvalidations(store: EphemeralStore, logger: Logger, clock: () => number = Date.now): Invalidations {
  const local = new Set<InvalidationSubscriber>();

  const deliver = (targets: string[]) => {
    for (const subscriber of local) {
      try {
        subscriber.invalidate(targets);
      } catch (error) {
        logger.error({ err: error }, 'an invalidation subscriber failed');
      }
    }
  };

  // The targets published in one turn go out as one message, up to MAX_TARGETS_PER_MESSAGE each
  // (docs/architecture.md#end-of-turn-batches). Never rejects.
  const queueTarget = createTurnBatches<string>(async (_channel, targets) => {
    const chunk = [...new Set(targets)];
    try {
      await store.publish(INVALIDATION_CHANNEL, JSON.stringify([`at:${clock()}`, ...chunk]));
    } catch (error) {
      logger.warn({ reason: error instanceof Error ? error.message : String(error), targets: chunk.length }, 'could not publish an invalidation; other nodes bypass their caches while the store is unreachable');
    }
  }, MAX_TARGETS_PER_MESSAGE);

  return {
    async publish(...targets) {
      const unique = [...new Set(targets)];
      if (unique.length === 0) return;
      deliver(unique);
      await Promise.all(new Set(unique.map((target) => queueTarget(INVALIDATION_CHANNEL, target))));
    },

    async subscribe(subscriber) {
      const subscription = await store.subscribe(
        INVALIDATION_CHANNEL,
        (message) => {
          const parsed = parseMessage(message);
          if (parsed) subscriber.invalidate(parsed.targets);
          else logger.warn('ignored a malformed invalidation message');
        },
        {
          onStateChange: (state) => subscriber.channelState(state),
          // What was cached from a store that lost data is stale: flushed as at a reconnection.
          onDataLost: () => {
            subscriber.channelState('down');
            subscriber.channelState('up');
          },
        },
      );
      local.add(subscriber);
      return {
        async close() {
          local.delete(subscriber);
          await subscription.close();
        },
      };
    },

    async observeLag(listener) {
      return store.subscribe(INVALIDATION_CHANNEL, (message) => {
        const sentAt = parseMessage(message)?.sentAt;
        if (typeof sentAt === 'number') listener((clock() - sentAt) / 1000);
      });
    },
  };
}
