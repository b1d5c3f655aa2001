// Every workflow type the worker runs, one business process per file.
export { checkFleet } from './checkFleet';
