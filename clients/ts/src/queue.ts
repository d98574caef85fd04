import { WardenTimeoutError } from "./errors";

type Waiter<T> = { resolve: (item: T) => void; reject: (error: Error) => void; timer?: NodeJS.Timeout };

/** An unbounded FIFO with promise-returning reads; fail() ends it with an error. */
export class AsyncQueue<T> {
  private items: T[] = [];
  private waiters: Waiter<T>[] = [];
  private error: Error | null = null;

  push(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.resolve(item);
    } else {
      this.items.push(item);
    }
  }

  /** Items already queued are still read; after them every read rejects with error. */
  fail(error: Error): void {
    if (this.error) return;
    this.error = error;
    for (const waiter of this.waiters.splice(0)) {
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }

  /** The next item; rejects with WardenTimeoutError when none comes by `deadline` (ms since epoch). */
  next(deadline?: number, what = "item"): Promise<T> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift() as T);
    if (this.error) return Promise.reject(this.error);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = { resolve, reject };
      if (deadline !== undefined) {
        waiter.timer = setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(new WardenTimeoutError(`no ${what} in time`));
        }, Math.max(0, deadline - Date.now()));
      }
      this.waiters.push(waiter);
    });
  }
}
