import type Docker from 'dockerode';
import { SPEC_HASH_LABEL, type ContainerSpec } from '../../schema/container';
import { specHash } from './specHash';

/**
 * The Docker API requests the activities send, built from validated input and nothing else: pure
 * functions, unit-tested, kept apart from the code that decides where and when to send them.
 */

const NS_PER_MS = 1_000_000;

/** The body of POST /containers/create for a spec, with the spec's hash as a label. */
export function containerCreateOptions(spec: ContainerSpec): Docker.ContainerCreateOptions {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of spec.ports) {
    const key = `${p.containerPort}/${p.protocol}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: p.hostIp ?? '', HostPort: String(p.hostPort) });
  }
  const hc = spec.healthcheck;
  return {
    name: spec.name,
    Image: spec.image,
    Cmd: spec.cmd,
    Env: Object.keys(spec.env)
      .sort()
      .map((k) => `${k}=${spec.env[k]}`),
    Labels: { ...spec.labels, [SPEC_HASH_LABEL]: specHash(spec) },
    ExposedPorts: exposed,
    StopTimeout: spec.stopTimeoutSec,
    Healthcheck: hc
      ? {
          Test: ['CMD', ...hc.test],
          Interval: hc.intervalMs * NS_PER_MS,
          Timeout: hc.timeoutMs * NS_PER_MS,
          Retries: hc.retries,
          StartPeriod: hc.startPeriodMs * NS_PER_MS,
        }
      : undefined,
    HostConfig: {
      Init: spec.init,
      Memory: spec.memoryMb === undefined ? undefined : spec.memoryMb * 1024 * 1024,
      RestartPolicy: { Name: spec.restart === 'no' ? '' : spec.restart },
      PortBindings: bindings,
      Mounts: spec.mounts.map((m) => ({
        Type: m.type,
        Source: m.source,
        Target: m.target,
        ReadOnly: m.readOnly,
      })),
      NetworkMode: spec.network,
    },
  };
}

/** Query of GET /containers/json: every container (running or not) carrying all these labels. */
export function labelFilter(labels: Record<string, string>): { all: true; filters: string } {
  const label = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`);
  return { all: true, filters: JSON.stringify({ label }) };
}

/** The body of POST /networks/create. */
export function networkCreateOptions(input: {
  name: string;
  labels: Record<string, string>;
  internal: boolean;
}): Docker.NetworkCreateOptions {
  return {
    Name: input.name,
    Driver: 'bridge',
    Internal: input.internal,
    Labels: input.labels,
    CheckDuplicate: true,
  };
}

/** The body of POST /volumes/create. */
export function volumeCreateOptions(input: {
  name: string;
  labels: Record<string, string>;
}): Docker.VolumeCreateOptions {
  return { Name: input.name, Driver: 'local', Labels: input.labels };
}
