import { createHash } from 'node:crypto';
import type { ContainerSpec } from '../../schema/container';

/**
 * Bumped when the canonical form changes (a new field, a different ordering): every managed
 * container is then replaced once, on purpose, instead of by accident.
 */
const CANONICAL_VERSION = 1;

/**
 * A spec in a canonical form: object keys sorted at every level, and the lists whose order Docker
 * ignores (port bindings, mounts) sorted, so that two specs that mean the same container are equal.
 * The order of argv lists (cmd, healthcheck test) is kept: it is meaningful.
 */
export function canonicalSpec(spec: ContainerSpec): unknown {
  const ports = [...spec.ports].sort((a, b) =>
    compare(
      `${a.containerPort}/${a.protocol} ${a.hostIp ?? ''}:${a.hostPort}`,
      `${b.containerPort}/${b.protocol} ${b.hostIp ?? ''}:${b.hostPort}`,
    ),
  );
  const mounts = [...spec.mounts].sort((a, b) => compare(a.target, b.target));
  return sortKeys({ v: CANONICAL_VERSION, ...spec, ports, mounts });
}

/**
 * The spec's fingerprint, stored on the container as the qm.spec-hash label: ensureContainer
 * compares it with the wanted spec's to decide whether to leave or replace a container, which is
 * exact and cheap, where diffing `docker inspect` output against a spec is neither (the engine
 * fills in defaults and rewrites values). SHA-256 of the canonical JSON, so the label carries no env
 * value in clear.
 */
export function specHash(spec: ContainerSpec): string {
  return createHash('sha256')
    .update(JSON.stringify(canonicalSpec(spec)))
    .digest('hex');
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort(compare)) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/** Code-unit order, independent of the locale the worker runs in. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
