import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTE_TYPES } from '../protocol/searchAttributes';
import { loadEnv, SetupEnv, temporalTls } from '../config';

/**
 * What a Temporal cluster needs before the first worker starts, made idempotent:
 *  - the namespace, with its retention (how long closed workflows' histories are kept);
 *  - the search attributes of protocol/searchAttributes.ts (SEARCH_ATTRIBUTE_TYPES, the one list:
 *    never copied by hand into a script).
 * `node dist/workers/setupTemporal.js` (compose: the one-shot `temporal-setup` service; on any
 * cluster: the same command once per release, with admin credentials). Run it again at will: what
 * exists is left alone; an attribute registered with another type is an error for a human.
 *
 * Why a one-shot job rather than the worker registering at start: registering needs operator
 * (admin) rights that the worker otherwise never needs, and several workers starting at once would
 * race on it. Temporal Cloud does not take operator calls: there, create the namespace and the
 * attributes with `tcld` or the Cloud UI, from the same list (README, Production).
 */

type IndexedValueType = temporal.api.enums.v1.IndexedValueType;
const IVT = temporal.api.enums.v1.IndexedValueType;
const TYPES: Record<string, IndexedValueType> = {
  Text: IVT.INDEXED_VALUE_TYPE_TEXT,
  Keyword: IVT.INDEXED_VALUE_TYPE_KEYWORD,
  Int: IVT.INDEXED_VALUE_TYPE_INT,
  Double: IVT.INDEXED_VALUE_TYPE_DOUBLE,
  Bool: IVT.INDEXED_VALUE_TYPE_BOOL,
  Datetime: IVT.INDEXED_VALUE_TYPE_DATETIME,
  KeywordList: IVT.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

const NOT_FOUND = 5;
const isNotFound = (err: unknown) => (err as { code?: number }).code === NOT_FOUND;

/** Register the namespace if it does not exist. Returns whether it was created. */
export async function ensureNamespace(
  conn: Connection,
  namespace: string,
  retentionDays: number,
): Promise<boolean> {
  try {
    await conn.workflowService.describeNamespace({ namespace });
    return false;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await conn.workflowService.registerNamespace({
    namespace,
    workflowExecutionRetentionPeriod: msToTs(`${retentionDays} days`),
    description: 'Quartermaster: Drupal + CiviCRM hosting operations',
  });
  return true;
}

/**
 * Add the search attributes the namespace lacks. A new namespace takes a moment to be known to
 * every service: NotFound is retried (bounded).
 */
export async function ensureSearchAttributes(
  conn: Connection,
  namespace: string,
  opts: { attempts?: number; delayMs?: number } = {},
): Promise<{ added: string[]; present: string[] }> {
  const attempts = opts.attempts ?? 60;
  for (let attempt = 1; ; attempt++) {
    try {
      return await addMissing(conn, namespace);
    } catch (err) {
      if (!isNotFound(err) || attempt >= attempts) throw err;
      await new Promise((r) => setTimeout(r, opts.delayMs ?? 1000));
    }
  }
}

async function addMissing(
  conn: Connection,
  namespace: string,
): Promise<{ added: string[]; present: string[] }> {
  const { customAttributes } = await conn.operatorService.listSearchAttributes({ namespace });
  const existing = customAttributes ?? {};
  const missing: Record<string, IndexedValueType> = {};
  const present: string[] = [];
  const conflicts: string[] = [];
  for (const [name, typeName] of Object.entries(SEARCH_ATTRIBUTE_TYPES)) {
    const wanted = TYPES[typeName]!;
    const has = existing[name];
    if (has === undefined || has === null) missing[name] = wanted;
    else if (has !== wanted) conflicts.push(`${name} is ${IVT[has]}, the workflows need ${IVT[wanted]}`);
    else present.push(name);
  }
  if (conflicts.length)
    throw new Error(
      `search attributes registered with another type in ${namespace}: ${conflicts.join('; ')}`,
    );
  if (Object.keys(missing).length)
    await conn.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
  return { added: Object.keys(missing), present };
}

async function main() {
  const env = loadEnv(SetupEnv);
  const conn = await Connection.connect({ address: env.TEMPORAL_ADDRESS, tls: temporalTls(env) });
  try {
    const ns = env.TEMPORAL_NAMESPACE;
    const created = await ensureNamespace(conn, ns, env.TEMPORAL_RETENTION_DAYS);
    const { added, present } = await ensureSearchAttributes(conn, ns);
    console.log(
      JSON.stringify({
        level: 'info',
        msg: `Temporal ready for Quartermaster: namespace ${ns}`,
        namespace: ns,
        namespaceCreated: created,
        searchAttributesAdded: added,
        searchAttributesPresent: present,
      }),
    );
  } finally {
    await conn.close();
  }
}

if (require.main === module)
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
