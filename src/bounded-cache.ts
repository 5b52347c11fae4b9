/**
 * A Map for values that are cheap to rebuild, kept from growing without end: once it holds `capacity` entries
 * it starts over rather than tracking recency, so a hit stays one lookup.
 */
export class BoundedCache<K, V> {
  readonly #entries = new Map<K, V>();

  constructor(readonly capacity: number) {}

  get(key: K): V | undefined {
    return this.#entries.get(key);
  }

  delete(key: K): void {
    this.#entries.delete(key);
  }

  /** Stores the value and returns it. */
  set(key: K, value: V): V {
    if (this.#entries.size >= this.capacity) this.#entries.clear();
    this.#entries.set(key, value);
    return value;
  }
}
