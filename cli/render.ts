import type { OperationView, SiteState, SiteSummary } from '../client/operations';
import type { RunView } from '../client/runs';

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
  else lines.push(...errorLines(next));
  return lines;
}

/** How an operation ended when it did not complete: its failure, then where and why, one a line. */
function errorLines(view: OperationView): string[] {
  const e = view.error;
  if (!e) return [view.state];
  const root = e.rootCause;
  return [
    `${view.state}  ${e.type}: ${e.message}`,
    ...(e.step ? [`  step        ${e.step}`] : []),
    ...(e.host ? [`  host        ${e.host}`] : []),
    ...(e.activityType ? [`  activity    ${e.activityType}`] : []),
    ...(root.type !== e.type || root.message !== e.message
      ? [`  root cause  ${root.type}: ${root.message}`]
      : []),
  ];
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

const LABELS: Record<string, string> = {
  'patch-roll': 'patch roll',
  'nightly-backups': 'nightly backups',
  'fleet-check': 'fleet check',
};

/** What a run shows while it runs, one fact a line (compared line by line between two looks). */
function runningLines(run: Exclude<RunView, { kind: 'site-operation' }>): string[] {
  if (!('progress' in run) || run.progress === undefined) return [];
  if (run.progress === null) return [`  (no progress: ${run.progressUnavailable ?? 'no worker answered'})`];
  switch (run.kind) {
    case 'patch-roll': {
      const p = run.progress;
      const lines = [
        `  status ${p.status}${p.paused ? ' (paused)' : ''}, batch ${p.currentBatch}/${p.batches.length}, ` +
          `error budget ${p.errorBudget.used}/${p.errorBudget.allowed} used`,
      ];
      if (p.waitingForLock) lines.push('  waiting for site locks');
      if (p.canary.host)
        lines.push(`  canary ${p.canary.host}${p.canary.approved ? ' approved' : ': waiting for approve'}`);
      if (p.stopReason) lines.push(`  stopping: ${p.stopReason}`);
      for (const [host, h] of Object.entries(p.hosts))
        lines.push(`    ${host}: ${h.state} (batch ${h.batch})${h.reason ? `: ${h.reason}` : ''}`);
      return lines;
    }
    case 'nightly-backups': {
      const p = run.progress;
      const lines = [
        `  night ${p.night}: ${p.total} site(s), ${p.waiting} waiting, ${p.succeeded} succeeded, ` +
          `${p.alreadyDone} already done`,
      ];
      for (const [dbHost, sites] of Object.entries(p.running))
        if (sites.length) lines.push(`    ${dbHost}: backing up ${sites.join(', ')}`);
      for (const site of p.failed) lines.push(`    ${site}: FAILED`);
      for (const k of p.skipped) lines.push(`    ${k.siteId}: not backed up: ${k.reason}`);
      return lines;
    }
    case 'fleet-check': {
      const p = run.progress;
      return [
        ...p.healthy.map((h) => `    ${h}: healthy`),
        ...p.failed.map((f) => `    ${f.host}: FAILED ${f.error}`),
      ];
    }
    default:
      return [];
  }
}

const list = (names: string[]) => (names.length ? names.join(', ') : '-');

/** How a run ended, in a line or a few. */
function endLines(run: Exclude<RunView, { kind: 'site-operation' }>): string[] {
  if (run.state !== 'COMPLETED')
    return [`${run.state}  ${run.error ? `${run.error.type}: ${run.error.message}` : ''}`.trimEnd()];
  switch (run.kind) {
    case 'patch-roll': {
      const r = run.result;
      if (!r) return ['COMPLETED'];
      const lines = [
        `COMPLETED  roll ${r.status}${r.stopReason ? ` (${r.stopReason})` : ''}: done ${list(r.done)}; ` +
          `failed ${list(r.failed)}; skipped ${list(r.skipped)}; held back ${list(r.heldBack)}; ` +
          `not started ${list(r.notStarted)}`,
      ];
      for (const [host, h] of Object.entries(r.hosts))
        if (h.reason)
          lines.push(`    ${host}: ${h.state}: ${h.reason}${h.leftAs ? ` (left ${h.leftAs})` : ''}`);
      return lines;
    }
    case 'nightly-backups': {
      const r = run.result;
      if (!r) return ['COMPLETED'];
      return [
        `COMPLETED  night ${r.night}: ${r.sites} site(s); succeeded ${list(r.succeeded)}; ` +
          `already done ${list(r.alreadyDone)}; not active ${list(r.notActive)}; ` +
          `failed ${list(r.failed.map((f) => f.siteId))}`,
        ...r.failed.map((f) => `    ${f.siteId}: ${f.error} (${f.workflowId})`),
        ...r.skipped.map((k) => `    ${k.siteId}: not backed up: ${k.reason}`),
      ];
    }
    case 'fleet-check': {
      const r = run.result;
      if (!r) return ['COMPLETED'];
      return [
        `COMPLETED  healthy ${list(r.healthy)}; failed ${list(r.failed.map((f) => f.host))}`,
        ...r.failed.map((f) => `    ${f.host}: ${f.error}`),
      ];
    }
    default:
      return [`COMPLETED  ${JSON.stringify(run.result)}`];
  }
}

/**
 * The lines to print when any run (a site operation, a patch roll, a night of backups, a fleet
 * check) went from `prev` (undefined: first look) to `next`: only what changed, as a log.
 */
export function runLines(prev: RunView | undefined, next: RunView): string[] {
  if (next.kind === 'site-operation')
    return progressLines(prev?.kind === 'site-operation' ? prev.view : undefined, next.view);
  const lines: string[] = [];
  if (!prev)
    lines.push(
      `${next.id}  ${next.state}  (${LABELS[next.kind] ?? next.workflowType}, started ${next.startedAt})`,
    );
  if (next.state !== 'RUNNING') return [...lines, ...endLines(next)];
  const seen = new Set(prev && prev.kind !== 'site-operation' ? runningLines(prev) : []);
  return [...lines, ...runningLines(next).filter((l) => !seen.has(l))];
}
