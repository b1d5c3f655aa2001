/**
 * The ledger of workflow-code versions: every `patched()` id the workflows call, why, and the
 * release from which it may leave.
 *
 * Nothing has been released yet, so today workflow code changes directly and the test histories
 * (test/histories/, replayed by test/replay.test.ts) are re-recorded from the code as it is.
 * From the first tagged release on, a change to workflow code that running workflows would replay
 * differently goes through three steps, one release apart at least:
 *   1. `patched(id)` beside the old path, the id added here with `since`;
 *   2. once no workflow started before `since` can still be running (retention + the longest
 *      run), `deprecatePatch(id)` and the old path removed, `deprecatedIn` set;
 *   3. in a later release the call and this entry go (`removableIn`).
 * The replay test replays every kept history; a history is deleted only with the entry whose old
 * path it recorded. test/unit/versions.test.ts checks that this list and the code agree.
 */
export interface PatchEntry {
  /** The string given to patched() / deprecatePatch(). */
  id: string;
  /** The workflow file(s) that call it. */
  files: string[];
  /** What changed, in one sentence. */
  why: string;
  /** The release whose code first called patched(id). */
  since: string;
  /** The release whose code calls deprecatePatch(id) instead (the old path gone). */
  deprecatedIn?: string;
  /** The first release whose code may drop the call entirely. */
  removableIn?: string;
}

export const PATCHES: readonly PatchEntry[] = [];
