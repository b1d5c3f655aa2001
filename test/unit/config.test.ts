import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CodecServerEnv,
  loadEnv,
  PlatformEnv,
  SetupEnv,
  temporalTls,
  TemporalConnectionEnv,
  WorkerEnv,
} from '../../config';

/** Each process's environment schema: defaults, one error naming every bad variable, no secret in it. */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-config-'));
const file = (name: string, content = name) => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
};
const inventory = file('fleet.yaml');
const sshKey = file('id_ed25519');
const key = randomBytes(32).toString('base64');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The message of the error loadEnv throws. */
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a configuration error');
}

describe('worker', () => {
  test('the minimum: inventory and SSH key; everything else has a production default', () => {
    const env = loadEnv(WorkerEnv, { QM_INVENTORY: inventory, QM_SSH_KEY: sshKey });
    expect(env).toEqual(
      expect.objectContaining({
        TEMPORAL_ADDRESS: '127.0.0.1:7233',
        TEMPORAL_NAMESPACE: 'default',
        TEMPORAL_TLS: false,
        QM_TASK_QUEUE: 'quartermaster',
        QM_LOG_LEVEL: 'INFO',
        QM_METRICS_HOST: '127.0.0.1',
        QM_SDK_METRICS_PORT: 9465,
        QM_METRICS_REFRESH_SECONDS: 60,
        QM_SHUTDOWN_GRACE_SECONDS: 120,
      }),
    );
    expect(env.QM_CODEC_KEY).toBeUndefined();
    expect(env.QM_METRICS_PORT).toBeUndefined(); // no endpoint unless asked (the image asks)
    expect(temporalTls(env)).toBeUndefined();
  });

  test('an empty environment: one error naming both missing variables, one per line', () => {
    expect(errorOf(() => loadEnv(WorkerEnv, {}))).toBe(
      'bad configuration:\n' +
        '  QM_INVENTORY: required: path of the fleet inventory (JSON or YAML)\n' +
        '  QM_SSH_KEY: set QM_SSH_KEY (a private key file) or SSH_AUTH_SOCK (an ssh-agent)',
    );
  });

  test('every bad variable at once, and never a secret value', () => {
    const secretish = 'c2VjcmV0' + randomBytes(6).toString('hex');
    const msg = errorOf(() =>
      loadEnv(WorkerEnv, {
        QM_INVENTORY: path.join(dir, 'missing.yaml'),
        QM_SSH_KEY: dir, // a directory, not a key file
        QM_CODEC_KEY: `${key},${secretish}`,
        QM_METRICS_PORT: '70000',
        QM_SDK_METRICS_PORT: 'x',
        QM_LOG_LEVEL: 'chatty',
        QM_SHUTDOWN_GRACE_SECONDS: '0',
        TEMPORAL_TLS: 'yes',
        TEMPORAL_TLS_CERT: sshKey,
      }),
    );
    const named = msg
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(':')[0]);
    expect(named.sort()).toEqual(
      [
        'QM_CODEC_KEY',
        'QM_INVENTORY',
        'QM_LOG_LEVEL',
        'QM_METRICS_PORT',
        'QM_SDK_METRICS_PORT',
        'QM_SHUTDOWN_GRACE_SECONDS',
        'QM_SSH_KEY',
        'TEMPORAL_TLS',
        'TEMPORAL_TLS_KEY',
      ].sort(),
    );
    expect(msg).toContain(`no readable file at ${path.join(dir, 'missing.yaml')}`);
    expect(msg).toContain('key 2 must be 32 bytes');
    expect(msg).not.toContain(secretish);
    expect(msg).not.toContain(key);
  });

  test('an ssh-agent instead of a key; empty values count as unset; the log level in any case', () => {
    const env = loadEnv(WorkerEnv, {
      QM_INVENTORY: inventory,
      SSH_AUTH_SOCK: '/run/ssh-agent.sock',
      QM_SSH_KEY: '',
      QM_CODEC_KEY: '',
      QM_LOG_LEVEL: 'debug',
      QM_METRICS_PORT: '9464',
    });
    expect(env.QM_SSH_KEY).toBeUndefined();
    expect(env.QM_CODEC_KEY).toBeUndefined();
    expect(env.QM_LOG_LEVEL).toBe('DEBUG');
    expect(env.QM_METRICS_PORT).toBe(9464);
  });

  test('codec keys are parsed (the first encrypts), ports may not collide', () => {
    const second = randomBytes(32).toString('base64');
    const env = loadEnv(WorkerEnv, {
      QM_INVENTORY: inventory,
      QM_SSH_KEY: sshKey,
      QM_CODEC_KEY: `${key}, ${second}`,
    });
    expect(env.QM_CODEC_KEY!.map((k) => k.key.toString('base64'))).toEqual([key, second]);
    expect(
      errorOf(() =>
        loadEnv(WorkerEnv, {
          QM_INVENTORY: inventory,
          QM_SSH_KEY: sshKey,
          QM_METRICS_PORT: '9000',
          QM_SDK_METRICS_PORT: '9000',
        }),
      ),
    ).toContain('QM_SDK_METRICS_PORT: must differ from QM_METRICS_PORT');
  });
});

describe('Temporal connection (TLS)', () => {
  const ca = file('ca.pem', 'CA');
  const cert = file('client.pem', 'CERT');
  const clientKey = file('client.key', 'KEY');

  test('mTLS: the files are read into the connection options', () => {
    const env = loadEnv(TemporalConnectionEnv, {
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      TEMPORAL_TLS_CA: ca,
      TEMPORAL_TLS_CERT: cert,
      TEMPORAL_TLS_KEY: clientKey,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    expect(temporalTls(env)).toEqual({
      serverNameOverride: 'temporal.internal',
      serverRootCACertificate: Buffer.from('CA'),
      clientCertPair: { crt: Buffer.from('CERT'), key: Buffer.from('KEY') },
    });
  });

  test('TEMPORAL_TLS=1 alone: TLS with the system CAs', () => {
    expect(temporalTls(loadEnv(TemporalConnectionEnv, { TEMPORAL_TLS: '1' }))).toEqual({});
  });

  test('a key without its certificate, a missing CA file', () => {
    const msg = errorOf(() =>
      loadEnv(TemporalConnectionEnv, {
        TEMPORAL_TLS_KEY: clientKey,
        TEMPORAL_TLS_CA: '/nonexistent/ca.pem',
      }),
    );
    expect(msg).toContain('TEMPORAL_TLS_CA: no readable file at /nonexistent/ca.pem');
    expect(msg).toContain('TEMPORAL_TLS_CERT: mTLS needs both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY');
  });
});

describe('codec server and set-up', () => {
  test('the codec server needs its key and token, both named at once, neither shown', () => {
    const token = 'short-token-' + randomBytes(4).toString('hex');
    const msg = errorOf(() => loadEnv(CodecServerEnv, { QM_CODEC_TOKEN: token }));
    expect(msg).toContain('QM_CODEC_KEY: required');
    expect(msg).toContain('QM_CODEC_TOKEN: the codec server token must be at least 32 characters');
    expect(msg).not.toContain(token);
    const env = loadEnv(CodecServerEnv, { QM_CODEC_KEY: key, QM_CODEC_TOKEN: 'x'.repeat(32) });
    expect(env).toEqual(expect.objectContaining({ QM_CODEC_HOST: '127.0.0.1', QM_CODEC_PORT: 8481 }));
  });

  test('the set-up job: retention in whole days', () => {
    expect(loadEnv(SetupEnv, {}).TEMPORAL_RETENTION_DAYS).toBe(30);
    expect(errorOf(() => loadEnv(SetupEnv, { TEMPORAL_RETENTION_DAYS: '0.5' }))).toContain(
      'TEMPORAL_RETENTION_DAYS: must be a whole number of days',
    );
  });
});

describe('npm start', () => {
  test('defaults: loopback for the Web UI and the API, the standard ports, the demo fleet', () => {
    expect(loadEnv(PlatformEnv, {})).toEqual(
      expect.objectContaining({
        QM_UI_HOST: '127.0.0.1',
        QM_UI_PORT: 8233,
        QM_API_HOST: '127.0.0.1',
        QM_API_PORT: 8480,
        QM_CODEC_PORT: 8481,
        QM_TEMPORAL_PORT: 7233,
        QM_DEMO_SUBNET: '10.77.100',
        QM_DEMO_PREFIX: 'qmdemo',
        QM_KEEP_FLEET: false,
      }),
    );
  });

  test('every bad variable named at once', () => {
    const msg = errorOf(() =>
      loadEnv(PlatformEnv, {
        QM_DEMO_SUBNET: '10.77.300',
        QM_DEMO_PREFIX: 'Demo-1',
        QM_UI_PORT: 'eighty',
        QM_INVENTORY: inventory,
        QM_GIT_HOOK_URL: 'http://10.0.0.1:8480/hooks/git',
      }),
    );
    for (const name of [
      'QM_DEMO_SUBNET',
      'QM_DEMO_PREFIX',
      'QM_UI_PORT',
      'QM_SSH_KEY',
      'QM_GIT_HOOK_SECRET_FILE',
    ])
      expect(msg).toContain(`${name}: `);
  });
});
