import { parseClientId } from '@latchkey/device-sdk/protocol';
import type { BrokerPersistence, StoredWill } from '../aedes-internals.ts';
import type { Presence } from './presence.ts';
import { LK_KEYS } from './redis-keys.ts';
import type { ScriptedRedis } from './scripts.ts';

/** How long a surviving node's claim on a dead node's will lasts (it publishes, then deletes the will). */
const CLAIM_MS = 60_000;

export interface WillReplayDeps {
  /** the store instance in use now */
  store: () => BrokerPersistence;
  presence: Presence;
  db: ScriptedRedis;
  aedesId: string;
  /** the client has a session on this node */
  isLocal: (clientId: string) => boolean;
  /** the principal is deleted or blocked (the registry says so) */
  revoked: (principal: string) => Promise<boolean>;
  /** publishes as the broker (no ACL hook: the will topic was checked at CONNECT) */
  publish: (will: { topic: string; payload: Buffer; qos: 0 | 1; retain: boolean }) => Promise<void>;
  log: { info(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

/**
 * Publishes the wills of a dead node's sessions, once, from one surviving node, and never a stale
 * one (docs/operations.md §Scaling out). A node is dead when its liveness key has expired (3 s
 * after it stopped renewing it). For each of its wills:
 *
 * - the device is back (on this node or any live one): the will is stale, deleted unpublished;
 * - the principal was deleted or blocked meanwhile: deleted unpublished (a revoked principal gets
 *   no last message out, as when the broker ends a session itself);
 * - otherwise the first node to claim it (`SET NX`) publishes it, then deletes it.
 *
 * aedes's own replay is off (cluster-store.ts): it published stale wills, and with a refusing ACL
 * its unhandled rejection ended every surviving node. Scans run only when a dead node is known,
 * one at a time; nothing here can throw into aedes.
 *
 * @example
 * ```ts
 * const replay = new WillReplay({ store: () => store.current, presence, db, aedesId, isLocal, revoked, publish, log });
 * replay.scan(); // what ClusterStore's streamWill calls
 * ```
 */
export class WillReplay {
  readonly #d: WillReplayDeps;
  #running: Promise<void> | null = null;
  #stopped = false;

  constructor(deps: WillReplayDeps) {
    this.#d = deps;
  }

  /** Starts a scan unless one is running (or the node stops); resolves when it is done (errors are logged, never thrown). */
  scan(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#running ??= this.#run()
      .catch((err: unknown) => this.#d.log.error({ err }, 'replaying the wills of a dead node failed'))
      .finally(() => {
        this.#running = null;
      });
    return this.#running;
  }

  /**
   * The node stops: no scan starts, and one running sends nothing more once its Redis call in
   * flight returns (its connections are about to close). Resolves once it has ended.
   */
  stop(): Promise<void> {
    this.#stopped = true;
    return this.#running ?? Promise.resolve();
  }

  async #run(): Promise<void> {
    const { presence, store } = this.#d;
    const dead = new Set((await presence.deadNodes()).filter((id) => id !== this.#d.aedesId));
    if (dead.size === 0 || this.#stopped) return;
    const left = new Map<string, number>([...dead].map((id) => [id, 0]));
    const counts = { published: 0, stale: 0, revoked: 0 };
    for await (const will of store().streamWill({})) {
      if (this.#stopped) return;
      if (!dead.has(will.brokerId)) continue;
      const outcome = await this.#handle(will);
      if (outcome === 'claimed_elsewhere') left.set(will.brokerId, (left.get(will.brokerId) ?? 0) + 1);
      else counts[outcome]++;
    }
    if (this.#stopped) return;
    for (const [id, n] of left) if (n === 0) await presence.forgetNode(id);
    if (counts.published + counts.stale + counts.revoked > 0) this.#d.log.info({ deadNodes: [...dead], ...counts }, 'wills of a dead node handled');
  }

  async #handle(will: StoredWill): Promise<'published' | 'stale' | 'revoked' | 'claimed_elsewhere'> {
    const { db, presence, store } = this.#d;
    const key = { id: will.clientId, brokerId: will.brokerId };
    if (this.#d.isLocal(will.clientId) || (await presence.isOnline(will.clientId))) {
      await store().delWill(key);
      return 'stale';
    }
    const identity = parseClientId(will.clientId);
    if (identity === null || (await this.#d.revoked(identity.principal))) {
      await store().delWill(key);
      return 'revoked';
    }
    const claimed = await db.set(LK_KEYS.willClaim(will.brokerId, will.clientId), this.#d.aedesId, 'PX', CLAIM_MS, 'NX');
    if (claimed !== 'OK') return 'claimed_elsewhere';
    // protocol.md §Topics: the retain flag of a device's publish is ignored (a will is one)
    const qos = will.qos === 0 ? 0 : 1;
    await this.#d.publish({ topic: will.topic, payload: Buffer.from(will.payload), qos, retain: identity.kind === 'service' && will.retain });
    await store().delWill(key);
    return 'published';
  }
}
