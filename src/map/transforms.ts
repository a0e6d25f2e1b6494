// Value transforms a mapping field can apply, in order: trim, upper, lower, date, lookup, default, number, boolean.
import { DateTime } from 'luxon';
import { z } from 'zod';

export const transformSchema = z.union([
  z.enum(['trim', 'upper', 'lower', 'number', 'boolean']),
  z.strictObject({
    /** Reformat an xs:date / xs:dateTime (ISO 8601) with a Luxon format, optionally in a time zone. */
    date: z.strictObject({ format: z.string().min(1), zone: z.string().optional() }),
  }),
  z.strictObject({
    /** Replace a code by its entry in the mapping's `codeLists`; `fallback`: keep the code, fail, or a constant. */
    lookup: z.union([z.string(), z.strictObject({ list: z.string(), fallback: z.union([z.literal('keep'), z.literal('error'), z.string()]).default('keep') })]),
  }),
  z.strictObject({ default: z.union([z.string(), z.number(), z.boolean()]) }),
]);

export type TransformSpec = z.output<typeof transformSchema>;
export type Scalar = string | number | boolean | undefined;
export type Transform = (value: Scalar) => Scalar;

/** Thrown when a value cannot be transformed; the mapping turns it into `mapping-failed`. */
export class TransformError extends Error {}

const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const XS_DATE = /^-?\d{4,}-\d{2}-\d{2}$/;

const isEmpty = (value: Scalar) => value === undefined || value === '';

/** Builds the transform function; `codeLists` are the mapping's lists. Throws for unknown lists or zones. */
export function compileTransform(spec: TransformSpec, codeLists: Record<string, Record<string, string>>): Transform {
  if (typeof spec === 'string') {
    switch (spec) {
      case 'trim':
        return (v) => (typeof v === 'string' ? v.replace(/\s+/g, ' ').trim() : v);
      case 'upper':
        return (v) => (typeof v === 'string' ? v.toUpperCase() : v);
      case 'lower':
        return (v) => (typeof v === 'string' ? v.toLowerCase() : v);
      case 'number':
        return (v) => {
          if (isEmpty(v) || typeof v === 'number') return v;
          const text = String(v).trim();
          // Number('  ') is 0: whitespace only is an empty value, never the number 0.
          if (text === '') return '';
          // xs:decimal / xs:double notation only: no hex (0x10), no Infinity.
          if (!DECIMAL.test(text)) throw new TransformError(`value is not a number`);
          const n = Number(text);
          return n;
        };
      case 'boolean':
        return (v) => {
          if (isEmpty(v) || typeof v === 'boolean') return v;
          const text = String(v).trim();
          if (text === 'true' || text === '1') return true;
          if (text === 'false' || text === '0') return false;
          throw new TransformError('value is not an xs:boolean');
        };
    }
  }
  if ('date' in spec) {
    const { format, zone } = spec.date;
    if (zone && !DateTime.local().setZone(zone).isValid) throw new Error(`unknown time zone "${zone}"`);
    return (v) => {
      if (isEmpty(v)) return v;
      const text = String(v).trim();
      // An xs:date is a calendar day, not an instant: never shift it into another zone. A date-time without
      // offset is read in the target zone (or UTC), never in the time zone this process happens to run in.
      if (XS_DATE.test(text)) {
        const day = DateTime.fromISO(text, { zone: 'UTC' });
        if (!day.isValid) throw new TransformError('value is not an ISO 8601 date');
        return day.toFormat(format);
      }
      let parsed = DateTime.fromISO(text, { setZone: true, zone: zone ?? 'UTC' });
      if (!parsed.isValid) throw new TransformError('value is not an ISO 8601 date or date-time');
      if (zone) parsed = parsed.setZone(zone);
      return parsed.toFormat(format);
    };
  }
  if ('lookup' in spec) {
    const { list, fallback } = typeof spec.lookup === 'string' ? { list: spec.lookup, fallback: 'keep' } : spec.lookup;
    const table = codeLists[list];
    if (!table) throw new Error(`unknown code list "${list}"`);
    return (v) => {
      if (isEmpty(v)) return v;
      const hit = table[String(v)];
      if (hit !== undefined) return hit;
      if (fallback === 'keep') return v;
      if (fallback === 'error') throw new TransformError(`code is not in code list "${list}"`);
      return fallback;
    };
  }
  const fallbackValue = spec.default;
  return (v) => (isEmpty(v) ? fallbackValue : v);
}
