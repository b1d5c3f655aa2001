// The workflows test workers run: every production workflow, plus test-only helpers.
export * from '../../workflows';
export { runActivity } from './runActivity';
