// Each value transform, directly (compileTransform) and inside a mapping, where a value that cannot be
// transformed becomes MappingError('mapping-failed') naming the field.
import { parseDom } from '../envelope/dom';
import { compileMapping, MappingError } from './mapping';
import { DateTime, IANAZone } from 'luxon';
import { compileTransform, HourlyOffsetZone, transformSchema, TransformError, type Scalar } from './transforms';

const CODE_LISTS = { gemeinden: { '09162000': 'Landeshauptstadt München', '09761000': 'Stadt Augsburg' } };

/** Applies one transform spec (as written in a mapping file) to `value`. */
const apply = (spec: unknown, value: Scalar) => compileTransform(transformSchema.parse(spec), CODE_LISTS)(value);

/** Runs a one-field JSON mapping over `<v>{text}</v>` and returns the field's value. */
function field(text: string, transforms: unknown[], extra: Record<string, unknown> = {}): unknown {
  const mapping = compileMapping({ name: 't', output: 'json', codeLists: CODE_LISTS, fields: { f: { xpath: '/v', transforms, ...extra } } }, 't.yaml');
  const xml = `<v>${text}</v>`;
  const body = mapping.run({ document: parseDom(xml), raw: Buffer.from(xml), facts: {} }).body.toString('utf8');
  return (JSON.parse(body) as { f?: unknown }).f;
}

function mappingFailure(text: string, transforms: unknown[]): MappingError {
  try {
    field(text, transforms);
  } catch (error) {
    expect(error).toBeInstanceOf(MappingError);
    return error as MappingError;
  }
  throw new Error('the mapping succeeded');
}

describe('trim', () => {
  it('collapses inner whitespace and strips the ends', () => {
    expect(apply('trim', '  Neubau \n\t eines   Hauses  ')).toBe('Neubau eines Hauses');
    expect(field('\n  a \n b  ', ['trim'])).toBe('a b');
  });

  it('leaves non-strings alone', () => {
    expect(apply('trim', 5)).toBe(5);
    expect(apply('trim', undefined)).toBeUndefined();
  });
});

describe('upper and lower', () => {
  it('change case, including umlauts', () => {
    expect(apply('upper', 'Straße müller')).toBe('STRASSE MÜLLER');
    expect(apply('lower', 'ÄRGER Im AMT')).toBe('ärger im amt');
  });

  it('apply in the order given', () => {
    expect(field(' bab:09162000 ', ['trim', 'upper'])).toBe('BAB:09162000');
    expect(field('AbC', ['upper', 'lower'])).toBe('abc');
  });
});

describe('number', () => {
  it('parses integers and decimals, with surrounding whitespace', () => {
    expect(apply('number', ' 508000 ')).toBe(508000);
    expect(apply('number', '3.25')).toBe(3.25);
    expect(apply('number', '-7')).toBe(-7);
    expect(field('3145000', ['number'])).toBe(3145000);
  });

  it('keeps empty values empty (so they are omitted)', () => {
    expect(apply('number', '')).toBe('');
    expect(apply('number', undefined)).toBeUndefined();
    expect(field('', ['number'])).toBeUndefined();
  });

  it('treats whitespace only as empty, never as 0', () => {
    expect(apply('number', ' \n ')).toBe('');
    expect(field('  ', ['number'])).toBeUndefined();
  });

  it('accepts decimal notation only: no hex, no Infinity', () => {
    expect(apply('number', '1e3')).toBe(1000);
    expect(apply('number', '+5')).toBe(5);
    expect(apply('number', '.5')).toBe(0.5);
    expect(() => apply('number', '0x10')).toThrow(TransformError);
    expect(() => apply('number', 'Infinity')).toThrow(TransformError);
    expect(() => apply('number', '1,5')).toThrow(TransformError);
    expect(field(' \n ', ['number'], { default: 'unbekannt' })).toBe('unbekannt');
  });

  it('throws TransformError for a non-number', () => {
    expect(() => apply('number', '1,5')).toThrow(TransformError);
    expect(() => apply('number', 'Infinity')).toThrow('value is not a number');
  });

  it('inside a mapping a non-number is mapping-failed naming the field', () => {
    const error = mappingFailure('zwölf', ['trim', 'number']);
    expect(error.code).toBe('mapping-failed');
    expect(error.detail).toBe('f: value is not a number');
  });
});

describe('boolean', () => {
  it('reads xs:boolean', () => {
    expect(apply('boolean', 'true')).toBe(true);
    expect(apply('boolean', ' 1 ')).toBe(true);
    expect(apply('boolean', 'false')).toBe(false);
    expect(apply('boolean', '0')).toBe(false);
    expect(field('false', ['boolean'])).toBe(false);
  });

  it('refuses anything else', () => {
    expect(() => apply('boolean', 'ja')).toThrow('value is not an xs:boolean');
    expect(() => apply('boolean', 'TRUE')).toThrow(TransformError);
    const error = mappingFailure('yes', ['boolean']);
    expect(error.code).toBe('mapping-failed');
    expect(error.detail).toBe('f: value is not an xs:boolean');
  });
});

describe('date', () => {
  it('reformats an xs:date', () => {
    expect(apply({ date: { format: 'dd.MM.yyyy' } }, '2026-11-18')).toBe('18.11.2026');
  });

  it('keeps the offset the value was sent with when no zone is given', () => {
    expect(apply({ date: { format: "yyyy-MM-dd'T'HH:mm:ssZZ" } }, '2026-11-20T09:14:03.512+01:00')).toBe('2026-11-20T09:14:03+01:00');
    expect(apply({ date: { format: 'HH:mm ZZ' } }, '2026-11-20T23:30:00-05:00')).toBe('23:30 -05:00');
  });

  it('converts into the zone, winter and summer time', () => {
    const berlin = { date: { format: "yyyy-MM-dd'T'HH:mm:ssZZ", zone: 'Europe/Berlin' } };
    expect(apply(berlin, '2026-11-20T08:14:03.512Z')).toBe('2026-11-20T09:14:03+01:00');
    expect(apply(berlin, '2026-07-01T10:00:00Z')).toBe('2026-07-01T12:00:00+02:00');
    // Across midnight the date changes too.
    expect(apply({ date: { format: 'dd.MM.yyyy', zone: 'Europe/Berlin' } }, '2026-12-31T23:30:00Z')).toBe('01.01.2027');
  });

  it('inside a mapping an invalid date is mapping-failed naming the field', () => {
    const error = mappingFailure('31.12.2026', [{ date: { format: 'dd.MM.yyyy' } }]);
    expect(error.code).toBe('mapping-failed');
    expect(error.detail).toBe('f: value is not an ISO 8601 date or date-time');
  });

  it('keeps empty values empty', () => {
    expect(field('', [{ date: { format: 'dd.MM.yyyy' } }])).toBeUndefined();
  });

  it('an unknown zone fails at compile time', () => {
    expect(() => compileTransform({ date: { format: 'yyyy', zone: 'Europe/Atlantis' } }, {})).toThrow('unknown time zone "Europe/Atlantis"');
  });

  it('an xs:date is a calendar day: a zone never moves it, whatever zone the process runs in', () => {
    const saved = process.env.TZ;
    try {
      for (const tz of ['Europe/Berlin', 'Pacific/Kiritimati', 'America/Los_Angeles']) {
        process.env.TZ = tz;
        expect(apply({ date: { format: 'dd.MM.yyyy', zone: 'America/New_York' } }, '2026-11-18')).toBe('18.11.2026');
        expect(apply({ date: { format: 'dd.MM.yyyy', zone: 'Asia/Tokyo' } }, '2026-11-18')).toBe('18.11.2026');
      }
    } finally {
      process.env.TZ = saved;
    }
  });

  it('a date-time without offset is read in the target zone, not in the process zone', () => {
    const saved = process.env.TZ;
    try {
      process.env.TZ = 'America/Los_Angeles';
      expect(apply({ date: { format: 'HH:mm ZZ', zone: 'Europe/Berlin' } }, '2026-11-20T09:14:03')).toBe('09:14 +01:00');
      expect(apply({ date: { format: 'HH:mm ZZ' } }, '2026-11-20T09:14:03')).toBe('09:14 +00:00');
    } finally {
      process.env.TZ = saved;
    }
  });
});

describe('date: offsets kept per hour (HourlyOffsetZone)', () => {
  // Zones with DST changes at half hours of UTC (Lord Howe, Chatham, Newfoundland), quarter-hour offsets
  // (Kathmandu), historic odd-second offsets (Amsterdam 1937: +00:19:32), and the ones of the M-A-N cities.
  const ZONES = ['Europe/Berlin', 'Australia/Lord_Howe', 'Pacific/Chatham', 'America/St_Johns', 'Asia/Kathmandu', 'Europe/Amsterdam', 'America/New_York'];

  test.each(ZONES)('%s: the same offset as Luxon\'s own zone at every instant sampled, across every change', (name) => {
    const exact = IANAZone.create(name);
    const cached = new HourlyOffsetZone(exact);
    const spans: Array<[string, string]> = [['1937-01-01', '1938-01-01'], ['2026-01-01', '2027-01-01']];
    let changes = 0;
    for (const [from, to] of spans) {
      let previous: number | undefined;
      // Every 36 minutes 19 seconds: unaligned with any hour, each hour visited once or twice, at moving minutes.
      for (let ts = Date.parse(from); ts < Date.parse(to); ts += 2_179_000) {
        const offset = exact.offset(ts);
        if (previous !== undefined && offset !== previous) changes += 1;
        previous = offset;
        if (cached.offset(ts) !== offset) throw new Error(`${name} at ${new Date(ts).toISOString()}: ${cached.offset(ts)} instead of ${offset}`);
      }
    }
    if (name !== 'Asia/Kathmandu') expect(changes).toBeGreaterThanOrEqual(2);
  });

  test('right at a change, to the millisecond (Berlin, 29 March and 25 October 2026)', () => {
    const cached = new HourlyOffsetZone(IANAZone.create('Europe/Berlin'));
    for (const change of ['2026-03-29T01:00:00Z', '2026-10-25T01:00:00Z']) {
      const at = Date.parse(change);
      expect([cached.offset(at - 1), cached.offset(at)]).toEqual([IANAZone.create('Europe/Berlin').offset(at - 1), IANAZone.create('Europe/Berlin').offset(at)]);
    }
    expect(cached.offset(Date.parse('2026-03-29T00:59:59.999Z'))).toBe(60);
    expect(cached.offset(Date.parse('2026-03-29T01:00:00.000Z'))).toBe(120);
  });

  test('formats like a DateTime in the plain IANA zone, offset names included', () => {
    const cached = new HourlyOffsetZone(IANAZone.create('Europe/Berlin'));
    for (const iso of ['2026-11-20T08:14:03.512Z', '2026-07-01T10:00:00Z', '2026-10-25T00:59:59Z', '2026-10-25T01:00:00Z']) {
      const format = "yyyy-MM-dd'T'HH:mm:ssZZ Z ZZZ ZZZZ";
      expect(DateTime.fromISO(iso).setZone(cached).toFormat(format)).toBe(DateTime.fromISO(iso).setZone('Europe/Berlin').toFormat(format));
    }
    expect(cached.equals(IANAZone.create('Europe/Berlin'))).toBe(true);
    expect(cached.equals(IANAZone.create('Europe/Paris'))).toBe(false);
  });

  test('many different days in a row: each formatted right (the kept texts start afresh), a bad one refused every time', () => {
    const transform = compileTransform(transformSchema.parse({ date: { format: 'dd.MM.yyyy' } }), {});
    for (let day = 0; day < 3000; day += 1) {
      const date = DateTime.fromISO('2020-01-01', { zone: 'UTC' }).plus({ days: day });
      expect(transform(date.toISODate()!)).toBe(date.toFormat('dd.MM.yyyy'));
    }
    expect(transform('2020-01-01')).toBe('01.01.2020');
    for (let i = 0; i < 2; i += 1) expect(() => transform('2020-02-30')).toThrow('value is not an ISO 8601 date');
    expect(transform('2020-02-29')).toBe('29.02.2020');
  });
});

describe('lookup', () => {
  it('replaces a code by its entry', () => {
    expect(apply({ lookup: 'gemeinden' }, '09761000')).toBe('Stadt Augsburg');
    expect(field('09162000', [{ lookup: { list: 'gemeinden', fallback: 'error' } }])).toBe('Landeshauptstadt München');
  });

  it('keeps an unknown code by default and with fallback keep', () => {
    expect(apply({ lookup: 'gemeinden' }, '09564000')).toBe('09564000');
    expect(apply({ lookup: { list: 'gemeinden' } }, '09564000')).toBe('09564000');
    expect(apply({ lookup: { list: 'gemeinden', fallback: 'keep' } }, '09564000')).toBe('09564000');
  });

  it('fails for an unknown code with fallback error', () => {
    expect(() => apply({ lookup: { list: 'gemeinden', fallback: 'error' } }, '09564000')).toThrow('code is not in code list "gemeinden"');
    const error = mappingFailure('09564000', [{ lookup: { list: 'gemeinden', fallback: 'error' } }]);
    expect(error.code).toBe('mapping-failed');
    expect(error.detail).toBe('f: code is not in code list "gemeinden"');
  });

  it('gives a constant for an unknown code with any other fallback', () => {
    expect(apply({ lookup: { list: 'gemeinden', fallback: 'unbekannt' } }, '09564000')).toBe('unbekannt');
    expect(apply({ lookup: { list: 'gemeinden', fallback: 'unbekannt' } }, '09162000')).toBe('Landeshauptstadt München');
  });

  it('keeps empty values empty, even with fallback error', () => {
    expect(apply({ lookup: { list: 'gemeinden', fallback: 'error' } }, '')).toBe('');
    expect(field('', [{ lookup: { list: 'gemeinden', fallback: 'error' } }])).toBeUndefined();
  });

  it('an unknown list fails at compile time', () => {
    expect(() => compileTransform({ lookup: 'kreise' }, CODE_LISTS)).toThrow('unknown code list "kreise"');
  });
});

describe('default', () => {
  it('fills empty values only', () => {
    expect(apply({ default: 'unbekannt' }, '')).toBe('unbekannt');
    expect(apply({ default: 0 }, undefined)).toBe(0);
    expect(apply({ default: 'unbekannt' }, 'da')).toBe('da');
  });

  it('as a transform and as the field option `default` (applied after all transforms)', () => {
    expect(field('', [{ default: 'keiner' }])).toBe('keiner');
    expect(field('  ', ['trim'], { default: false })).toBe(false);
    // The field default comes last: an empty number stays empty until then, and is not parsed as a number.
    expect(field('', ['number'], { default: 'n/a' })).toBe('n/a');
    expect(field('12', ['number'], { default: 'n/a' })).toBe(12);
  });
});

describe('schema', () => {
  it('refuses unknown transforms', () => {
    expect(transformSchema.safeParse('capitalize').success).toBe(false);
    expect(transformSchema.safeParse({ date: { format: 'yyyy', locale: 'de' } }).success).toBe(false);
  });

  it('a mapping with an unknown transform does not compile', () => {
    expect(() => compileMapping({ name: 't', output: 'json', fields: { f: { xpath: '/v', transforms: ['capitalize'] } } }, 't.yaml')).toThrow(/^t\.yaml:\n {2}fields\.f/);
  });
});
