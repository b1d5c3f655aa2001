/**
 * The id of the deploy of a commit to a site (`deploy:<siteId>:<commit>`), started with
 * REJECT_DUPLICATE by the Git webhook: a notification that comes twice never deploys twice.
 * Pure, so the API imports it without any workflow code.
 */
export const deployWorkflowId = (siteId: string, commit: string) => `deploy:${siteId}:${commit}`;
