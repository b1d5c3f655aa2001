import { openBed, type Bed } from '../support/bed';

let bed: Bed;
beforeAll(async () => {
  bed = await openBed({ temporal: false });
});
afterAll(() => bed?.close());

describe.each(['host1', 'host2', 'host3'])('%s', (host) => {
  test('runs a command over SSH and is the host it claims to be', async () => {
    const r = await bed.fleet.pool.exec(host, ['hostname']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(host);
  });

  test('its Docker engine answers through the SSH connection', async () => {
    const docker = bed.fleet.docker.engine(host);
    const info = await docker.info();
    expect(info.Name).toBe(host);
    const images = await docker.listImages();
    expect(images.flatMap((i) => i.RepoTags ?? [])).toContain('local/busybox:1');
  });

  test('its MariaDB answers a query', async () => {
    const r = await bed.fleet.pool.exec(host, [
      'mariadb',
      '--batch',
      '--skip-column-names',
      '-e',
      'SELECT 6*7, @@hostname',
    ]);
    expect(r.stdout.trim().split('\t')).toEqual(['42', host]);
  });
});

test("hosts do not see each other's /srv", async () => {
  const marker = `/srv/only-on-host2-${Date.now()}`;
  await bed.fleet.pool.exec('host2', ['touch', marker]);
  try {
    const onHost3 = await bed.fleet.pool.exec('host3', ['test', '-e', marker], { check: false });
    expect(onHost3.code).toBe(1);
  } finally {
    await bed.fleet.pool.exec('host2', ['rm', '-f', marker]);
  }
});
