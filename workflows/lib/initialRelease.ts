/**
 * The release a new site starts on, until its first deploy (provisionSite records it; a rollback
 * may go back to it).
 */
export const INITIAL_RELEASE = 'initial';
