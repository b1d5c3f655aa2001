// Every workflow type the worker runs, one business process per file.
export { checkFleet } from './checkFleet';
export { site } from './site';
export { provisionSite } from './provisionSite';
export { deprovisionSite } from './deprovisionSite';
export { suspendSite, resumeSite } from './suspendSite';
export { changePlan } from './changePlan';
export { patchRoll } from './patchRoll';
export { backupSite } from './backupSite';
export { restoreSite } from './restoreSite';
export { nightlyBackups } from './nightlyBackups';
export { deployRelease } from './deploy/deployRelease';
export { rollbackSite } from './deploy/rollbackSite';
export { repairSite } from './repairSite';
