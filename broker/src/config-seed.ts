import { configMessage, deviceTopics } from '@latchkey/device-sdk/protocol';
import type { Aedes } from 'aedes';
import type { BrokerRegistryPort } from './registry-port.ts';

/** Configs read per registry query. */
const PAGE = 1000;

/**
 * Restart durability of device config (docs/operations.md §What survives a restart): the retained
 * `devices/{id}/config` messages live in the broker's persistence, which is memory in the embedded
 * default, while the configs themselves are in the registry. At start, before any listener opens,
 * every device's current config is published again, retained, exactly as the HTTP API publishes it
 * (`configMessage`), so a device that subscribes after a restart gets the latest version. Resolves
 * the number of configs published.
 *
 * @example
 * ```ts
 * await aedes.listen();
 * await seedRetainedConfig(aedes, registry); // then open the listeners
 * ```
 */
export async function seedRetainedConfig(aedes: Aedes, registry: Pick<BrokerRegistryPort, 'allConfigs'>): Promise<number> {
  let after: string | null = null;
  let published = 0;
  for (;;) {
    const page = await registry.allConfigs(after, PAGE);
    for (const c of page) {
      await new Promise<void>((resolve, reject) => {
        aedes.publish(
          { cmd: 'publish', topic: deviceTopics(c.deviceId).config, payload: Buffer.from(configMessage(c.version, c.config)), qos: 1, retain: true, dup: false },
          (err) => (err ? reject(err) : resolve()),
        );
      });
      published++;
    }
    if (page.length < PAGE) return published;
    after = page[page.length - 1]?.deviceId ?? null;
  }
}
