/** Hand-built MQTT 3.1.1 packets over a plain net.Socket (no client library between test and broker). */
import { connect, type Socket } from 'node:net';

export function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

function str(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

/** A packet: first byte, remaining length, body. */
export function packet(first: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([first, ...varint(body.length)]), body]);
}

export interface ConnectFields {
  clientId: string;
  username?: string;
  password?: string | Buffer;
  clean?: boolean;
  keepalive?: number;
  will?: { topic: string; payload: string; qos?: 0 | 1; retain?: boolean };
  protocolLevel?: number;
  /** default `MQTT`; MQTT 3.1 (level 3) uses `MQIsdp` */
  protocolName?: string;
}

export function connectPacket(f: ConnectFields): Buffer {
  let flags = f.clean === false ? 0 : 0x02;
  const payload: Buffer[] = [str(f.clientId)];
  if (f.will) {
    flags |= 0x04 | ((f.will.qos ?? 0) << 3) | (f.will.retain ? 0x20 : 0);
    payload.push(str(f.will.topic), str(f.will.payload));
  }
  if (f.username !== undefined) {
    flags |= 0x80;
    payload.push(str(f.username));
  }
  if (f.password !== undefined) {
    flags |= 0x40;
    payload.push(str(typeof f.password === 'string' ? Buffer.from(f.password) : f.password));
  }
  const keepalive = Buffer.alloc(2);
  keepalive.writeUInt16BE(f.keepalive ?? 0);
  // MQTT 5 adds a properties length after the keep alive (here: no properties)
  const properties = f.protocolLevel === 5 ? Buffer.from([0]) : Buffer.alloc(0);
  const header = Buffer.concat([str(f.protocolName ?? 'MQTT'), Buffer.from([f.protocolLevel ?? 4, flags]), keepalive, properties]);
  return packet(0x10, Buffer.concat([header, ...payload]));
}

export function publishPacket(topic: string, payload: string | Buffer, opts: { qos?: 0 | 1; messageId?: number } = {}): Buffer {
  const parts = [str(topic)];
  if ((opts.qos ?? 0) > 0) {
    const id = Buffer.alloc(2);
    id.writeUInt16BE(opts.messageId ?? 1);
    parts.push(id);
  }
  parts.push(typeof payload === 'string' ? Buffer.from(payload) : payload);
  return packet(0x30 | ((opts.qos ?? 0) << 1), Buffer.concat(parts));
}

/** A raw connection that collects what the broker sends and notes when it closes. */
export interface RawConnection {
  socket: Socket;
  received(): Buffer;
  closed: Promise<void>;
  isClosed(): boolean;
  send(bytes: Buffer): void;
  /** The CONNACK return code, or 'closed' if the broker closed without one. */
  connack(timeoutMs?: number): Promise<number | 'closed'>;
}

/** `localAddress`: the source address (127.0.0.2, 127.0.0.3 … are loopback too), to act as many clients. */
export async function rawConnect(port: number, localAddress?: string): Promise<RawConnection> {
  const socket = connect({ host: '127.0.0.1', port, ...(localAddress === undefined ? {} : { localAddress }) });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let buffer = Buffer.alloc(0);
  let isClosed = false;
  socket.on('data', (d: Buffer) => {
    buffer = Buffer.concat([buffer, d]);
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      isClosed = true;
      resolve();
    }),
  );
  const conn: RawConnection = {
    socket,
    received: () => buffer,
    closed,
    isClosed: () => isClosed,
    send: (bytes) => {
      if (!socket.destroyed) socket.write(bytes);
    },
    async connack(timeoutMs = 5000) {
      const started = Date.now();
      while (buffer.length < 4 && !isClosed) {
        if (Date.now() - started > timeoutMs) throw new Error('no CONNACK in time');
        await new Promise((r) => setTimeout(r, 5));
      }
      if (buffer.length >= 4 && buffer[0] === 0x20 && buffer[1] === 0x02) return buffer[3] as number;
      return 'closed';
    },
  };
  return conn;
}

/** Sends one CONNECT and returns the CONNACK code (closing the socket afterwards). */
export async function connackFor(port: number, fields: ConnectFields, localAddress?: string): Promise<number | 'closed'> {
  const conn = await rawConnect(port, localAddress);
  conn.send(connectPacket(fields));
  try {
    return await conn.connack();
  } finally {
    conn.socket.destroy();
  }
}

export function subscribePacket(topic: string, qos: 0 | 1, messageId = 1): Buffer {
  const id = Buffer.alloc(2);
  id.writeUInt16BE(messageId);
  return packet(0x82, Buffer.concat([id, str(topic), Buffer.from([qos])]));
}

export function pubackPacket(messageId: number): Buffer {
  const id = Buffer.alloc(2);
  id.writeUInt16BE(messageId);
  return packet(0x40, id);
}

/** One packet read back: its type (the high nibble), flags (the low nibble) and body. */
export interface RawPacket {
  type: number;
  flags: number;
  body: Buffer;
}

/** Splits what a broker sent into whole packets (an incomplete last one is left out). */
export function splitPackets(bytes: Buffer): RawPacket[] {
  const out: RawPacket[] = [];
  let i = 0;
  while (i + 2 <= bytes.length) {
    let length = 0;
    let multiplier = 1;
    let j = i + 1;
    for (;;) {
      if (j >= bytes.length) return out;
      const b = bytes[j++] as number;
      length += (b & 0x7f) * multiplier;
      multiplier *= 128;
      if ((b & 0x80) === 0) break;
    }
    if (j + length > bytes.length) return out;
    out.push({ type: (bytes[i] as number) >> 4, flags: (bytes[i] as number) & 0x0f, body: bytes.subarray(j, j + length) });
    i = j + length;
  }
  return out;
}

/** A PUBLISH read back: topic, QoS, DUP, packet identifier (QoS > 0) and payload. */
export function readPublish(p: RawPacket): { topic: string; qos: number; dup: boolean; messageId: number | null; payload: Buffer } {
  const topicLength = p.body.readUInt16BE(0);
  const topic = p.body.subarray(2, 2 + topicLength).toString('utf8');
  const qos = (p.flags >> 1) & 3;
  const messageId = qos > 0 ? p.body.readUInt16BE(2 + topicLength) : null;
  return { topic, qos, dup: (p.flags & 8) !== 0, messageId, payload: p.body.subarray(2 + topicLength + (qos > 0 ? 2 : 0)) };
}
