import { STANDBY_PORT_OFFSET, type AppSlot } from '../../schema/release';
import type { Route } from '../../schema/route';
import type { Placement, SiteSpec } from '../../schema/site';

/** Inventory addresses by host name, from a listing of the hosts (listHosts). */
export const addressesOf = (hosts: { name: string; address: string }[]): Record<string, string> =>
  Object.fromEntries(hosts.map((h) => [h.name, h.address]));

/** The port a slot's app container publishes on every app host (the standby's beside the live one). */
export const slotPort = (placement: Pick<Placement, 'port'>, slot: AppSlot) =>
  placement.port + (slot === 'standby' ? STANDBY_PORT_OFFSET : 0);

/**
 * The site's route on a proxy: its domains, every app host's backend (active) on the slot's port
 * (`live` unless told), in the given mode (`active` unless told).
 */
export function siteRoute(
  spec: Pick<SiteSpec, 'siteId' | 'domains'>,
  placement: Pick<Placement, 'appHosts' | 'port'>,
  addresses: Record<string, string>,
  { slot = 'live', mode = 'active' }: { slot?: AppSlot; mode?: Route['mode'] } = {},
): Route {
  return {
    siteId: spec.siteId,
    domains: spec.domains,
    backends: placement.appHosts.map((host) => ({
      host,
      address: addresses[host]!,
      port: slotPort(placement, slot),
      state: 'active' as const,
    })),
    mode,
  };
}
