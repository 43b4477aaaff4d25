/**
 * `@latchkey/broker` — the MQTT broker: token authentication, topic ACLs, session lifecycle,
 * hardening (issue 4; docs/protocol.md).
 */
export { createBroker } from './create-broker.ts';
export type { Broker, BrokerDeps, BrokerLog } from './create-broker.ts';
export { checkBrokerConfig, resolveBrokerConfig, DEFAULT_BROKER_CONFIG } from './config.ts';
export type { BrokerConfig, BrokerConfigInput, ConfigProblem } from './config.ts';
export type { BrokerAddresses } from './listeners/start-listeners.ts';
export type { DeviceMessaging } from './messaging.ts';
export type { BrokerRegistryPort, BrokerFeedHealth, PrincipalRecord, RegistryChange, AuthFailureRecord, SessionEvent, CredentialUse } from './registry-port.ts';
export { FEED_DOWN_LIMIT_MS } from './auth/authenticate.ts';
