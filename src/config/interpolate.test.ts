// Environment interpolation in configuration values: ${NAME} and ${NAME:-default}.
import { interpolate } from './load';

const run = (value: unknown, env: Record<string, string>) => {
  const problems: string[] = [];
  return { value: interpolate(value, env, [], problems), problems };
};

test('replaces variables in nested strings and keeps other values', () => {
  expect(run({ targets: { a: { config: { url: '${BASE}/lbk', n: 3, list: ['${X:-x}', true] } } } }, { BASE: 'http://bo:8090' })).toEqual({
    value: { targets: { a: { config: { url: 'http://bo:8090/lbk', n: 3, list: ['x', true] } } } },
    problems: [],
  });
});

test('a default applies when the variable is unset or empty', () => {
  expect(run('${A:-http://127.0.0.1:8090}', { A: '' }).value).toBe('http://127.0.0.1:8090');
});

test('an unset variable without default is a problem named by path, never by value', () => {
  expect(run({ targets: { a: { config: { token: 'Bearer ${TOKEN}' } } } }, {}).problems).toEqual(['targets.a.config.token: environment variable TOKEN is not set']);
});
