/**
 * Checks that a parsed JSON answer (or the credentials file) has the shape the client relies on.
 * The package depends on nothing beyond Node, so this is a few readers instead of a schema
 * library: each returns the value typed, or throws ShapeError saying where and what is wrong.
 */

export class ShapeError extends Error {
  readonly path: string[];
  constructor(path: string[], message: string) {
    super(message);
    this.name = 'ShapeError';
    this.path = path;
  }
}

export type Reader<T> = (value: unknown, path: string[]) => T;

export type ParseResult<T> = { success: true; data: T } | { success: false; error: ShapeError };

/** Reads `value` with `reader`; a wrong shape is a result, not an exception. */
export function parse<T>(reader: Reader<T>, value: unknown): ParseResult<T> {
  try {
    return { success: true, data: reader(value, []) };
  } catch (error) {
    if (error instanceof ShapeError) return { success: false, error };
    throw error;
  }
}

const describe = (value: unknown) => (value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value);

export function string(options: { nonEmpty?: boolean } = {}): Reader<string> {
  return (value, path) => {
    if (typeof value !== 'string') throw new ShapeError(path, `expected a string, got ${describe(value)}`);
    if (options.nonEmpty && value === '') throw new ShapeError(path, 'expected a non-empty string');
    return value;
  };
}

/** An absolute URL, as a string. */
export const url: Reader<string> = (value, path) => {
  const text = string()(value, path);
  if (!URL.canParse(text)) throw new ShapeError(path, 'expected a URL');
  return text;
};

export function number(options: { min?: number; positive?: boolean } = {}): Reader<number> {
  return (value, path) => {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new ShapeError(path, `expected a number, got ${describe(value)}`);
    if (options.positive && value <= 0) throw new ShapeError(path, 'expected a positive number');
    if (options.min !== undefined && value < options.min) throw new ShapeError(path, `expected a number of at least ${options.min}`);
    return value;
  };
}

export const optional =
  <T>(reader: Reader<T>): Reader<T | undefined> =>
  (value, path) =>
    value === undefined ? undefined : reader(value, path);

export const nullable =
  <T>(reader: Reader<T>): Reader<T | null> =>
  (value, path) =>
    value === null ? null : reader(value, path);

export const arrayOf =
  <T>(reader: Reader<T>): Reader<T[]> =>
  (value, path) => {
    if (!Array.isArray(value)) throw new ShapeError(path, `expected an array, got ${describe(value)}`);
    return value.map((item, index) => reader(item, [...path, String(index)]));
  };

function plainObject(value: unknown, path: string[]): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ShapeError(path, `expected an object, got ${describe(value)}`);
  return value as Record<string, unknown>;
}

export const recordOf =
  <T>(reader: Reader<T>): Reader<Record<string, T>> =>
  (value, path) => {
    const entries = Object.entries(plainObject(value, path)).map(([key, item]) => [key, reader(item, [...path, key])] as const);
    return Object.fromEntries(entries);
  };

/**
 * An object with the listed members; `keepUnknown` keeps the others as they are (a file written
 * by a newer version keeps what this one does not know), otherwise they are dropped. An optional
 * member that is absent stays absent.
 */
export function object<T extends object>(shape: { [K in keyof T]-?: Reader<T[K]> }, options: { keepUnknown?: boolean } = {}): Reader<T> {
  return (value, path) => {
    const input = plainObject(value, path);
    const output: Record<string, unknown> = options.keepUnknown ? { ...input } : {};
    for (const [key, reader] of Object.entries(shape) as [string, Reader<unknown>][]) {
      const member = reader(input[key], [...path, key]);
      if (member !== undefined) output[key] = member;
    }
    return output as T;
  };
}
