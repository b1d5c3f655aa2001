/**
 * How a failed operation names what went wrong: its root cause, the step it failed at and the host.
 *
 * A failure reaches the workflow (and later its readers: the API, `qm`, the Web UI) as a chain:
 * the operation's own failure → perhaps a host step (HostStepFailed) → the ActivityFailure wrapper
 * ("Activity task failed") → the activity's ApplicationFailure, the root, whose details name its
 * host (activities/errors.ts). The workflow walks the chain once, when it fails
 * (workflows/lib/operation.ts), and its failure says it all in its message and details; readers
 * walk it again for failures that did not (client/operations.ts). Duck-typed, so the same walk
 * serves the workflow sandbox and the clients.
 */

/** The details (first entry) of every failed operation's ApplicationFailure. */
export interface OperationFailureDetails {
  /** The step the operation was at (its `progress` step). */
  step: string;
  /** The host the root cause happened on, when one did. */
  host?: string;
  /** The activity that failed, when one did. */
  activityType?: string;
  /** The root cause's type: HostKeyMismatch, CommandFailed, … */
  rootType: string;
}

export interface FailureFacts {
  rootType: string;
  rootMessage: string;
  host?: string;
  activityType?: string;
}

interface Link {
  name?: unknown;
  message?: unknown;
  type?: unknown;
  activityType?: unknown;
  host?: unknown;
  details?: unknown;
  cause?: unknown;
}

/** The failure and its causes, outermost first (bounded: a cause chain is a handful long). */
export function causeChain(err: unknown): Link[] {
  const chain: Link[] = [];
  for (let e = err; e && typeof e === 'object' && chain.length < 20; e = (e as Link).cause)
    chain.push(e as Link);
  return chain;
}

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const firstDetail = (l: Link): Record<string, unknown> | undefined => {
  const d = Array.isArray(l.details) ? (l.details[0] as unknown) : undefined;
  return d && typeof d === 'object' ? (d as Record<string, unknown>) : undefined;
};

/** The host a link's details name (`host`, or a workflow's own `failedHost`). */
export function hostOf(l: Link): string | undefined {
  const d = firstDetail(l);
  return text(d?.host) ?? text(d?.failedHost);
}

/** The step a link names in its details (`step`, or a workflow's `failedStep`). */
export function stepOf(l: Link): string | undefined {
  const d = firstDetail(l);
  return text(d?.step) ?? text(d?.failedStep);
}

/**
 * The root cause of a failure (the innermost link: its type and message), the activity that
 * failed (the innermost one) and the host: the one a host step names (HostStepFailed: the step on
 * that host failed, whatever host its cause names), else the innermost one a link's details name.
 */
export function failureFacts(err: unknown): FailureFacts {
  const chain = causeChain(err);
  const root = chain[chain.length - 1];
  if (!root) return { rootType: 'Error', rootMessage: String(err) };
  const inner = [...chain].reverse();
  const host = chain.map((l) => text(l.host)).find(Boolean) ?? inner.map(hostOf).find(Boolean);
  const activityType = inner.map((l) => text(l.activityType)).find(Boolean);
  const rootType = text(root.type) ?? text(root.name) ?? 'Error';
  return { rootType, rootMessage: text(root.message) ?? rootType, host, activityType };
}

/** A root message without the `host: ` it starts with when the host is named beside it anyway. */
export function withoutHost(message: string, host: string | undefined): string {
  return host && message.startsWith(`${host}: `) ? message.slice(host.length + 2) : message;
}

/** `deploy` → `DeployFailed`, `change-plan` → `ChangePlanFailed`: a failed operation's type. */
export function operationFailureType(operation: string): string {
  return `${operation
    .split(/[^A-Za-z0-9]+/)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('')}Failed`;
}

/** `<what> failed at "<step>" on <host>: <root cause>` (no ` on <host>` when no host is known). */
export function failedAt(what: string, step: string, facts: FailureFacts): string {
  return `${what} failed at "${step}"${facts.host ? ` on ${facts.host}` : ''}: ${withoutHost(facts.rootMessage, facts.host)}`;
}
