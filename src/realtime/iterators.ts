/**
 * An async iterator made of `next` and `close`: `return()` and `throw()` run `close`, even before
 * the first `next()` (a generator's would not run its cleanup then).
 */
export function closableIterator<T>(
  next: () => Promise<IteratorResult<T>>,
  close: () => Promise<IteratorReturnResult<undefined>>,
): AsyncIterableIterator<T> {
  const iterator: AsyncIterableIterator<T> = {
    next,
    return: close,
    throw: async (error) => {
      await close();
      throw error;
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

/** A stream that ends at once. */
export async function* emptyStream(): AsyncGenerator<never> {}
