/**
 * Poll `check` until it returns a value other than undefined, null or false, and return that value;
 * fail after `timeoutMs` with what was awaited and the last value seen (or error thrown). An error
 * from `check` fails at once, unless `retryErrors` (a workflow that cannot answer a query yet).
 */
export async function eventually<T>(
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  opts: { what: string; timeoutMs?: number; intervalMs?: number; retryErrors?: boolean },
): Promise<T> {
  const { what, timeoutMs = 30_000, intervalMs = 200, retryErrors = false } = opts;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== null && v !== false) return v;
      last = v;
    } catch (err) {
      if (!retryErrors) throw err;
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${shown(last)})`);
    if (intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function shown(v: unknown): string {
  if (v instanceof Error) return v.message;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
