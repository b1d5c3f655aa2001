import { runningAndHealthy } from '../../activities/site/containers';

/** What startSiteContainers takes from the engine's listing alone, before asking anything else. */
test.each([
  ['running', 'Up 3 minutes (healthy)', true],
  ['running', 'Up 12 seconds', true], // no health check: running is enough
  ['running', 'Up 2 seconds (health: starting)', false],
  ['running', 'Up 5 minutes (unhealthy)', false],
  ['exited', 'Exited (0) 2 minutes ago', false],
  ['restarting', 'Restarting (1) 3 seconds ago', false],
  ['created', 'Created', false],
])('%s, "%s": ready %s', (state, status, ready) => {
  expect(runningAndHealthy({ state, status })).toBe(ready);
});
