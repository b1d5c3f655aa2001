import { defineSearchAttributeKey } from '@temporalio/common';

/**
 * The custom search attributes every Quartermaster workflow may set, so ops can filter the Web UI
 * ("SiteId = 'acme'", "Operation = 'deploy' AND ExecutionStatus = 'Running'"). The dev server
 * registers them at start (--search-attribute); a production cluster registers them once with
 * `temporal operator search-attribute create`.
 */
export const SEARCH_ATTRIBUTE_TYPES = {
  SiteId: 'Keyword',
  CustomerId: 'Keyword',
  Operation: 'Keyword',
  TriggeredBy: 'Keyword',
  Hosts: 'KeywordList',
  State: 'Keyword',
  Release: 'Keyword',
  LastGoodBackup: 'Datetime',
  DeployOutcome: 'Keyword',
} as const;

export const SiteId = defineSearchAttributeKey('SiteId', 'KEYWORD');
export const CustomerId = defineSearchAttributeKey('CustomerId', 'KEYWORD');
export const Operation = defineSearchAttributeKey('Operation', 'KEYWORD');
export const TriggeredBy = defineSearchAttributeKey('TriggeredBy', 'KEYWORD');
export const Hosts = defineSearchAttributeKey('Hosts', 'KEYWORD_LIST');
export const State = defineSearchAttributeKey('State', 'KEYWORD');
export const Release = defineSearchAttributeKey('Release', 'KEYWORD');
export const LastGoodBackup = defineSearchAttributeKey('LastGoodBackup', 'DATETIME');
/**
 * How a deploy ended, set when it ends: `deployed`, `unchanged`, `superseded`, `not-tracking` (the
 * result's status), `failed` or `cancelled`. A deploy that did nothing and one that changed the
 * site look alike otherwise (both Completed): `Operation = 'deploy' AND DeployOutcome = 'deployed'`
 * lists the real ones, and the Web UI can show it as a column.
 */
export const DeployOutcome = defineSearchAttributeKey('DeployOutcome', 'KEYWORD');
export type DeployOutcomeValue =
  'deployed' | 'unchanged' | 'superseded' | 'not-tracking' | 'failed' | 'cancelled';
