import { Server as NetServer, type Socket } from 'node:net';
import type { Server, ServerResponse } from 'node:http';
import type { RawHandler } from './raw-http.ts';

/**
 * How long a keep-alive connection must stay quiet, once draining starts, before it is closed.
 * HTTP/1.1 cannot tell an idle client "don't send": closing a connection the moment it is idle
 * resets the request its client is sending right then. A client that sends within this time gets
 * its answer with `Connection: close` instead (docs/production.md#restarts-and-draining).
 */
export const DRAIN_IDLE_QUIET_MS = 1000;

export interface ConnectionDrain {
  /** `handler` behind the drain's bookkeeping: while draining, every answer says `Connection: close`. */
  handle(handler: RawHandler): RawHandler;
  /**
   * Stops accepting; answers in flight finish with `Connection: close`, quiet connections are
   * closed. 'drained' once no connection is left; 'timeout' after `graceMs`, when the rest are cut.
   */
  drain(graceMs: number): Promise<'drained' | 'timeout'>;
  /** True once drain() has been called (/readyz then answers 503, so that balancers stop sending). */
  isDraining(): boolean;
}

interface ConnectionState {
  /**
   * The latest answer begun on this connection. Answers on a connection finish in order, so the
   * connection is idle exactly when this one has finished. (One assignment per request: the drain
   * costs the hot path no listener and no clock read.)
   */
  latest?: ServerResponse;
  quietTimer?: NodeJS.Timeout;
}

/** Graceful drain for a node:http server under keep-alive load. */
export function createConnectionDrain(server: Server, options: { idleQuietMs?: number } = {}): ConnectionDrain {
  const { idleQuietMs = DRAIN_IDLE_QUIET_MS } = options;
  const connections = new Map<Socket, ConnectionState>();
  let draining = false;

  /** Closes a connection that stays quiet for idleQuietMs; a request within it is answered with Connection: close. */
  const closeWhenQuiet = (socket: Socket, state: ConnectionState) => {
    clearTimeout(state.quietTimer);
    const seen = state.latest;
    state.quietTimer = setTimeout(() => {
      if (state.latest === seen && !socket.destroyed) socket.destroy();
    }, idleQuietMs);
  };

  server.on('connection', (socket: Socket) => {
    const state: ConnectionState = {};
    connections.set(socket, state);
    socket.once('close', () => {
      clearTimeout(state.quietTimer);
      connections.delete(socket);
    });
    if (draining) closeWhenQuiet(socket, state);
  });

  return {
    isDraining: () => draining,

    handle(handler) {
      return (req, res) => {
        const state = connections.get(req.socket);
        if (state) state.latest = res;
        // node:http closes the connection once an answer saying Connection: close has been sent.
        if (draining) res.setHeader('Connection', 'close');
        handler(req, res);
      };
    },

    drain(graceMs) {
      draining = true;
      // net.Server's close, not http.Server's: the latter also closes every idle connection at
      // once, resetting the requests their clients are sending right then.
      const closed = new Promise<void>((resolve) => NetServer.prototype.close.call(server, () => resolve()));
      for (const [socket, state] of connections) {
        const answer = state.latest;
        if (!answer || answer.writableFinished) closeWhenQuiet(socket, state);
        else if (!answer.headersSent) answer.setHeader('Connection', 'close');
        // Its headers are gone without Connection: close: once it has finished, wait for quiet.
        else answer.once('close', () => closeWhenQuiet(socket, state));
      }
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), graceMs);
      });
      return Promise.race([closed.then(() => 'drained' as const), grace]).then(async (result) => {
        clearTimeout(timer);
        if (result === 'timeout') {
          server.closeAllConnections();
          await closed;
        }
        // http.Server's own close, now that nothing is left to close, stops its timer that checks
        // connections (which would otherwise keep the server in memory).
        server.close();
        return result;
      });
    },
  };
}
