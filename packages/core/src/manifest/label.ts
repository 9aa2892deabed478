import { StrataError } from '../errors/index.js';

/** Full backup labels: YYYYMMDD-HHMMSSF (UTC). They sort in time order. */
export function fullLabel(at: Date): string {
  const iso = at.toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}F`;
}

export const LABEL_RE = /^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$/;

export function assertLabel(label: string): void {
  if (!LABEL_RE.test(label)) {
    throw new StrataError('InvalidArgument', `"${label}" is not a backup label`, {
      hint: 'labels look like 20261122-013000F; "strata info" lists them',
    });
  }
}
