import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { activityIO } from '../context';
import { failure, FailureType } from '../errors';
import type { Fleet } from '../fleet';
import { abortable, dockerFailure, dockerOp } from './failures';
import { findImage } from './lookup';

type IO = ReturnType<typeof activityIO>;

export interface EnsureImageResult {
  /** The image id on the host (the same on every host: a copy is verified by it). */
  id: string;
  action: 'present' | 'copied';
  /** Where it was copied from, and how many bytes of image archive crossed. */
  from?: string;
  bytes?: number;
}

/**
 * Make image `ref` present on `host`. No registry is reachable from the hosts, so an image spreads
 * from a host that has it: the source engine's `GET /images/{ref}/get` archive is streamed, as it
 * arrives, into the target engine's `POST /images/load` (never held whole in memory), and the
 * loaded image must have the source's id.
 *
 * Idempotent: an image already present is left alone (`present`), and a load of an image that is
 * partly or wholly there just tags it again; a copy cut short leaves nothing the next run trips on.
 * The source is `sourceHost` if given, else the first other host that has the image. Nobody
 * having it is a Conflict (not retried: something must build or import it first); a source we
 * could not ask is a retryable failure instead, since it may have had it.
 */
export async function ensureImage(
  fleet: Fleet,
  host: string,
  ref: string,
  opts: { sourceHost?: string } = {},
  io: IO = activityIO(),
): Promise<EnsureImageResult> {
  const { signal } = io;
  const target = fleet.docker.engine(host);
  const present = await dockerOp(host, `inspect image ${ref}`, signal, () => findImage(target, ref, signal));
  if (present) return { id: present.Id, action: 'present' };

  if (opts.sourceHost === host)
    throw failure(FailureType.InvalidInput, `sourceHost is ${host} itself, which lacks ${ref}`, { host });
  const candidates = opts.sourceHost
    ? [fleet.pool.host(opts.sourceHost).name]
    : fleet.pool.hostNames().filter((h) => h !== host);
  let source: { host: string; id: string } | undefined;
  const unanswered: Error[] = [];
  for (const candidate of candidates) {
    try {
      const image = await findImage(fleet.docker.engine(candidate), ref, signal);
      if (image) {
        source = { host: candidate, id: image.Id };
        break;
      }
    } catch (err) {
      const f = dockerFailure(candidate, `inspect image ${ref}`, err, signal);
      if (signal?.aborted) throw f;
      unanswered.push(f);
    }
  }
  if (!source) {
    if (unanswered.length)
      throw failure(
        FailureType.HostUnreachable,
        `image ${ref} is not on ${host}, and ${unanswered.length} possible source(s) did not answer: ` +
          unanswered.map((e) => e.message).join('; '),
        { host, image: ref },
      );
    throw failure(
      FailureType.Conflict,
      `image ${ref} is on none of ${[host, ...candidates].join(', ')}: there is nothing to copy it from`,
      { host, image: ref, searched: candidates },
    );
  }

  const bytes = await copyImage(fleet, source.host, host, ref, io);
  const loaded = await dockerOp(host, `inspect image ${ref}`, signal, () => findImage(target, ref, signal));
  if (!loaded || loaded.Id !== source.id)
    throw failure(
      FailureType.DockerError,
      `image ${ref} copied from ${source.host} to ${host} but ${host} has ` +
        (loaded ? `id ${loaded.Id}, not ${source.id}` : 'no such image afterwards'),
      { host, image: ref, from: source.host, expected: source.id, got: loaded?.Id },
    );
  return { id: loaded.Id, action: 'copied', from: source.host, bytes };
}

/** Stream the image archive from one engine into another; the number of bytes that crossed. */
async function copyImage(fleet: Fleet, from: string, to: string, ref: string, io: IO): Promise<number> {
  const { signal, onActivity } = io;
  const what = `copy image ${ref} from ${from} to ${to}`;
  let archive: Readable;
  try {
    archive = (await abortable(fleet.docker.engine(from).getImage(ref).get(), signal)) as Readable;
  } catch (err) {
    throw dockerFailure(from, what, err, signal);
  }
  let bytes = 0;
  // counts, and heartbeats as bytes move: a stalled copy stops heartbeating and Temporal cancels it
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      onActivity?.();
      done(null, chunk);
    },
  });
  // A failure at the source (its engine or connection) shows at the target only as a cut-short
  // upload: remember it as it happens, to report the source's error rather than the symptom.
  let sourceError: Error | undefined;
  const feeding = pipeline(archive, meter, { signal }).catch((err: Error) => {
    sourceError ??= err;
  });
  try {
    const reply = (await fleet.docker
      .engine(to)
      .loadImage(meter, { quiet: true, abortSignal: signal })) as Readable;
    const text = await readAll(reply);
    await feeding;
    if (sourceError) throw sourceError;
    const error = loadError(text);
    if (error)
      throw failure(FailureType.DockerError, `${what}: ${to} refused the archive: ${error}`, { host: to });
    return bytes;
  } catch (err) {
    const atSource = sourceError;
    archive.destroy();
    meter.destroy();
    await feeding;
    throw atSource ? dockerFailure(from, what, atSource, signal) : dockerFailure(to, what, err, signal);
  }
}

async function readAll(stream: Readable): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += (chunk as Buffer).toString('utf8');
  return text;
}

/** The engine reports a failed load as a JSON message with `error` in a 200 reply. */
export function loadError(reply: string): string | undefined {
  for (const line of reply.split('\n')) {
    if (!line.trim()) continue;
    try {
      const msg = JSON.parse(line) as { error?: string; errorDetail?: { message?: string } };
      if (msg.error || msg.errorDetail) return msg.errorDetail?.message ?? msg.error;
    } catch {
      // not JSON: ignore
    }
  }
  return undefined;
}
