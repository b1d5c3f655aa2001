import { ApplicationFailure } from '@temporalio/common';
import { dockerFailure, engineMessage, statusOf } from '../../activities/docker/failures';
import { failure, FailureType } from '../../activities/errors';

/** What docker-modem throws for an API error: an Error with the status and the engine's JSON body. */
function apiError(statusCode: number, message: string) {
  return Object.assign(new Error(`(HTTP code ${statusCode}) unexpected - ${message}`), {
    statusCode,
    json: { message },
  });
}

describe('dockerFailure', () => {
  test('an API error is a retryable DockerError with the status and the engine message', () => {
    const f = dockerFailure(
      'host2',
      'start container web',
      apiError(500, 'driver failed'),
    ) as ApplicationFailure;
    expect(f).toBeInstanceOf(ApplicationFailure);
    expect(f.type).toBe(FailureType.DockerError);
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toBe('start container web on host2: the Docker engine answered 500: driver failed');
    expect(f.details).toEqual([{ host: 'host2', statusCode: 500 }]);
  });

  test('a dropped connection is a retryable HostUnreachable', () => {
    const err = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const f = dockerFailure('host3', 'list containers', err) as ApplicationFailure;
    expect(f.type).toBe(FailureType.HostUnreachable);
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toMatch(
      /^list containers on host3: lost the connection to the Docker engine: socket hang up/,
    );
  });

  test('a call that ran out of time is a retryable DockerError', () => {
    const err = Object.assign(new Error('This operation was aborted'), { name: 'AbortError' });
    const f = dockerFailure('host1', 'inspect container web', err) as ApplicationFailure;
    expect(f.type).toBe(FailureType.DockerError);
    expect(f.message).toMatch(/no answer from the Docker engine in time/);
  });

  test('our own failures pass through, naming the host; a cancelled activity gets its cancellation back', () => {
    const named = failure(FailureType.Conflict, 'not ours', { host: 'host1', name: 'web' });
    expect(dockerFailure('host1', 'x', named)).toBe(named);
    const own = failure(FailureType.DockerError, 'container web is being removed; try again', { id: 'c1' });
    const f = dockerFailure('host2', 'x', own) as ApplicationFailure;
    expect([f.type, f.message, f.nonRetryable]).toEqual([own.type, own.message, own.nonRetryable]);
    expect(f.details).toEqual([{ id: 'c1', host: 'host2' }]);
    const ac = new AbortController();
    const reason = new Error('cancelled by the workflow');
    ac.abort(reason);
    expect(dockerFailure('host1', 'x', apiError(500, 'whatever'), ac.signal)).toBe(reason);
  });

  test('statusOf and engineMessage read docker-modem errors, and plain ones', () => {
    expect(statusOf(apiError(404, 'No such container: web'))).toBe(404);
    expect(statusOf(new Error('boom'))).toBeUndefined();
    expect(statusOf(undefined)).toBeUndefined();
    expect(engineMessage(apiError(409, 'Conflict. The name is in use'))).toBe('Conflict. The name is in use');
    expect(engineMessage(Object.assign(new Error('x'), { json: Buffer.from('page not found\n') }))).toBe(
      'page not found',
    );
    expect(engineMessage(new Error('plain'))).toBe('plain');
  });
});
