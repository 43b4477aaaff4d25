/**
 * The provisioning HTTP API as the simulator uses it (docs/api.md), over `fetch` like any
 * customer backend: batch device creation, a service account, commands, enrollment tokens,
 * cleanup. Problems (RFC 9457) become a `SimulatorError` carrying the API's `code`.
 */

/** Codes of the simulator's own failures; API problems keep the API's `code` (errors.md §HTTP API). */
export type SimulatorErrorCode = 'network_error' | 'invalid_response' | 'http_error' | (string & {});

/**
 * A failure talking to the stack. `message` never contains a token or key.
 *
 * @example
 * ```ts
 * try { await api.sendCommand(id, 'lock', {}) } catch (e) { if (e instanceof SimulatorError && e.code === 'device_offline') ... }
 * ```
 */
export class SimulatorError extends Error {
  override readonly name = 'SimulatorError';
  readonly code: SimulatorErrorCode;
  readonly status: number | undefined;
  constructor(code: SimulatorErrorCode, message: string, options?: { status?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options?.status;
  }
}

export interface NewDevice {
  id: string;
  publicKey: string;
  metadata?: Record<string, unknown>;
}

export interface ServiceAcl {
  publish: string[];
  subscribe: string[];
}

/** A device's answer to a command (docs/api.md: `POST /v1/devices/{id}/commands` → 200). */
export interface CommandAnswer {
  id: string;
  ok: boolean;
  result?: unknown;
  error?: unknown;
}

/** api.md §Devices: at most this many devices per batch. */
export const MAX_BATCH = 10_000;

/**
 * An admin client of the provisioning API.
 *
 * @example
 * ```ts
 * const api = new ProvisioningApi({ baseUrl: 'http://127.0.0.1:8080', adminToken });
 * await api.createDevices([{ id: 'thermo-1', publicKey: pem }]);
 * const answer = await api.sendCommand('thermo-1', 'setSetpoint', { setpoint: 21 }, 5000);
 * ```
 */
export class ProvisioningApi {
  readonly baseUrl: URL;
  readonly #adminToken: string;
  readonly #timeoutMs: number;

  constructor(o: { baseUrl: string; adminToken: string; timeoutMs?: number }) {
    let url: URL;
    try {
      url = new URL(o.baseUrl);
    } catch {
      throw new TypeError('ProvisioningApi: baseUrl must be an absolute http(s) URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError('ProvisioningApi: baseUrl must be http(s)');
    if (typeof o.adminToken !== 'string' || o.adminToken.length === 0) throw new TypeError('ProvisioningApi: adminToken is required');
    this.baseUrl = url;
    this.#adminToken = o.adminToken;
    this.#timeoutMs = o.timeoutMs ?? 30_000;
  }

  /** `POST /v1/devices:batch` in chunks of {@link MAX_BATCH}; returns the created ids. */
  async createDevices(devices: readonly NewDevice[]): Promise<string[]> {
    const created: string[] = [];
    for (let i = 0; i < devices.length; i += MAX_BATCH) {
      const body = (await this.#request('POST', '/v1/devices:batch', { devices: devices.slice(i, i + MAX_BATCH) })) as { created?: unknown };
      if (!Array.isArray(body.created)) throw new SimulatorError('invalid_response', 'devices:batch answered without created ids');
      created.push(...body.created.map(String));
    }
    return created;
  }

  /** `POST /v1/services`. */
  async createService(name: string, publicKey: string, acl: ServiceAcl): Promise<void> {
    await this.#request('POST', '/v1/services', { name, publicKey, acl });
  }

  /** `POST /v1/enrollment-tokens` → the token secret. */
  async createEnrollmentToken(uses: number, ttlSeconds: number): Promise<string> {
    const body = (await this.#request('POST', '/v1/enrollment-tokens', { uses, ttlSeconds })) as { token?: unknown };
    if (typeof body.token !== 'string') throw new SimulatorError('invalid_response', 'enrollment-tokens answered without a token');
    return body.token;
  }

  /**
   * `POST /v1/devices/{id}/commands`: resolves with the device's answer; rejects with
   * `device_offline`, `command_timeout`, ... when the device did not answer.
   */
  async sendCommand(deviceId: string, name: string, params: unknown, timeoutMs: number): Promise<CommandAnswer> {
    const path = `/v1/devices/${encodeURIComponent(deviceId)}/commands`;
    const body = (await this.#request('POST', path, { name, params, timeoutMs }, timeoutMs + 5_000)) as Partial<CommandAnswer>;
    if (typeof body.ok !== 'boolean') throw new SimulatorError('invalid_response', 'commands answered without ok');
    return { id: String(body.id), ok: body.ok, result: body.result, error: body.error };
  }

  /**
   * `POST /v1/import/gcp` with a Cloud IoT Core export as the body (docs/migrating-from-cloud-iot-core.md);
   * resolves with how many devices were imported and how many were already there.
   */
  async importGcp(exported: unknown): Promise<{ imported: number; unchanged: number }> {
    const body = (await this.#request('POST', '/v1/import/gcp', exported, Math.max(this.#timeoutMs, 120_000))) as { imported?: unknown; unchanged?: unknown };
    if (typeof body.imported !== 'number' || typeof body.unchanged !== 'number') throw new SimulatorError('invalid_response', 'import answered without counts');
    return { imported: body.imported, unchanged: body.unchanged };
  }

  /**
   * `POST /v1/devices/{id}/commands` to a Cloud IoT Core device: `{subfolder, data}`; resolves once the
   * device has PUBACKed (`delivered`), rejects with `device_offline`, `command_timeout`, ….
   */
  async sendGcpCommand(deviceId: string, subfolder: string, data: unknown, timeoutMs: number): Promise<void> {
    const path = `/v1/devices/${encodeURIComponent(deviceId)}/commands`;
    const body = (await this.#request('POST', path, { subfolder, data, timeoutMs }, timeoutMs + 5_000)) as { delivered?: unknown };
    if (body.delivered !== true) throw new SimulatorError('invalid_response', 'commands answered without delivered');
  }

  /** `DELETE /v1/devices/{id}` (a device already gone counts as deleted). */
  async deleteDevice(id: string): Promise<void> {
    await this.#request('DELETE', `/v1/devices/${encodeURIComponent(id)}`, undefined, undefined, [404]);
  }

  /** `DELETE /v1/services/{name}` (a service already gone counts as deleted). */
  async deleteService(name: string): Promise<void> {
    await this.#request('DELETE', `/v1/services/${encodeURIComponent(name)}`, undefined, undefined, [404]);
  }

  async #request(method: string, path: string, body?: unknown, timeoutMs = this.#timeoutMs, tolerated: number[] = []): Promise<unknown> {
    const url = new URL(path, this.baseUrl);
    const headers: Record<string, string> = { accept: 'application/json', authorization: `Bearer ${this.#adminToken}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'error',
      });
    } catch (cause) {
      throw new SimulatorError('network_error', `${method} ${url.pathname}: no answer`, { cause });
    }
    let text: string;
    try {
      text = await res.text();
    } catch (cause) {
      throw new SimulatorError('network_error', `${method} ${url.pathname}: connection lost`, { cause, status: res.status });
    }
    const json = parse(text);
    if (res.ok || tolerated.includes(res.status)) return json ?? {};
    // errors.md §HTTP API: problem+json with a stable `code`; the detail never holds a secret.
    const p = (json ?? {}) as Record<string, unknown>;
    const code = typeof p['code'] === 'string' ? p['code'] : 'http_error';
    const detail = typeof p['detail'] === 'string' ? `: ${p['detail'].slice(0, 300)}` : '';
    throw new SimulatorError(code, `${method} ${url.pathname} → ${res.status}${detail}`, { status: res.status });
  }
}

function parse(text: string): unknown {
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
