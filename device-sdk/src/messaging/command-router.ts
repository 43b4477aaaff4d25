/**
 * protocol.md §Topics, commands: `devices/{id}/commands/{name}` carries `{"id","params"}`; the device
 * answers on `devices/{id}/replies/{id}` with `{"ok":true,"result"}` or `{"ok":false,"error"}`.
 */

/**
 * Runs one command; its return value (JSON-serializable) becomes the reply's `result`. `P` is the
 * shape you expect `params` to have: it arrives from the network, so validate it before trusting it.
 */
export type CommandHandler<P = unknown> = (params: P, ctx: { id: string; name: string }) => unknown;

/**
 * Throw this from a command handler to send `message` as the reply's `error`. Any other error is
 * replied as `"command failed"`, so internal details never leave the device.
 *
 * @example
 * ```ts
 * await client.onCommand('unlock', () => { if (jammed) throw new CommandError('bolt jammed'); return { unlocked: true }; });
 * ```
 */
export class CommandError extends Error {
  override readonly name = 'CommandError';
}

/** A topic level: non-empty, no `/ + #` or NUL [MQTT-4.7.1], bounded. */
const TOPIC_LEVEL = /^[^/+#\u0000]{1,256}$/;
/** Replies remembered for redelivered commands (QoS 1 may deliver twice). */
const REMEMBERED_REPLIES = 256;
const GENERIC_FAILURE = 'command failed';

/** Turns a reply into the bytes published for command `name` (e.g. a signed message). */
export type Seal = (name: string, commandId: string, reply: Buffer) => Promise<Buffer>;

export class CommandRouter {
  readonly #handlers = new Map<string, CommandHandler>();
  /** command id → its reply (settles when the handler finished) */
  readonly #replies = new Map<string, Promise<Buffer>>();
  readonly #send: (commandId: string, reply: Buffer) => Promise<void>;
  readonly #seal: Seal;

  /**
   * `send` publishes a reply; `seal` turns a reply's JSON into the bytes to publish (signs it, for a
   * command registered with `signed`). Sealed once: a redelivered command's reply is re-sent as is.
   */
  constructor(send: (commandId: string, reply: Buffer) => Promise<void>, seal: Seal = async (_name, _id, reply) => reply) {
    this.#send = send;
    this.#seal = seal;
  }

  register(name: string, handler: CommandHandler): void {
    if (typeof name !== 'string' || !TOPIC_LEVEL.test(name)) throw new TypeError('command name must be one topic level without + or #');
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    if (this.#handlers.has(name)) throw new TypeError(`a handler for command ${name} is already registered`);
    this.#handlers.set(name, handler);
  }

  unregister(name: string): void {
    this.#handlers.delete(name);
  }

  /** Handles one delivery of command `name`; errors go to `report`, never up. */
  async dispatch(name: string, payload: Buffer, report: (err: unknown) => void): Promise<void> {
    const command = parseCommand(payload);
    const handler = this.#handlers.get(name);
    if (command === null || handler === undefined) return; // no id to reply to: nothing can be answered
    let reply = this.#replies.get(command.id);
    if (reply === undefined) {
      reply = this.#run(handler, name, command, report);
      this.#remember(command.id, reply);
    }
    try {
      await this.#send(command.id, await reply);
    } catch (err) {
      report(err);
    }
  }

  async #run(handler: CommandHandler, name: string, c: { id: string; params: unknown }, report: (e: unknown) => void): Promise<Buffer> {
    let json: string;
    try {
      const result = await handler(c.params, { id: c.id, name });
      json = JSON.stringify({ ok: true, result: result ?? null });
    } catch (err) {
      if (!(err instanceof CommandError)) report(err);
      const error = err instanceof CommandError ? err.message : GENERIC_FAILURE;
      json = JSON.stringify({ ok: false, error });
    }
    return this.#seal(name, c.id, Buffer.from(json, 'utf8'));
  }

  #remember(id: string, reply: Promise<Buffer>): void {
    this.#replies.set(id, reply);
    if (this.#replies.size > REMEMBERED_REPLIES) {
      const oldest = this.#replies.keys().next().value;
      if (oldest !== undefined) this.#replies.delete(oldest);
    }
  }
}

function parseCommand(payload: Buffer): { id: string; params: unknown } | null {
  let msg: unknown;
  try {
    msg = JSON.parse(payload.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return null;
  const { id, params } = msg as { id?: unknown; params?: unknown };
  if (typeof id !== 'string' || !TOPIC_LEVEL.test(id)) return null;
  return { id, params: params ?? {} };
}
