import { randomUUID } from 'node:crypto';
import { Connection } from '@temporalio/client';
import { ensureNamespace, ensureSearchAttributes } from '../../workers/setupTemporal';
import { SEARCH_ATTRIBUTE_TYPES } from '../../protocol/searchAttributes';

/**
 * The one-shot set-up the compose file runs before the workers (temporal-setup), against the real
 * Temporal dev server: a fresh namespace gets every search attribute of protocol/searchAttributes.ts
 * with its type; a second run changes nothing.
 */
let conn: Connection;
beforeAll(async () => {
  conn = await Connection.connect({ address: process.env.QM_TEST_TEMPORAL_ADDRESS! });
});
afterAll(() => conn?.close());

const names = Object.keys(SEARCH_ATTRIBUTE_TYPES).sort();

test('a fresh namespace: created with its retention and every search attribute; a second run changes nothing', async () => {
  const ns = `qm-setup-${randomUUID().slice(0, 8)}`;
  expect(await ensureNamespace(conn, ns, 7)).toBe(true);
  const first = await ensureSearchAttributes(conn, ns, { delayMs: 250 });
  expect(first.added.sort()).toEqual(names);

  const described = await conn.workflowService.describeNamespace({ namespace: ns });
  expect(Number(described.config?.workflowExecutionRetentionTtl?.seconds)).toBe(7 * 86400);
  const listed = await conn.operatorService.listSearchAttributes({ namespace: ns });
  expect(Object.keys(listed.customAttributes ?? {})).toEqual(expect.arrayContaining(names));
  expect(listed.customAttributes!.Hosts).toBe(7); // INDEXED_VALUE_TYPE_KEYWORD_LIST
  expect(listed.customAttributes!.LastGoodBackup).toBe(6); // INDEXED_VALUE_TYPE_DATETIME

  expect(await ensureNamespace(conn, ns, 30)).toBe(false);
  const second = await ensureSearchAttributes(conn, ns);
  expect(second).toEqual({ added: [], present: expect.arrayContaining(names) });
});

test('the dev server namespace (registered at its start) is left alone', async () => {
  expect(await ensureNamespace(conn, 'default', 30)).toBe(false);
  expect((await ensureSearchAttributes(conn, 'default')).added).toEqual([]);
});
