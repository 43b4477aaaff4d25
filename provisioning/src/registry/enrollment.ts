import { timingSafeEqual } from 'node:crypto';
import { idMatchesPattern } from '../enrollment/id-pattern.ts';
import type { RegistryContext } from './context.ts';
import { insertDevice } from './devices.ts';
import { RegistryError } from './errors.ts';
import { all, get, json, run, same, sql, type Plan } from './plan.ts';
import type { DeviceRecord, EnrollmentTokenRecord, JsonObject, NewDevice, NewEnrollmentToken, Page } from './types.ts';

interface TokenRow {
  id: string;
  secret_hash: Buffer;
  uses_total: number;
  uses_left: number;
  expires_at: number;
  id_pattern: string | null;
  metadata: string;
  created_at: number;
}

const COLUMNS = 'id, secret_hash, uses_total, uses_left, expires_at, id_pattern, metadata, created_at';
const Q = {
  insert: sql`INSERT INTO enrollment_tokens (id, secret_hash, uses_total, uses_left, expires_at, id_pattern, metadata, created_at)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  page: sql`SELECT ${same(COLUMNS)} FROM enrollment_tokens WHERE (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?`,
  one: sql`SELECT ${same(COLUMNS)} FROM enrollment_tokens WHERE id = ?`,
  delete: sql`DELETE FROM enrollment_tokens WHERE id = ?`,
  use: sql`UPDATE enrollment_tokens SET uses_left = uses_left - 1 WHERE id = ? AND uses_left > 0 AND expires_at > ?`,
};

function toRecord(r: TokenRow): EnrollmentTokenRecord {
  return {
    tokenId: r.id,
    usesTotal: r.uses_total,
    usesLeft: r.uses_left,
    expiresAt: r.expires_at,
    idPattern: r.id_pattern,
    metadata: json<JsonObject>(r.metadata),
    createdAt: r.created_at,
  };
}

/** Where a page of tokens starts: just after this token in creation order. */
export interface TokenPageKey {
  createdAt: number;
  tokenId: string;
}

/**
 * A page's `next` key, `<createdAt>.<tokenId>`, read back (the API's cursor and the console's
 * page link carry it); null when it is not one.
 */
export function parseTokenPageKey(key: string): TokenPageKey | null {
  const m = /^(\d{1,16})\.([A-Za-z0-9_-]{12})$/.exec(key);
  return m === null ? null : { createdAt: Number(m[1]), tokenId: m[2]! };
}

/**
 * The usable token for this id and secret hash (constant-time comparison). Unknown, wrong secret,
 * expired and used up are all `enrollment_token_invalid`.
 */
function* usableToken(tokenId: string, secretHash: Uint8Array, now: number): Plan<TokenRow> {
  const row = yield* get<TokenRow>(Q.one, tokenId);
  const valid =
    row !== undefined &&
    secretHash.byteLength === row.secret_hash.byteLength &&
    timingSafeEqual(row.secret_hash, secretHash) &&
    row.uses_left > 0 &&
    row.expires_at > now;
  if (!valid) throw new RegistryError('enrollment_token_invalid', 'enrollment token is not valid');
  return row;
}

/**
 * Enrollment tokens (api.md §Zero-touch enrollment). Only the SHA-256 of a token's secret
 * is stored; redeeming one use is atomic with the device registration, and a refused
 * enrollment consumes nothing.
 */
export class EnrollmentStore {
  readonly #ctx: RegistryContext;

  constructor(ctx: RegistryContext) {
    this.#ctx = ctx;
  }

  async create(input: NewEnrollmentToken, actor: string): Promise<EnrollmentTokenRecord> {
    if (input.secretHash.byteLength !== 32) throw new TypeError('secretHash must be a SHA-256 digest');
    if (!Number.isSafeInteger(input.uses) || input.uses < 1) throw new TypeError('uses must be a positive integer');
    return this.#ctx.write(function* (tx) {
      const createdAt = tx.now();
      yield* run(Q.insert, input.tokenId, input.secretHash, input.uses, input.uses, input.expiresAt, input.idPattern, JSON.stringify(input.metadata), createdAt);
      yield* tx.audit({
        actor,
        action: 'enrollment_token.create',
        target: input.tokenId,
        detail: { uses: input.uses, expiresAt: input.expiresAt, idPattern: input.idPattern },
      });
      return {
        tokenId: input.tokenId,
        usesTotal: input.uses,
        usesLeft: input.uses,
        expiresAt: input.expiresAt,
        idPattern: input.idPattern,
        metadata: input.metadata,
        createdAt,
      };
    });
  }

  /**
   * Tokens in creation order, `limit` at a time. `after` is the previous page's `next`: the key
   * `<createdAt>.<tokenId>` of its last token (keyset paging, like devices by id).
   */
  async list(opts: { limit: number; after?: TokenPageKey | null }): Promise<Page<EnrollmentTokenRecord>> {
    if (!Number.isSafeInteger(opts.limit) || opts.limit < 1) throw new TypeError('limit must be a positive integer');
    const after = opts.after ?? { createdAt: -1, tokenId: '' };
    const rows = await this.#ctx.read(() => all<TokenRow>(Q.page, after.createdAt, after.tokenId, opts.limit + 1));
    const items = rows.slice(0, opts.limit).map(toRecord);
    const last = items.at(-1);
    return { items, next: rows.length > opts.limit && last !== undefined ? `${last.createdAt}.${last.tokenId}` : null };
  }

  /** Rejects with `enrollment_token_not_found`. */
  async delete(tokenId: string, actor: string): Promise<void> {
    await this.#ctx.write(function* (tx) {
      if ((yield* run(Q.delete, tokenId)) === 0) throw new RegistryError('enrollment_token_not_found', 'no such enrollment token');
      yield* tx.audit({ actor, action: 'enrollment_token.delete', target: tokenId });
    });
  }

  /** The usable token for this id and secret hash, without consuming it (see `usableToken`). */
  async check(tokenId: string, secretHash: Uint8Array): Promise<EnrollmentTokenRecord> {
    const now = this.#ctx.clock();
    return toRecord(await this.#ctx.read(() => usableToken(tokenId, secretHash, now)));
  }

  /**
   * Registers `device` and consumes one use of the token, in one transaction. Rejects with
   * `enrollment_token_invalid`, `device_id_not_allowed`, `device_exists`, `key_in_use`;
   * on any of them nothing is stored and no use is consumed.
   */
  enroll(tokenId: string, secretHash: Uint8Array, device: NewDevice): Promise<DeviceRecord> {
    return this.#ctx.write(function* (tx) {
      const token = yield* usableToken(tokenId, secretHash, tx.now());
      if (token.id_pattern !== null && !idMatchesPattern(token.id_pattern, device.id)) {
        throw new RegistryError('device_id_not_allowed', 'device id does not match the enrollment token pattern');
      }
      const metadata = { ...json<JsonObject>(token.metadata), ...(device.metadata ?? {}) };
      const record = yield* insertDevice(tx, { ...device, metadata });
      if ((yield* run(Q.use, tokenId, tx.now())) !== 1) throw new RegistryError('enrollment_token_invalid', 'enrollment token is not valid');
      yield* tx.audit({
        actor: `enrollment:${tokenId}`,
        action: 'device.enroll',
        target: device.id,
        detail: { tokenId, kid: record.credentials[0]?.kid },
      });
      return record;
    });
  }
}
