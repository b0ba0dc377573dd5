import { describe, expect, it } from 'vitest';
import { safeNextPath } from '../src/lib/safe-next';

describe('safeNextPath', () => {
  it.each([
    '//evil.example',
    '//evil.example/runs',
    '/\\evil.example',
    '\\\\evil.example',
    '\\/evil.example',
    'https://evil.example',
    'http:evil.example',
    '/%5Cevil.example',
    '/%5cevil.example',
    '/%2F/evil.example',
    '%2F%2Fevil.example',
    '/\t/evil.example',
    '/\n/evil.example',
    '\t//evil.example',
    '/\r\n/evil.example',
    ' //evil.example',
    'javascript:alert(1)',
    'JavaScript:alert(1)//',
    'data:text/html,<script>alert(1)</script>',
    'evil.example',
    '',
    '/%E0%A4%A',
  ])('refuses %j', (next) => {
    expect(safeNextPath(next)).toBe('/');
  });

  it('refuses what is not a string, or too long to be one of our paths', () => {
    expect(safeNextPath(`/${'a'.repeat(3000)}`)).toBe('/');
    expect(safeNextPath(undefined)).toBe('/');
    expect(safeNextPath(['/runs'])).toBe('/');
    expect(safeNextPath(null, '/team')).toBe('/team');
  });

  it.each([
    ['/', '/'],
    ['/runs', '/runs'],
    ['/invite/abcDEF0123456789', '/invite/abcDEF0123456789'],
    ['/runs?project=p1&q=a%2F%2Fb#chart', '/runs?project=p1&q=a%2F%2Fb#chart'],
    ['/runs?next=//evil.example', '/runs?next=//evil.example'],
    ['/compare?ids=a,b', '/compare?ids=a,b'],
    ['/a/../team', '/team'],
  ])('keeps the path %j', (next, want) => {
    expect(safeNextPath(next)).toBe(want);
  });
});
