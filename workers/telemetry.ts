import type { LogLevel, Logger } from '@temporalio/common';
import { Runtime } from '@temporalio/worker';
import { jsonLogger } from './logging';
import { OPERATION_DURATION } from './workflowInterceptors';

export interface TelemetryOptions {
  logLevel: LogLevel;
  /**
   * Port of the SDK's own Prometheus exporter (Temporal core: worker, poller, activity and
   * workflow metrics, and the platform's workflow-side ones). Bound to loopback: the worker's
   * /metrics endpoint re-serves it next to the Node-side metrics. Undefined: no SDK metrics.
   */
  sdkMetricsPort?: number;
}

/**
 * Install the SDK runtime for this process: JSON logs (native core logs forwarded at WARN) and
 * the Prometheus exporter. Runtime.install can run once per process, before any connection or
 * worker is made; a second call throws.
 */
export function installTelemetry(opts: TelemetryOptions): { logger: Logger; sdkMetricsUrl?: string } {
  const logger = jsonLogger(opts.logLevel);
  const bindAddress = opts.sdkMetricsPort ? `127.0.0.1:${opts.sdkMetricsPort}` : undefined;
  Runtime.install({
    logger,
    telemetryOptions: {
      logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} },
      ...(bindAddress
        ? {
            metrics: {
              prometheus: {
                bindAddress,
                countersTotalSuffix: true,
                useSecondsForDurations: true,
                // operations last seconds (a check) to hours (a patch roll, a large restore)
                histogramBucketOverrides: {
                  [OPERATION_DURATION]: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400],
                },
              },
            },
          }
        : {}),
    },
  });
  return { logger, sdkMetricsUrl: bindAddress ? `http://${bindAddress}/metrics` : undefined };
}
