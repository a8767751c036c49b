/**
 * A value now, or a promise of it: what a lookup returns when memory may already hold the answer
 * (docs/architecture.md#answers-from-memory-without-a-promise). Most callers simply
 * `await` it; a hot path tests `isPromise` once and goes on at once with a value. A refusal decided
 * from memory is thrown at once, one that needed the store rejects: `await` treats both alike.
 */
export type Awaitable<T> = T | Promise<T>;

export function isPromise<T>(value: Awaitable<T>): value is Promise<T> {
  return value instanceof Promise;
}

/** `next` applied to the value: at once when it is here, once it resolves otherwise. */
export function thenNow<T, U>(value: Awaitable<T>, next: (value: T) => U): Awaitable<U> {
  return isPromise(value) ? (value.then(next) as Promise<U>) : next(value);
}
