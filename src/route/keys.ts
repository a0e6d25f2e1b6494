// Normalises the keys routes compare: AGS/ARS (tenant) and Leistungsschlüssel.

/** The AGS of an AGS (8 digits) or ARS (12 digits: Land, RB, Kreis, Verband, Gemeinde). */
export function toAgs(code: string): string | undefined {
  if (/^\d{8}$/.test(code)) return code;
  if (/^\d{12}$/.test(code)) return code.slice(0, 5) + code.slice(9, 12);
  return undefined;
}

const LEIKA_URN = 'urn:de:fim:leika:leistung:';

/** The bare 14-digit Leistungsschlüssel of a key or its URN. */
export function toLeistung(code: string): string {
  const trimmed = code.trim();
  return trimmed.startsWith(LEIKA_URN) ? trimmed.slice(LEIKA_URN.length) : trimmed;
}

/** The routing fact that carries an intelliForm custom parameter (e.g. `parameter.for-routing-target`). */
export const customParameterFact = (key: string): string => `parameter.${key}`;
