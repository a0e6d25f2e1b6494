// Value transforms a mapping field can apply, in order: trim, upper, lower, date, lookup, default, number, boolean.
import { DateTime, FixedOffsetZone, IANAZone, Zone, type ZoneOffsetFormat, type ZoneOffsetOptions } from 'luxon';
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

/** Results of `fn` by argument, at most MEMO_LIMIT of them (then it starts afresh); thrown errors are not kept. */
const MEMO_LIMIT = 1024;
function memoized(fn: (text: string) => string): (text: string) => string {
  const memo = new Map<string, string>();
  return (text) => {
    let result = memo.get(text);
    if (result === undefined) {
      result = fn(text);
      if (memo.size >= MEMO_LIMIT) memo.clear();
      memo.set(text, result);
    }
    return result;
  };
}

const HOUR_MS = 3_600_000;

/**
 * An IANA zone whose UTC offsets are looked up once per hour of time: Luxon asks `Intl` for the offset on
 * every conversion (two to three times each, the costliest part of the `date` transform at intake). The
 * offset of an hour is kept when it is the same at the hour's first and last millisecond — zones change
 * their offset months apart, never twice within one hour; an hour with a change is never kept.
 */
export class HourlyOffsetZone extends Zone {
  private readonly offsets = new Map<number, number>();

  constructor(private readonly zone: IANAZone) {
    super();
  }

  override get type(): string {
    return this.zone.type;
  }

  override get name(): string {
    return this.zone.name;
  }

  override get isUniversal(): boolean {
    return false;
  }

  override get isValid(): true {
    return true;
  }

  override offsetName(ts: number, options: ZoneOffsetOptions): string {
    return this.zone.offsetName(ts, options) ?? this.zone.name;
  }

  override formatOffset(ts: number, format: ZoneOffsetFormat): string {
    return FixedOffsetZone.instance(this.offset(ts)).formatOffset(ts, format);
  }

  override offset(ts: number): number {
    const hour = Math.floor(ts / HOUR_MS);
    const known = this.offsets.get(hour);
    if (known !== undefined) return known;
    const first = this.zone.offset(hour * HOUR_MS);
    if (first !== this.zone.offset(hour * HOUR_MS + HOUR_MS - 1)) return this.zone.offset(ts);
    if (this.offsets.size >= MEMO_LIMIT) this.offsets.clear();
    this.offsets.set(hour, first);
    return first;
  }

  override equals(other: Zone): boolean {
    return other.type === this.type && other.name === this.name;
  }
}

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
    const { format, zone: zoneName } = spec.date;
    const zone = zoneName === undefined ? undefined : IANAZone.create(zoneName);
    if (zone && !zone.isValid) throw new Error(`unknown time zone "${zoneName}"`);
    const target = zone && new HourlyOffsetZone(zone);
    // An xs:date is a calendar day, not an instant: never shift it into another zone. Few distinct days
    // come by, so their formatted text is kept.
    const day = memoized((text: string) => {
      const parsed = DateTime.fromISO(text, { zone: 'UTC' });
      if (!parsed.isValid) throw new TransformError('value is not an ISO 8601 date');
      return parsed.toFormat(format);
    });
    return (v) => {
      if (isEmpty(v)) return v;
      const text = String(v).trim();
      if (XS_DATE.test(text)) return day(text);
      // A date-time without offset is read in the target zone (or UTC), never in the time zone this process happens to run in.
      let parsed = DateTime.fromISO(text, { setZone: true, zone: target ?? 'UTC' });
      if (!parsed.isValid) throw new TransformError('value is not an ISO 8601 date or date-time');
      if (target) parsed = parsed.setZone(target);
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
