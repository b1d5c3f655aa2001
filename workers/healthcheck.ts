import net from 'node:net';

/**
 * The containers' HEALTHCHECK (the runtime image has no curl): `node dist/workers/healthcheck.js
 * [URL]`, exit 0 when healthy.
 *   http://…  a GET answered 2xx (the worker's /healthz, the API's /healthz);
 *   tcp://host:port  the port accepts a connection (the codec server, which has no health route).
 * Without a URL: the worker's http://127.0.0.1:$QM_METRICS_PORT/healthz (default 9464).
 */
const TIMEOUT_MS = 4000;

async function check(target: string): Promise<void> {
  const url = new URL(target);
  if (url.protocol === 'tcp:') {
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host: url.hostname, port: Number(url.port) }, () => {
        socket.end();
        resolve();
      });
      socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error('timed out')));
      socket.once('error', reject);
    });
    return;
  }
  const r = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (!r.ok) throw new Error(`${r.status} ${(await r.text()).trim()}`);
}

const target = process.argv[2] ?? `http://127.0.0.1:${process.env.QM_METRICS_PORT || 9464}/healthz`;
check(target).then(
  () => process.exit(0),
  (err) => {
    console.error(`unhealthy: ${target}: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
