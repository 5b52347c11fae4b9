/**
 * Deliveries waiting in this worker process for a slot at a busy endpoint, one room per endpoint. When one
 * of this process's requests to the endpoint ends, the first waiter is woken at once to ask the gate again:
 * the slot it freed is used now, instead of idling until a job comes back from BullMQ's delayed set at a
 * turn the gate could only estimate. Every wait also ends on its own timer, so a slot freed by another
 * process is found too, and a waiter is never stranded.
 */
export class WaitingRooms {
  readonly #rooms = new Map<string, Set<() => void>>();

  /** How many deliveries wait for the endpoint in this process. */
  size(room: string): number {
    return this.#rooms.get(room)?.size ?? 0;
  }

  /** Resolves when woken by `wakeFirst(room)` or after `timeoutMs`, whichever comes first. */
  wait(room: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      let waiters = this.#rooms.get(room);
      if (!waiters) {
        waiters = new Set();
        this.#rooms.set(room, waiters);
      }
      const members = waiters;
      const leave = () => {
        clearTimeout(timer);
        members.delete(leave);
        if (members.size === 0 && this.#rooms.get(room) === members) this.#rooms.delete(room);
        resolve();
      };
      const timer = setTimeout(leave, timeoutMs);
      members.add(leave);
    });
  }

  /** Wakes the longest waiter of the room, if any. */
  wakeFirst(room: string): void {
    const first = this.#rooms.get(room)?.values().next().value;
    first?.();
  }
}
