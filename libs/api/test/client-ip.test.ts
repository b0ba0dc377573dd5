import { describe, expect, it } from 'vitest';
import {
  addressBucket,
  CLIENT_IP_HEADER,
  clientIp,
  parseTrustedProxies,
  resolveClientIp,
  stampClientIp,
} from '../src/client-ip';

const none = parseTrustedProxies('');
const proxies = parseTrustedProxies(' 10.0.0.5, 172.16.0.0/12 ,fd00::/8');

describe('resolveClientIp', () => {
  it('with no trusted proxy is the socket peer: X-Forwarded-For is not read at all', () => {
    expect(resolveClientIp('203.0.113.9', '198.51.100.1', none)).toBe('203.0.113.9');
    expect(resolveClientIp('::ffff:203.0.113.9', undefined, none)).toBe('203.0.113.9');
    expect(resolveClientIp('127.0.0.1', '10.0.0.5, 1.2.3.4', none)).toBe('127.0.0.1');
    expect(resolveClientIp(undefined, '1.2.3.4', none)).toBeNull();
  });

  it('from a trusted proxy walks X-Forwarded-For from the right to the first address that is not a proxy', () => {
    expect(resolveClientIp('10.0.0.5', '198.51.100.7', proxies)).toBe('198.51.100.7');
    // the client wrote the left part; the proxies appended the right part
    expect(resolveClientIp('10.0.0.5', '6.6.6.6, 198.51.100.7, 172.20.1.1', proxies)).toBe('198.51.100.7');
    expect(resolveClientIp('::ffff:10.0.0.5', ['1.1.1.1', '203.0.113.4'], proxies)).toBe('203.0.113.4');
    expect(resolveClientIp('fd00::1', '2001:db8::7', proxies)).toBe('2001:db8::7');
  });

  it('from a proxy that is not trusted is that proxy', () => {
    expect(resolveClientIp('10.0.0.6', '198.51.100.7', proxies)).toBe('10.0.0.6');
  });

  it('stops at garbage, and a chain of proxies only is its leftmost', () => {
    expect(resolveClientIp('10.0.0.5', 'not-an-ip', proxies)).toBe('10.0.0.5');
    expect(resolveClientIp('10.0.0.5', '1.2.3.4, junk, 172.16.0.9', proxies)).toBe('172.16.0.9');
    expect(resolveClientIp('10.0.0.5', '172.16.0.8, 172.16.0.9', proxies)).toBe('172.16.0.8');
    expect(resolveClientIp('10.0.0.5', undefined, proxies)).toBe('10.0.0.5');
  });
});

describe('parseTrustedProxies', () => {
  it.each(['bogus', '10.0.0.0/33', '10.0.0.0/8/1', 'fd00::/129', '10.0.0.0/x', '10.0.0.0/'])(
    'refuses %j, naming the setting',
    (entry) => {
      expect(() => parseTrustedProxies(`10.0.0.1, ${entry}`)).toThrow(
        `AFT_TRUSTED_PROXIES: "${entry}" is not an IP address or a CIDR range`,
      );
    },
  );
});

describe('stamps', () => {
  it('replace what the client sent, and only this process can make one', () => {
    const req = {
      headers: { [CLIENT_IP_HEADER]: 'forged 1.2.3.4', 'x-forwarded-for': '1.2.3.4' } as Record<string, string>,
      socket: { remoteAddress: '::ffff:192.0.2.1' },
    };
    stampClientIp(req, none);
    expect(clientIp(new Headers(req.headers))).toBe('192.0.2.1');
    expect(clientIp(new Headers({ [CLIENT_IP_HEADER]: 'forged 1.2.3.4' }))).toBeNull();
    const token = req.headers[CLIENT_IP_HEADER]!.split(' ')[0]!;
    // the token with its last character changed (to another one: a token may end in x)
    const forged = `${token.slice(0, -1)}${token.endsWith('x') ? 'y' : 'x'}`;
    expect(clientIp(new Headers({ [CLIENT_IP_HEADER]: `${forged} 1.2.3.4` }))).toBeNull();
    expect(clientIp(new Headers())).toBeNull();
  });
});

describe('addressBucket', () => {
  it('is the IPv4 address, or the IPv6 /64', () => {
    expect(addressBucket('192.0.2.1')).toBe('192.0.2.1');
    expect(addressBucket('2001:db8:0:12::1')).toBe('2001:db8:0:12::/64');
    expect(addressBucket('2001:DB8:0:12:ffff:1:2:3'.toLowerCase())).toBe('2001:db8:0:12::/64');
    expect(addressBucket('::1')).toBe('0:0:0:0::/64');
    expect(addressBucket('2001:db8::')).toBe('2001:db8:0:0::/64');
    expect(addressBucket('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64');
  });
});
