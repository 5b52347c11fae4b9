/**
 * Deliveries waiting in this worker process for a slot at a busy endpoint, one room per endpoint. When one
 * of this process's requests to the endpoint ends, its slot goes to the first waiter: handed over with the
 * call that gives it back (`takeFirst`: the waiter receives the admission that call got for it), or, where
 * a hand-over does not apply, by waking the waiter to ask the gate again (`wakeFirst`). Either way the slot
 * is used now, instead of idling until a job comes back from BullMQ's delayed set at a turn the gate could
 * only estimate. Every wait also ends on its own timer, so a slot freed by another process is found too,
 * and a waiter is never stranded.
 *
 * `Ticket` is what a waiter tells whoever takes it (which lease, what to read); `Handover` what it receives.
 */
export class WaitingRooms<Ticket = undefined, Handover = never> {
  readonly #rooms = new Map<string, Set<Waiter<Ticket, Handover>>>();

  /** How many deliveries wait for the endpoint in this process. */
  size(room: string): number {
    return this.#rooms.get(room)?.size ?? 0;
  }

  /**
   * Resolves with a hand-over when taken (`takeFirst`) and given one; with undefined when woken, given
   * nothing, or after `timeoutMs`, whichever comes first.
   */
  wait(room: string, timeoutMs: number, ticket: Ticket): Promise<Handover | undefined> {
    return new Promise((resolve) => {
      let waiters = this.#rooms.get(room);
      if (!waiters) {
        waiters = new Set();
        this.#rooms.set(room, waiters);
      }
      const members = waiters;
      const waiter: Waiter<Ticket, Handover> = {
        ticket,
        leave: () => {
          clearTimeout(timer);
          members.delete(waiter);
          if (members.size === 0 && this.#rooms.get(room) === members) this.#rooms.delete(room);
        },
        resolve,
      };
      const timer = setTimeout(() => {
        waiter.leave();
        resolve(undefined);
      }, timeoutMs);
      members.add(waiter);
    });
  }

  /** Wakes the longest waiter of the room, if any, to ask for itself. */
  wakeFirst(room: string): void {
    this.takeFirst(room)?.hand(undefined);
  }

  /**
   * Takes the longest waiter out of the room (its timer stopped), for the caller to hand it a slot: `hand`
   * ends its wait, with undefined when the hand-over did not happen after all (it then asks for itself).
   */
  takeFirst(room: string): { ticket: Ticket; hand(handover: Handover | undefined): void } | undefined {
    const first = this.#rooms.get(room)?.values().next().value;
    if (!first) return undefined;
    first.leave();
    return { ticket: first.ticket, hand: first.resolve };
  }
}

interface Waiter<Ticket, Handover> {
  ticket: Ticket;
  leave(): void;
  resolve(handover: Handover | undefined): void;
}
