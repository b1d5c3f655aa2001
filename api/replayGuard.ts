/**
 * Remembers the signatures it has accepted until they expire (their timestamp leaves the window),
 * so the same signed request is accepted once. Memory is bounded: with `capacity` live entries it
 * refuses new ones (fail closed) rather than forget one that could then be replayed. Only
 * signatures that verified are remembered, so an attacker without a secret cannot fill it.
 */
export class ReplayGuard {
  /** digest → expiry (unix seconds); a Map iterates in insertion order, roughly by expiry. */
  private readonly seen = new Map<string, number>();

  constructor(private readonly capacity = 100_000) {}

  get size(): number {
    return this.seen.size;
  }

  /** 'fresh' (now remembered), 'replay' (seen and not expired) or 'full' (refused: too many live). */
  check(digest: string, expiresAt: number, nowSeconds: number): 'fresh' | 'replay' | 'full' {
    const known = this.seen.get(digest);
    if (known !== undefined && known >= nowSeconds) return 'replay';
    this.evictExpired(nowSeconds);
    if (this.seen.size >= this.capacity) return 'full';
    this.seen.set(digest, expiresAt);
    return 'fresh';
  }

  private evictExpired(nowSeconds: number) {
    for (const [digest, expiry] of this.seen) {
      if (expiry < nowSeconds) this.seen.delete(digest);
      // Entries arrive nearly in expiry order (timestamps within ±window): stop at the first live
      // one unless the map is full, when a full sweep is worth it.
      else if (this.seen.size < this.capacity) break;
    }
  }
}
