import { z } from 'zod';
import {
  BackupRequest,
  ChangePlanRequest,
  DeployRequest,
  DeprovisionRequest,
  ProvisionRequest,
  RepairRequest,
  RestoreRequest,
  ResumeRequest,
  RollbackRequest,
  SuspendRequest,
} from './requests';
import {
  ErrorResponse,
  HealthResponse,
  OperationProgress,
  OperationResponse,
  OperationStarted,
  SiteResponse,
} from './responses';
import { SIGNATURE_WINDOW_SECONDS } from './signature';

/**
 * The API's OpenAPI 3.1 document, generated from the same zod schemas the server validates with
 * (requests) and answers with (responses). Served at GET /openapi.json.
 */

type Schemas = Record<string, z.ZodType>;

function components(schemas: Schemas, io: 'input' | 'output') {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const { schemas: out } = z.toJSONSchema(registry, {
    io,
    uri: (id) => `#/components/schemas/${id}`,
    unrepresentable: 'any',
  });
  for (const s of Object.values(out)) {
    delete (s as { $schema?: string }).$schema;
    delete (s as { $id?: string }).$id;
  }
  return out;
}

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const json = (id: string) => ({ 'application/json': { schema: ref(id) } });

const QUEUEING =
  'Operations on one site run one at a time, in the order they arrive, behind the site lock. An ' +
  'operation started while another holds the lock is started all the same and waits its turn: the ' +
  'answer is 202 with `queued: true` (and `behind`, the operation holding the lock); ' +
  'GET /v1/operations/{id} shows `queued: true` until its turn comes.';

const IDEMPOTENCY =
  'Required. 1-64 letters, digits, `_` and `-` (the billing order id does well). With the operation ' +
  'and the site id it forms the operation id (the workflow id): the same key again returns the same ' +
  'operation, running or finished, with 200, and never starts a second one; the same key with a ' +
  'different request is refused with 409.';

const errors = {
  '400': {
    description: 'Invalid request: `fields` names every bad field. Nothing was started.',
    content: json('Error'),
  },
  '401': {
    description: 'Missing, bad, expired or replayed signature. Nothing was started.',
    content: json('Error'),
  },
  '413': { description: 'Body over 64 KiB. Nothing was started.', content: json('Error') },
  '415': {
    description: 'Content-Type is not application/json. Nothing was started.',
    content: json('Error'),
  },
  '503': { description: 'Temporal (or a worker) did not answer.', content: json('Error') },
};

function startOperation(summary: string, description: string, requestBody: string, optionalBody: boolean) {
  return {
    summary,
    description: `${description}\n\n${QUEUEING}`,
    security: [{ signature: [], timestamp: [] }],
    parameters: [{ $ref: '#/components/parameters/IdempotencyKey' }],
    requestBody: { required: !optionalBody, content: json(requestBody) },
    responses: {
      '202': {
        description: 'Started (possibly queued behind the site lock).',
        content: json('OperationStarted'),
      },
      '200': {
        description: 'This Idempotency-Key had already started it: the same operation.',
        content: json('OperationStarted'),
      },
      '404': {
        description: 'The site is not known to the platform. Nothing was started.',
        content: json('Error'),
      },
      '409': {
        description: 'The Idempotency-Key was used for a different request. Nothing was started.',
        content: json('Error'),
      },
      ...errors,
    },
  };
}

const siteIdParam = {
  name: 'siteId',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$', minLength: 2, maxLength: 40 },
};

export function openApiDocument() {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Quartermaster billing API',
      version: '1.0.0',
      description:
        'Creates, suspends, resumes and cancels customer sites, changes their plan, backs them up, restores ' +
        'them, deploys a ref, rolls back and repairs; each call starts a durable Temporal ' +
        'operation and answers at once with its id, which GET /v1/operations/{id} follows.\n\n' +
        `Every /v1 request is signed: \`X-QM-Timestamp\` (unix seconds, within ±${SIGNATURE_WINDOW_SECONDS / 60} ` +
        'minutes of the server clock) and `X-QM-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`. ' +
        'A signature is accepted once. Bodies are JSON (Content-Type: application/json), at most 64 KiB; ' +
        'unknown fields are refused.',
    },
    components: {
      securitySchemes: {
        signature: { type: 'apiKey', in: 'header', name: 'X-QM-Signature' },
        timestamp: { type: 'apiKey', in: 'header', name: 'X-QM-Timestamp' },
      },
      parameters: {
        IdempotencyKey: {
          name: 'Idempotency-Key',
          in: 'header',
          required: true,
          description: IDEMPOTENCY,
          schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_-]*$', minLength: 1, maxLength: 64 },
        },
      },
      schemas: {
        ...components(
          {
            ProvisionRequest,
            SuspendRequest,
            ResumeRequest,
            DeprovisionRequest,
            ChangePlanRequest,
            BackupRequest,
            RestoreRequest,
            DeployRequest,
            RollbackRequest,
            RepairRequest,
          },
          'input',
        ),
        ...components(
          {
            Error: ErrorResponse,
            OperationStarted,
            OperationProgress,
            Operation: OperationResponse,
            Site: SiteResponse,
            Health: HealthResponse,
          },
          'output',
        ),
      },
    },
    paths: {
      '/v1/sites': {
        post: startOperation(
          'Create a site (provisionSite)',
          'Provisions the site described by `site`. A site already active with the same spec completes at once.',
          'ProvisionRequest',
          false,
        ),
      },
      '/v1/sites/{siteId}': {
        parameters: [siteIdParam],
        get: {
          summary: "The site's record",
          description:
            "The record held by the site's own workflow, the operation holding its lock and those waiting.",
          security: [{ signature: [], timestamp: [] }],
          responses: {
            '200': { description: 'The site.', content: json('Site') },
            '404': { description: 'Not known to the platform.', content: json('Error') },
            ...errors,
          },
        },
        delete: startOperation(
          'Cancel a site (deprovisionSite)',
          'Removes the site for good after a final backup (database snapshot, files archive).',
          'DeprovisionRequest',
          true,
        ),
      },
      '/v1/sites/{siteId}/suspend': {
        parameters: [siteIdParam],
        post: startOperation(
          'Suspend a site (suspendSite)',
          'The proxies serve the "suspended" page and the containers stop; the data stays.',
          'SuspendRequest',
          true,
        ),
      },
      '/v1/sites/{siteId}/resume': {
        parameters: [siteIdParam],
        post: startOperation(
          'Resume a suspended site (resumeSite)',
          'The containers start again and the site serves once healthy.',
          'ResumeRequest',
          true,
        ),
      },
      '/v1/sites/{siteId}/plan': {
        parameters: [siteIdParam],
        patch: startOperation(
          'Change the plan (changePlan)',
          "Records the new plan in the site's record. Backups follow it from the next one on: each prunes by " +
            "its plan's retention once it is verified, so a downgrade never prunes without a fresh good backup. " +
            'The result says the plan before and after and the retention now in force.',
          'ChangePlanRequest',
          false,
        ),
      },
      '/v1/sites/{siteId}/backups': {
        parameters: [siteIdParam],
        post: startOperation(
          'Back up a site now (backupSite)',
          'A consistent database dump and a files archive, checksummed, verified by restoring them into ' +
            "scratch; then old backups pruned by the plan's retention. The result carries the backupId " +
            'that a restore takes.',
          'BackupRequest',
          true,
        ),
      },
      '/v1/sites/{siteId}/restore': {
        parameters: [siteIdParam],
        post: startOperation(
          'Restore a site from a backup (restoreSite)',
          'Takes a safety backup first, shows the maintenance page, puts back the database and files of ' +
            'the backup, checks them against its manifest and health through the proxy; on any failure the ' +
            'site goes back to the safety backup. A backup that is not verified is refused with nothing touched.',
          'RestoreRequest',
          false,
        ),
      },
      '/v1/sites/{siteId}/deploy': {
        parameters: [siteIdParam],
        post: startOperation(
          'Deploy a commit or ref (deployRelease)',
          'Fetches the release onto every app server in parallel, snapshots the database, switches traffic with ' +
            "zero downtime, runs the profile's postDeploy hooks once and checks health through every proxy; on " +
            'any failure every server returns to the previous release (and the database to the snapshot if the ' +
            'hooks ran). A Git push starts the same operation (id deploy:<siteId>:<commit>).',
          'DeployRequest',
          false,
        ),
      },
      '/v1/sites/{siteId}/rollback': {
        parameters: [siteIdParam],
        post: startOperation(
          'Roll back to a kept release (rollbackSite)',
          'Switches every app server back to a release it still keeps, with zero downtime; no hooks and no ' +
            'database change. A release that is not kept is refused before anything changes.',
          'RollbackRequest',
          false,
        ),
      },
      '/v1/sites/{siteId}/repair': {
        parameters: [siteIdParam],
        post: startOperation(
          'Put a site back as its record says (repairSite)',
          "Under the site's lock, on every host that answers: each proxy's nginx running with the route the " +
            'state asks for, the shared files mounted, the containers on the recorded release (no standby), the ' +
            "database back on a failed deploy's snapshot when the record says so; then health through every " +
            'proxy. The result says per host what changed, what was already right and what is out of line. A ' +
            'failed site returns to its state before the failure once nothing is out of line. Run on a site in ' +
            'line, it changes nothing.',
          'RepairRequest',
          false,
        ),
      },
      '/v1/operations/{id}': {
        parameters: [
          {
            name: 'id',
            in: 'path',
            required: true,
            description: '<operation>:<siteId>:<Idempotency-Key>',
            schema: { type: 'string', maxLength: 160 },
          },
        ],
        get: {
          summary: 'An operation',
          description:
            'Its state; while RUNNING its progress (step, steps done, per-host status) and `queued` while ' +
            'it waits for the site lock; once ended its result or error.',
          security: [{ signature: [], timestamp: [] }],
          responses: {
            '200': { description: 'The operation.', content: json('Operation') },
            '404': { description: 'No such operation.', content: json('Error') },
            ...errors,
          },
        },
      },
      '/openapi.json': {
        get: {
          summary: 'This document (unauthenticated)',
          responses: { '200': { description: 'The OpenAPI 3.1 document.' } },
        },
      },
      '/healthz': {
        get: {
          summary: 'Health (unauthenticated)',
          description: 'ok when Temporal answers.',
          responses: {
            '200': { description: 'Healthy.', content: json('Health') },
            '503': { description: 'Temporal does not answer.', content: json('Health') },
          },
        },
      },
    },
  };
}
