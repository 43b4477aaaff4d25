/**
 * How the provisioning API reaches devices over MQTT (commands, config). The broker's
 * composition root hands an implementation in (the broker implements it in-process);
 * provisioning never imports the broker.
 */
export interface DeviceMessagingPort {
  /** True while the device has a live authenticated MQTT session (on any broker node of a cluster). */
  isOnline(deviceId: string): Promise<boolean>;
  /**
   * Which of these devices have a live session: the device resource's `status.connected` comes from
   * here when a broker is attached (docs/api.md), so every node of a cluster reads the same.
   */
  onlineAmong(deviceIds: readonly string[]): Promise<ReadonlySet<string>>;
  /** Publish as the backend (bypasses device ACLs). Resolves once the broker accepted it. */
  publish(topic: string, payload: Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void>;
  /** Receive messages published by clients on topics matching `filter`; returns an unsubscribe function. */
  subscribe(filter: string, handler: (topic: string, payload: Buffer) => void): () => void;
  /**
   * protocol.md §Cloud IoT Core commands: the bytes on `/devices/{id}/commands[/{subfolder}]` of the
   * device's Cloud IoT Core session; `delivered` once PUBACKed, `offline` when not subscribed, `timeout`.
   * Absent when compatibility mode is off.
   */
  sendGcpCommand?(deviceId: string, subfolder: string | undefined, payload: Buffer, timeoutMs: number): Promise<'delivered' | 'offline' | 'timeout'>;
}
