import { Server as NetServer, type Socket } from 'node:net';
import type { Server, ServerResponse } from 'node:http';
import type { RawHandler } from './raw-http.ts';

/**
 * How long a keep-alive connection must have been quiet, once draining, before it is closed (at
 * once if it already has been at the signal). HTTP/1.1 cannot tell an idle client "don't send":
 * closing a connection the moment it is idle resets the request its client is sending right then.
 * A client that sends within this time gets its answer with `Connection: close` instead
 * (docs/production.md#restarts-and-draining).
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
}

interface ConnectionState {
  /** Answers not yet finished on this connection (more than one only with pipelining). */
  answering: Set<ServerResponse>;
  /** When its last answer finished (or it opened), on `now`'s clock. */
  idleSince: number;
  quietTimer?: NodeJS.Timeout;
}

/** Graceful drain for a node:http server under keep-alive load. */
export function createConnectionDrain(server: Server, options: { idleQuietMs?: number; now?: () => number } = {}): ConnectionDrain {
  const { idleQuietMs = DRAIN_IDLE_QUIET_MS, now = () => performance.now() } = options;
  const connections = new Map<Socket, ConnectionState>();
  let draining = false;

  /** Closes an idle connection once it has been quiet for idleQuietMs (at once if it has been already). */
  const closeWhenQuiet = (socket: Socket, state: ConnectionState) => {
    clearTimeout(state.quietTimer);
    const wait = idleQuietMs - (now() - state.idleSince);
    if (wait <= 0) socket.destroy();
    else {
      state.quietTimer = setTimeout(() => {
        if (state.answering.size === 0) socket.destroy();
      }, wait);
    }
  };

  // One listener for every answer: nothing is allocated per request.
  function answered(this: ServerResponse) {
    const socket = this.req.socket;
    const state = connections.get(socket);
    if (!state) return;
    state.answering.delete(this);
    if (state.answering.size > 0) return;
    state.idleSince = now();
    if (draining && !socket.destroyed) closeWhenQuiet(socket, state);
  }

  server.on('connection', (socket: Socket) => {
    const state: ConnectionState = { answering: new Set(), idleSince: now() };
    connections.set(socket, state);
    socket.once('close', () => {
      clearTimeout(state.quietTimer);
      connections.delete(socket);
    });
    if (draining) closeWhenQuiet(socket, state);
  });

  return {
    handle(handler) {
      return (req, res) => {
        const state = connections.get(req.socket);
        if (state) {
          state.answering.add(res);
          res.on('close', answered);
          if (draining) clearTimeout(state.quietTimer);
        }
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
        for (const res of state.answering) if (!res.headersSent) res.setHeader('Connection', 'close');
        if (state.answering.size === 0) closeWhenQuiet(socket, state);
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
