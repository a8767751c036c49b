// Where a store outage meets oidc-provider. Anything oidc-provider did not throw itself it answers
// as server_error (500); an outage thrown as its own temporarily_unavailable error, with status
// 503, is rendered in each route's own shape instead: JSON at the token, revocation and device
// authorization endpoints, a page for the browser, error=temporarily_unavailable in the redirect
// to the client at the authorization endpoint (RFC 6749 §4.1.2.1). provider.ts's middleware adds
// Retry-After (retryAfter) and answers an outage met past oidc-provider's error handling (answered).
import { errors, type Adapter, type KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from 'pino';
import { STORE_RETRY_AFTER_SECONDS, storeUnavailableCause } from '../../shared/errors.ts';
import { renderOAuthErrorPage } from './error-page.ts';

export const UNAVAILABLE_DESCRIPTION = 'the service is temporarily unavailable; try again shortly';

/** A store outage as oidc-provider's temporarily_unavailable (503, shown to the client). */
function asProviderError(error: unknown): InstanceType<typeof errors.TemporarilyUnavailable> {
  const converted = new errors.TemporarilyUnavailable(UNAVAILABLE_DESCRIPTION, { cause: error });
  // oidc-provider makes it a 400 (its use in authorization redirects) and hides any status >= 500.
  Object.assign(converted, { status: 503, statusCode: 503, expose: true });
  return converted;
}

export interface StoreOutageSeam {
  /** `call`, with a store outage logged and rethrown as oidc-provider's temporarily_unavailable. */
  guard<A extends unknown[], R>(call: (...args: A) => Promise<R>): (...args: A) => Promise<R>;
  /** The same for a promise already made. */
  guardPromise<R>(promise: Promise<R>): Promise<R>;
  /** An adapter whose every method is guarded. */
  guardAdapter<T extends Adapter>(adapter: T): T;
  /**
   * For an outage past oidc-provider's own error handling (its session saved after a route, or
   * Tessera's work after it): answers it as oidc-provider would, and true; false for anything else.
   */
  answered(ctx: KoaContextWithOIDC, error: unknown): Promise<boolean>;
  /** Adds Retry-After to a 503 (oidc-provider's rendering of an outage). */
  retryAfter(ctx: KoaContextWithOIDC): void;
}

/**
 * The seam: every store call oidc-provider makes through Tessera (its adapters, accounts, client
 * lookups, the replay check) is guarded. The outage is logged here (oidc-provider does not log an
 * error it may show), once per interval with a count like every repeated failure (shared/logger.ts).
 */
export function createStoreOutageSeam(logger: Logger): StoreOutageSeam {
  const rethrow = (error: unknown): never => {
    if (!storeUnavailableCause(error)) throw error;
    logger.error({ err: error }, 'a store is unavailable');
    throw asProviderError(error);
  };
  const guard = <A extends unknown[], R>(call: (...args: A) => Promise<R>) => (...args: A) => call(...args).catch(rethrow);
  return {
    guard,
    guardPromise: (promise) => promise.catch(rethrow),
    async answered(ctx, error) {
      if (!storeUnavailableCause(error)) return false;
      logger.error({ err: error }, 'a store is unavailable');
      const out = { error: 'temporarily_unavailable', error_description: UNAVAILABLE_DESCRIPTION };
      ctx.status = 503;
      if (ctx.accepts('json', 'html') === 'html') await renderOAuthErrorPage(ctx, out);
      else ctx.body = out;
      ctx.set('Retry-After', String(STORE_RETRY_AFTER_SECONDS));
      return true;
    },
    retryAfter(ctx) {
      if (ctx.status === 503) ctx.set('Retry-After', String(STORE_RETRY_AFTER_SECONDS));
    },
    guardAdapter(adapter) {
      const guarded = Object.create(adapter) as Record<string, unknown>;
      for (const name of ['upsert', 'find', 'findByUserCode', 'findByUid', 'consume', 'destroy', 'revokeByGrantId'] as const) {
        guarded[name] = guard(adapter[name].bind(adapter) as (...args: unknown[]) => Promise<unknown>);
      }
      return guarded as unknown as typeof adapter;
    },
  };
}
