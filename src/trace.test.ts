import { childSpan, formatTraceparent, parseTraceparent } from './trace';

const header = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

test('parses and formats a W3C traceparent', () => {
  expect(parseTraceparent(header)).toEqual({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', flags: '01' });
  expect(formatTraceparent(parseTraceparent(header)!)).toBe(header);
});

test('invalid or all-zero headers are ignored', () => {
  for (const bad of [undefined, '', 'garbage', '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`]) {
    expect(parseTraceparent(bad)).toBeUndefined();
  }
});

test('a child span keeps the trace and flags, with a new span id; without a parent a new trace starts', () => {
  const child = childSpan(parseTraceparent(header));
  expect(child).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', flags: '01' });
  expect(child.spanId).toMatch(/^[0-9a-f]{16}$/);
  expect(child.spanId).not.toBe('00f067aa0ba902b7');
  expect(childSpan(undefined).traceId).toMatch(/^[0-9a-f]{32}$/);
});

test('ids stay unique and well-formed across refills of the random pool', () => {
  const spans = Array.from({ length: 1000 }, () => childSpan(undefined));
  expect(new Set(spans.map((s) => s.traceId)).size).toBe(1000);
  expect(new Set(spans.map((s) => s.spanId)).size).toBe(1000);
  for (const span of spans) expect(parseTraceparent(formatTraceparent(span))).toEqual(span);
});
