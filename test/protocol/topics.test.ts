import { describe, expect, it } from 'vitest';
import { canPublish, canSubscribe, filterWithin, isValidTopicFilter, isValidTopicName, topicMatches, type TopicPrincipal } from '@latchkey/device-sdk/protocol';

const dev: TopicPrincipal = { kind: 'device', deviceId: 'thermo-1' };
const svc: TopicPrincipal = { kind: 'service', acl: { publish: ['devices/+/commands/#'], subscribe: ['devices/+/telemetry/#', 'devices/+/state'] } };

describe('protocol.md §Topics — devices', () => {
  it.each([
    ['devices/thermo-1/telemetry', true],
    ['devices/thermo-1/telemetry/temp', true],
    ['devices/thermo-1/telemetry/a/b/c', true],
    ['devices/thermo-1/state', true],
    ['devices/thermo-1/replies/cmd-42', true],
    ['devices/thermo-1/replies', false],
    ['devices/thermo-1/replies/a/b', false],
    ['devices/thermo-1/state/x', false],
    ['devices/thermo-1/commands/setMode', false],
    ['devices/thermo-1/config', false],
    ['devices/thermo-2/telemetry', false],
    ['devices/thermo-1/telemetry/+', false],
    ['devices/thermo-1/telemetry/#', false],
    ['devices/thermo-1/telemetry//x', false],
    ['devices/Thermo-1/telemetry', false],
    ['$SYS/broker/uptime', false],
    ['other/thermo-1/telemetry', false],
    ['', false],
  ])('publish %s → %s', (topic, allowed) => expect(canPublish(dev, topic)).toBe(allowed));

  it.each([
    ['devices/thermo-1/commands/#', true],
    ['devices/thermo-1/commands/+', true],
    ['devices/thermo-1/commands/setMode', true],
    ['devices/thermo-1/commands', true],
    ['devices/thermo-1/config', true],
    ['devices/thermo-1/#', false],
    ['devices/thermo-1/+', false],
    ['devices/thermo-1/+/setMode', false],
    ['devices/+/commands/#', false],
    ['devices/thermo-2/commands/#', false],
    ['#', false],
    ['+/thermo-1/commands/#', false],
    ['$SYS/#', false],
    ['devices/thermo-1/telemetry', false],
    ['devices/thermo-1/commands/#/x', false],
    ['devices/thermo-1/commands/a+', false],
  ])('subscribe %s → %s', (filter, allowed) => expect(canSubscribe(dev, filter)).toBe(allowed));
});

describe('protocol.md §Service accounts — ACL filters', () => {
  it.each([
    ['devices/+/telemetry/#', true],
    ['devices/thermo-1/telemetry', true],
    ['devices/+/telemetry/temp', true],
    ['devices/+/state', true],
    ['devices/#', false],
    ['#', false],
    ['devices/+/+', false],
    ['devices/+/commands/#', false],
    ['$SYS/#', false],
  ])('subscribe %s → %s', (filter, allowed) => expect(canSubscribe(svc, filter)).toBe(allowed));

  it.each([
    ['devices/thermo-1/commands/setMode', true],
    ['devices/thermo-1/telemetry', false],
    ['devices/thermo-1/config', false],
  ])('publish %s → %s', (topic, allowed) => expect(canPublish(svc, topic)).toBe(allowed));
});

describe('MQTT topic syntax [MQTT-4.7]', () => {
  it('validates names and filters', () => {
    expect(isValidTopicName('a/b')).toBe(true);
    expect(isValidTopicName('a/+')).toBe(false);
    expect(isValidTopicName('a\u0000b')).toBe(false);
    expect(isValidTopicFilter('a/+/#')).toBe(true);
    expect(isValidTopicFilter('a/#/b')).toBe(false);
    expect(isValidTopicFilter('a/b#')).toBe(false);
    expect(isValidTopicFilter(7)).toBe(false);
  });
  it('matches like a broker', () => {
    expect(topicMatches('a/+/c', 'a/b/c')).toBe(true);
    expect(topicMatches('a/#', 'a')).toBe(true);
    expect(topicMatches('a/+', 'a/b/c')).toBe(false);
    expect(topicMatches('#', '$SYS/x')).toBe(false);
    expect(topicMatches('+/x', '$SYS/x')).toBe(false);
  });
  it('decides filter containment', () => {
    expect(filterWithin('a/b/#', 'a/+/#')).toBe(true);
    expect(filterWithin('a/+/c', 'a/b/c')).toBe(false);
    expect(filterWithin('a', 'a/#')).toBe(true);
    expect(filterWithin('a/#', 'a/+')).toBe(false);
    expect(filterWithin('a/b', 'a/b/c')).toBe(false);
  });
});
