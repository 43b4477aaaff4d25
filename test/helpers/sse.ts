/** A Server-Sent Events reader over a real HTTP connection, parsing frames as a browser would (HTML §9.2.6). */
import http from 'node:http';

export interface SseEvent {
  event: string;
  data: string;
  json: any;
}

export interface SseReader {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** the raw text received so far */
  raw(): string;
  /** the next event (of this type, skipping others), waiting up to `timeoutMs` */
  next(type?: string, timeoutMs?: number): Promise<SseEvent>;
  /** resolves when the server ends the response */
  ended: Promise<void>;
  close(): void;
}

export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      let raw = '';
      let buffer = '';
      const queue: SseEvent[] = [];
      let wake: (() => void) | null = null;
      let endResolve!: () => void;
      const ended = new Promise<void>((r) => (endResolve = r));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        raw += chunk;
        buffer += chunk;
        let i: number;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (data.length === 0) continue; // retry: or a comment
          const text = data.join('\n');
          queue.push({ event, data: text, json: JSON.parse(text) });
        }
        wake?.();
      });
      res.on('end', () => {
        endResolve();
        wake?.();
      });
      res.on('close', () => {
        endResolve();
        wake?.();
      });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        raw: () => raw,
        ended,
        async next(type, timeoutMs = 5000) {
          const deadline = Date.now() + timeoutMs;
          for (;;) {
            const idx = queue.findIndex((e) => type === undefined || e.event === type);
            if (idx >= 0) return queue.splice(0, idx + 1).at(-1)!;
            const left = deadline - Date.now();
            if (left <= 0 || res.closed) throw new Error(`no ${type ?? 'event'} within ${timeoutMs} ms; got: ${raw.slice(-500)}`);
            await new Promise<void>((r) => {
              const t = setTimeout(r, Math.min(left, 100));
              wake = () => {
                clearTimeout(t);
                r();
              };
            });
          }
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}
