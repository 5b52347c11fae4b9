/**
 * Gathers what callers hand over for the same key during one turn of the event loop and passes it to
 * `flush` as one batch; every caller's promise settles with that batch's flush. Work that costs a fixed
 * amount per call (a BullMQ `addBulk` builds an ioredis pipeline and writes to the socket each time) is then
 * paid once for all the commits whose replies arrived together, e.g. the 50 timers a claim fires at once.
 * A batch that reaches `maxItems` is flushed at once, so one never grows without bound.
 */
export class Coalescer<T> {
  readonly #pending = new Map<string, Batch<T>>();

  constructor(
    private readonly flush: (key: string, items: T[]) => Promise<void>,
    private readonly maxItems: number,
  ) {}

  add(key: string, items: T[]): Promise<void> {
    let batch = this.#pending.get(key);
    if (!batch) {
      batch = new Batch<T>();
      this.#pending.set(key, batch);
      const scheduled = batch;
      setImmediate(() => this.#run(key, scheduled));
    }
    batch.items.push(...items);
    const { done } = batch;
    if (batch.items.length >= this.maxItems) this.#run(key, batch);
    return done;
  }

  #run(key: string, batch: Batch<T>): void {
    if (batch.isStarted) return;
    batch.isStarted = true;
    if (this.#pending.get(key) === batch) this.#pending.delete(key);
    this.flush(key, batch.items).then(batch.resolve, batch.reject);
  }
}

class Batch<T> {
  readonly items: T[] = [];
  isStarted = false;
  readonly done: Promise<void>;
  resolve!: () => void;
  reject!: (error: unknown) => void;

  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Callers that dropped the promise (fire and forget) must not turn a failed flush into an unhandled
    // rejection, which ends the process; callers that await it still see the error.
    this.done.catch(() => {});
  }
}
