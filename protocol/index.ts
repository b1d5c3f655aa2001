// The contract between workflows, the activities that talk to Temporal, and the clients: ids,
// signals, queries, updates, search attributes, and every workflow's input and result.
export * from './checkFleet';
export * from './failures';
export * from './ids';
export * from './nightlyBackups';
export * from './operations';
export * from './patchRoll';
export * from './searchAttributes';
export * from './site';
