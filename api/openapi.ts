import { z } from 'zod';
import {
  ChangePlanRequest,
  DeprovisionRequest,
  ProvisionRequest,
  ResumeRequest,
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
        'Creates, suspends, resumes and cancels customer sites; each call starts a durable Temporal ' +
        'operation and answers at once with its id, which GET /v1/operations/{id} follows.\n\n' +
        `Every /v1 request is signed: \`X-QM-Timestamp\` (unix seconds, within ±${SIGNATURE_WINDOW_SECONDS / 60} ` +
        'minutes of the server clock) and `X-QM-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`. ' +
        'A signature is accepted once. Bodies are JSON (Content-Type: application/json), at most 64 KiB; ' +
        'unknown fields are refused.\n\n' +
        'Backups, restores and deploys will join as their workflows land (same conventions).',
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
          { ProvisionRequest, SuspendRequest, ResumeRequest, DeprovisionRequest, ChangePlanRequest },
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
        patch: {
          summary: 'Change a plan (not implemented yet)',
          description:
            'Answers 501 after validating the request: there is no workflow yet that applies a plan ' +
            '(resources, backup retention) to a running site, and recording a plan that nothing applies ' +
            'would make the record lie. Nothing is changed.',
          security: [{ signature: [], timestamp: [] }],
          parameters: [{ $ref: '#/components/parameters/IdempotencyKey' }],
          requestBody: { required: true, content: json('ChangePlanRequest') },
          responses: { '501': { description: 'Not implemented yet.', content: json('Error') }, ...errors },
        },
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
