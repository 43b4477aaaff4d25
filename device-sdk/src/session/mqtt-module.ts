/** mqtt.js's module namespace. */
export type Mqtt = typeof import('mqtt');

let mqttModule: Promise<Mqtt> | undefined;

/**
 * mqtt.js is loaded with the first session, not with the SDK: code that only mints tokens or
 * handles keys (`latchkey token`, backends) does not pay its load time (~0.1 s) and memory.
 */
export const loadMqtt = (): Promise<Mqtt> => (mqttModule ??= import('mqtt'));
