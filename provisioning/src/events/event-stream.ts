import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';

/** Limits of the Server-Sent Events streams of one endpoint. */
export interface EventStreamLimits {
  /** open streams at once; one more is refused (503) */
  readonly maxStreams: number;
  /** bytes queued for one slow reader before its stream is closed (it reconnects and gets a fresh snapshot) */
  readonly maxBufferedBytes: number;
  /** a comment line this often keeps proxies from timing the stream out */
  readonly heartbeatMs: number;
  /** the `retry:` the client waits before reconnecting, ms */
  readonly retryMs: number;
}

export const DEFAULT_EVENT_STREAM_LIMITS: EventStreamLimits = Object.freeze({
  maxStreams: 100,
  maxBufferedBytes: 256 * 1024,
  heartbeatMs: 15_000,
  retryMs: 2_000,
});

const EVENT_NAME = /^[a-z][a-z-]{0,31}$/;

/**
 * One event in the text/event-stream format (HTML Living Standard §9.2): `event:` and one
 * `data:` line. JSON.stringify escapes every line break, so data can never end the event or
 * inject a field.
 */
export function sseFrame(event: string, data: unknown): string {
  if (!EVENT_NAME.test(event)) throw new TypeError('event name must be a short lowercase token');
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** One open stream. `send` after close is a no-op. */
export class EventStream {
  readonly #res: ServerResponse;
  readonly #limits: EventStreamLimits;
  readonly #onClose: (() => void)[] = [];
  readonly #heartbeat: NodeJS.Timeout;
  #closed = false;

  constructor(res: ServerResponse, limits: EventStreamLimits) {
    this.#res = res;
    this.#limits = limits;
    res.write(`retry: ${limits.retryMs}\n\n`);
    this.#heartbeat = setInterval(() => this.#write(': ping\n\n'), limits.heartbeatMs);
    this.#heartbeat.unref();
    res.on('close', () => this.#end());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Runs `fn` once when the stream ends, whoever ends it. */
  onClose(fn: () => void): void {
    if (this.#closed) fn();
    else this.#onClose.push(fn);
  }

  send(event: string, data: unknown): void {
    this.#write(sseFrame(event, data));
  }

  /** Ends the response (the client may reconnect after `retry`). */
  close(): void {
    if (this.#closed) return;
    this.#res.end();
    this.#end();
  }

  #write(text: string): void {
    if (this.#closed) return;
    if (this.#res.writableLength > this.#limits.maxBufferedBytes) {
      // a reader that does not keep up is cut off rather than buffered without bound
      this.#res.destroy();
      this.#end();
      return;
    }
    this.#res.write(text);
  }

  #end(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    for (const fn of this.#onClose.splice(0)) {
      try {
        fn();
      } catch {
        // a cleanup that throws must not keep the others from running
      }
    }
  }
}

/**
 * The streams of one endpoint: opens them (up to `maxStreams`) and closes them all on the
 * app's `preClose`, so `app.close()` never waits for a browser that keeps listening.
 *
 * @example
 * ```ts
 * const streams = new EventStreams();
 * app.addHook('preClose', async () => streams.closeAll());
 * const stream = streams.open(reply); if (stream === null) throw new ApiError('not_ready');
 * ```
 */
export class EventStreams {
  readonly limits: EventStreamLimits;
  readonly #open = new Set<EventStream>();

  constructor(limits: Partial<EventStreamLimits> = {}) {
    this.limits = Object.freeze({ ...DEFAULT_EVENT_STREAM_LIMITS, ...limits });
  }

  get size(): number {
    return this.#open.size;
  }

  get full(): boolean {
    return this.#open.size >= this.limits.maxStreams;
  }

  /** Takes the response over from fastify and starts the stream; null when full (answer 503 yourself). */
  open(reply: FastifyReply, headers: Record<string, string> = {}): EventStream | null {
    if (this.full) return null;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // nginx and similar proxies would buffer the stream without this
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    const stream = new EventStream(res, this.limits);
    this.#open.add(stream);
    stream.onClose(() => this.#open.delete(stream));
    return stream;
  }

  closeAll(): void {
    for (const s of [...this.#open]) s.close();
  }
}
