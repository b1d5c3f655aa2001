import type { OperationView, SiteState, SiteSummary } from '../client/operations';

/**
 * What `qm` prints, as pure functions of what it read (unit-tested): a followed operation prints
 * only what changed since the last look, so the output reads as a log in a terminal or a file.
 */

/** The lines to print when an operation went from `prev` (undefined: first look) to `next`. */
export function progressLines(prev: OperationView | undefined, next: OperationView): string[] {
  const lines: string[] = [];
  if (!prev) lines.push(`${next.id}  ${next.state}  (started ${next.startedAt})`);
  if (next.state === 'RUNNING') {
    const p = next.progress;
    const was = prev?.progress;
    if (p === null && was !== null)
      lines.push(`  (no progress: ${next.progressUnavailable ?? 'no worker answered'})`);
    if (p) {
      if (p.waitingForLock && !was?.waitingForLock) lines.push('  waiting for the site lock');
      else if (!p.waitingForLock && was?.waitingForLock) lines.push('  got the site lock');
      if (!p.waitingForLock) {
        // Every step once, in order, even those begun and done between two looks.
        const printed = new Set([...(was?.done ?? []), ...(was && !was.waitingForLock ? [was.step] : [])]);
        [...p.done, p.step].forEach((step, i) => {
          if (!printed.has(step) && step !== 'done') lines.push(`  step ${i + 1}: ${step}`);
        });
      }
      for (const [host, status] of Object.entries(p.hosts))
        if (was?.hosts[host] !== status) lines.push(`    ${host}: ${status}`);
    }
    return lines;
  }
  if (next.state === 'COMPLETED') lines.push(`COMPLETED  ${JSON.stringify(next.result)}`);
  else
    lines.push(`${next.state}  ${next.error ? `${next.error.type}: ${next.error.message}` : ''}`.trimEnd());
  return lines;
}

export function siteLines(siteId: string, site: SiteState): string[] {
  const r = site.view?.record;
  const lines = [`site ${siteId}: ${r?.state ?? 'unknown'} (site workflow ${site.status})`];
  if (!r) return lines;
  if (r.customerId) lines.push(`  customer   ${r.customerId}`);
  if (r.spec)
    lines.push(
      `  plan       ${r.spec.plan}, profile ${r.spec.profile}`,
      `  domains    ${r.spec.domains.join(', ')}`,
    );
  if (r.release) lines.push(`  release    ${r.release}`);
  if (r.placement) {
    const p = r.placement;
    lines.push(
      `  app hosts  ${p.appHosts.join(', ')} (port ${p.port})`,
      `  db ${p.dbHost}, storage ${p.storageHost}, cache ${p.cacheHost}, proxies ${p.proxyHosts.join(', ')}`,
    );
  }
  if (r.lastOperation) lines.push(`  last op    ${r.lastOperation}`);
  if (r.failure) {
    const f = r.failure;
    lines.push(
      `  failed     ${f.operation} ${f.workflowId} at "${f.step}"${f.host ? ` on ${f.host}` : ''} (${f.at}): ${f.cause}`,
      ...f.outOfLine.map((what) => `  out of line  ${what}`),
      ...(f.databaseSnapshot ? [`  database   must go back to snapshot ${f.databaseSnapshot}`] : []),
      `  repair     qm repair ${siteId} (back to ${f.stateBefore} once nothing is out of line)`,
    );
  }
  const v = site.view!;
  if (v.holder) lines.push(`  running    ${v.holder.workflowId} (since ${v.holder.since})`);
  for (const q of v.queue) lines.push(`  queued     ${q.workflowId} (since ${q.since})`);
  return lines;
}

export function sitesTable(sites: SiteSummary[]): string[] {
  const rows = [
    ['SITE', 'STATE', 'RELEASE', 'HOSTS', 'OPERATION', 'CUSTOMER'],
    ...sites.map((s) => [
      s.siteId,
      s.state,
      s.release ?? '-',
      s.hosts.join(',') || '-',
      s.operation ?? '-',
      s.customerId ?? '-',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
}
