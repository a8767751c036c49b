// Pub/sub on one dedicated connection, opened on the first subscribe. Subscribers hear 'down' when
// it is lost and 'up' only once Redis has confirmed every channel again. On a cluster the
// connection goes to one node (classic pub/sub reaches every node's subscribers) and, once lost, is
// replaced by one to another node: the node may be gone for good (docs/design/redis-keys.md).
import type { Redis } from 'ioredis';
import type { ConnectionState, SubscribeOptions, Subscription } from '../ephemeral/ephemeral-store.ts';
import { connectFirst, errorText, openConnection, quit, reasonOf, reconnectDelay, run, type Connection, type RedisContext, type RoleOptions } from './connection.ts';

interface Listener {
  handler: (message: string) => void;
  onStateChange: ((state: ConnectionState) => void) | undefined;
  onDataLost: (() => void) | undefined;
}

export interface Subscriptions {
  subscribe(channel: string, handler: (message: string) => void, options?: SubscribeOptions): Promise<Subscription>;
  /** The subscriber connection, when one was opened successfully. */
  connection(): Promise<Connection<Redis> | undefined>;
  /**
   * Redis lost data (data-loss.ts): subscribers hear onDataLost and drop what
   * they cached. While the channel is down they hear nothing: they bypass their caches already,
   * and flush again on 'up'.
   */
  dataLost(): void;
}

/** Where the subscriber connects. */
export interface SubscriberSource {
  /** A new subscriber connection, not connected yet (on a cluster, each call may pick another node). */
  make(roleOptions: RoleOptions): Redis;
  /** Whether a lost connection is replaced by a new one from `make` instead of reconnecting (a cluster). */
  replaceWhenLost: boolean;
}

/** Channels are prefixed with keyPrefix. */
export function createSubscriptions(context: RedisContext, source: SubscriberSource, keyPrefix: string): Subscriptions {
  const { logger, server } = context;
  const listeners = new Map<string, Set<Listener>>(); // by prefixed channel
  let subscriberConnection: Promise<Connection<Redis>> | null = null;
  let subscriberUp = false;

  function notify(state: ConnectionState): void {
    for (const set of listeners.values()) {
      for (const listener of set) {
        try {
          listener.onStateChange?.(state);
        } catch (error) {
          logger.warn({ reason: errorText(error), state }, 'a subscriber failed to handle a connection state change');
        }
      }
    }
  }

  function dispatch(channel: string, message: string): void {
    const set = listeners.get(channel);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener.handler(message);
      } catch (error) {
        logger.warn({ channel: channel.slice(keyPrefix.length), reason: errorText(error) }, 'a subscriber failed to handle a message');
      }
    }
  }

  /** A first subscriber, or (`replacing`) one that takes over every channel of a lost one. */
  async function openSubscriber(replacing = false): Promise<Connection<Redis>> {
    const subscriber = openConnection(context, 'subscriber', (roleOptions) => source.make(source.replaceWhenLost ? { ...roleOptions, retry: () => null } : roleOptions));
    const { client } = subscriber;
    if (source.replaceWhenLost) {
      client.once('end', () => {
        if (!context.closing && subscriber.everReady) replaceSubscriber();
      });
    }
    client.on('message', dispatch);
    client.on('close', () => {
      if (context.closing || !subscriberUp) return;
      subscriberUp = false;
      notify('down');
    });
    // Resubscribe, and announce 'up' only once Redis confirmed every channel (unlike ioredis'
    // autoResubscribe), so that a message published after 'up' is never missed.
    client.on('ready', () => {
      if (context.closing || subscriberUp || !subscriber.everReady) return;
      const channels = [...listeners.keys()];
      const resubscribed = channels.length > 0 ? client.subscribe(...channels) : Promise.resolve(0);
      resubscribed.then(
        () => {
          if (context.closing || subscriberUp || client.status !== 'ready') return;
          subscriberUp = true;
          notify('up');
        },
        (error: unknown) => {
          // Lost again, or the server stopped answering: the next 'ready' tries again.
          logger.warn({ redis: server, reason: reasonOf(context, error) }, 'could not restore the Redis subscriptions');
          if (client.status === 'ready') client.disconnect(true);
        },
      );
    });
    await connectFirst(context, subscriber);
    if (replacing) {
      const channels = [...listeners.keys()];
      try {
        if (channels.length > 0) await run(context, 'SUBSCRIBE', subscriber, () => client.subscribe(...channels));
      } catch (error) {
        await quit(client, context.commandTimeoutMs);
        throw error;
      }
    }
    subscriberUp = true;
    if (replacing) notify('up');
    return subscriber;
  }

  /**
   * A cluster's subscriber was lost: until one on another node has every channel again, the old
   * one stands (subscribe fails at once, as while a connection reconnects); back-off as reconnecting.
   */
  function replaceSubscriber(): void {
    void (async () => {
      for (let attempt = 1; !context.closing; attempt++) {
        try {
          const replacement = await openSubscriber(true);
          if (context.closing) {
            await quit(replacement.client, context.commandTimeoutMs);
            return;
          }
          subscriberConnection = Promise.resolve(replacement);
          logger.info({ redis: server, connection: 'subscriber' }, 'reconnected to Redis');
          return;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, reconnectDelay(attempt)));
        }
      }
    })();
  }

  function subscriber(): Promise<Connection<Redis>> {
    subscriberConnection ??= openSubscriber().catch((error: unknown) => {
      subscriberConnection = null; // the next subscribe tries again
      throw error;
    });
    return subscriberConnection;
  }

  return {
    async subscribe(channel, handler, subscribeOptions) {
      if (context.closing) throw new Error('the Redis ephemeral store is closed (SUBSCRIBE)');
      const connection = await subscriber();
      if (!subscriberUp) {
        throw new Error(`Redis at ${server} is unavailable (${connection.lastError ?? 'reconnecting'}); SUBSCRIBE was not run`);
      }
      const fullChannel = keyPrefix + channel;
      const listener: Listener = { handler, onStateChange: subscribeOptions?.onStateChange, onDataLost: subscribeOptions?.onDataLost };
      const set = listeners.get(fullChannel) ?? new Set<Listener>();
      listeners.set(fullChannel, set);
      set.add(listener);
      const forget = () => {
        set.delete(listener);
        if (set.size === 0 && listeners.get(fullChannel) === set) listeners.delete(fullChannel);
      };
      try {
        // Sent even when the channel is already subscribed: once it answers, Redis delivers.
        await run(context, 'SUBSCRIBE', connection, () => connection.client.subscribe(fullChannel));
      } catch (error) {
        forget();
        throw error;
      }
      let active = true;
      return {
        async close() {
          if (!active) return;
          active = false;
          forget();
          if (listeners.has(fullChannel) || context.closing || connection.client.status !== 'ready') return;
          // Best effort: if the connection is lost meanwhile, the channel is not restored anyway.
          await connection.client.unsubscribe(fullChannel).catch(() => undefined);
        },
      };
    },

    async connection() {
      return subscriberConnection ? await subscriberConnection.catch(() => undefined) : undefined;
    },

    dataLost() {
      if (context.closing || !subscriberUp) return;
      for (const set of listeners.values()) {
        for (const listener of set) {
          try {
            listener.onDataLost?.();
          } catch (error) {
            logger.warn({ reason: errorText(error) }, 'a subscriber failed to handle lost data');
          }
        }
      }
    },
  };
}
