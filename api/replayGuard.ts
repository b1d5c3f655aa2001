/**
 * Remembers the nonces (api/signature.ts) of the signed requests it has accepted until their
 * timestamp leaves the window, so a captured request cannot be sent again: the same nonce is
 * accepted once, whatever it signs. A client retries with a new nonce (a new signature), so a
 * retry at once is a request of its own and the Idempotency-Key decides what it does.
 *
 * Memory is bounded: with `capacity` live entries it refuses new ones (fail closed) rather than
 * forget one that could then be replayed. Only nonces of signatures that verified are remembered,
 * so an attacker without a secret cannot fill it.
 */
export class ReplayGuard {
  /** nonce → expiry (unix seconds); a Map iterates in insertion order, roughly by expiry. */
  private readonly seen = new Map<string, number>();

  constructor(private readonly capacity = 100_000) {}

  get size(): number {
    return this.seen.size;
  }

  /** 'fresh' (now remembered), 'replay' (seen and not expired) or 'full' (refused: too many live). */
  check(nonce: string, expiresAt: number, nowSeconds: number): 'fresh' | 'replay' | 'full' {
    const known = this.seen.get(nonce);
    if (known !== undefined && known >= nowSeconds) return 'replay';
    this.evictExpired(nowSeconds);
    if (this.seen.size >= this.capacity) return 'full';
    this.seen.set(nonce, expiresAt);
    return 'fresh';
  }

  private evictExpired(nowSeconds: number) {
    for (const [nonce, expiry] of this.seen) {
      if (expiry < nowSeconds) this.seen.delete(nonce);
      // Entries arrive nearly in expiry order (timestamps within ±window): stop at the first live
      // one unless the map is full, when a full sweep is worth it.
      else if (this.seen.size < this.capacity) break;
    }
  }
}
