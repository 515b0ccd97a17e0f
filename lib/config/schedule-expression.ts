/**
 * Validation of EventBridge Scheduler schedule expressions (`cron(...)` and `rate(...)`), so a typo
 * fails at synth time with a message naming the field instead of at deploy time in CloudFormation.
 *
 * Format: https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html
 *   cron(minutes hours day-of-month month day-of-week year)
 *   rate(value unit)   unit: minute(s) | hour(s) | day(s)
 */

interface CronField {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  /** Symbolic names accepted in place of numbers (index 0 maps to `min`). */
  readonly names?: readonly string[];
  /** Extra special characters this field accepts beyond `, - * /`. */
  readonly allowQuestionMark?: boolean;
  readonly allowL?: boolean;
  readonly allowW?: boolean;
  readonly allowHash?: boolean;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

const FIELDS: readonly CronField[] = [
  { name: 'minutes', min: 0, max: 59 },
  { name: 'hours', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31, allowQuestionMark: true, allowL: true, allowW: true },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  {
    name: 'day-of-week',
    min: 1,
    max: 7,
    names: WEEKDAYS,
    allowQuestionMark: true,
    allowL: true,
    allowHash: true,
  },
  { name: 'year', min: 1970, max: 2199 },
];

function parseValue(token: string, field: CronField): number | undefined {
  if (/^\d+$/.test(token)) {
    const n = Number(token);
    return n >= field.min && n <= field.max ? n : undefined;
  }
  const index = field.names?.indexOf(token.toUpperCase()) ?? -1;
  return index >= 0 ? field.min + index : undefined;
}

function checkItem(item: string, field: CronField): string | undefined {
  const range = `${field.min}-${field.max}${field.names ? ` or ${field.names[0]}-${field.names.at(-1)}` : ''}`;
  if (item === '*') return undefined;
  if (item === '?') {
    return field.allowQuestionMark ? undefined : `"?" is only allowed in day-of-month or day-of-week`;
  }
  if (field.allowL && item === 'L') return undefined;
  if (field.allowW && /^(\d{1,2}W|LW)$/.test(item)) {
    return item === 'LW' || parseValue(item.slice(0, -1), field) !== undefined
      ? undefined
      : `"${item}" needs a day ${range}`;
  }
  if (field.allowL && field.allowHash && /^[^L]+L$/.test(item)) {
    return parseValue(item.slice(0, -1), field) !== undefined ? undefined : `"${item}" needs a day ${range}`;
  }
  if (field.allowHash && item.includes('#')) {
    const [day, nth] = item.split('#');
    if (day === undefined || parseValue(day, field) === undefined)
      return `"${item}" needs a weekday ${range}`;
    return /^[1-5]$/.test(nth ?? '') ? undefined : `"${item}": the week number after # must be 1-5`;
  }
  const [base, step, extra] = item.split('/');
  if (extra !== undefined) return `"${item}" has more than one "/"`;
  if (step !== undefined && !/^\d+$/.test(step)) return `"${item}": the step after "/" must be a number`;
  if (base === undefined || base === '') return `empty value in "${item}"`;
  if (base === '*') return undefined;
  const bounds = base.split('-');
  if (bounds.length > 2) return `"${item}" is not a value or a range`;
  for (const bound of bounds) {
    if (parseValue(bound, field) === undefined) return `"${bound}" is out of range (expected ${range})`;
  }
  return undefined;
}

/**
 * Returns a human-readable problem with `expression`, or `undefined` when it is a valid
 * EventBridge Scheduler `cron(...)` or `rate(...)` expression.
 */
export function scheduleExpressionProblem(expression: string): string | undefined {
  const rate = /^rate\((.*)\)$/.exec(expression);
  if (rate) {
    const m = /^(\d+) (minute|minutes|hour|hours|day|days)$/.exec(rate[1]!.trim());
    if (!m) return `expected rate(<number> minute(s)|hour(s)|day(s)), got "${expression}"`;
    const value = Number(m[1]);
    if (value < 1) return `the rate value must be at least 1, got ${value}`;
    if ((value === 1) !== !m[2]!.endsWith('s')) {
      return `use "${value} ${value === 1 ? m[2]!.replace(/s$/, '') : `${m[2]!.replace(/s$/, '')}s`}" in "${expression}"`;
    }
    return undefined;
  }
  const cron = /^cron\((.*)\)$/.exec(expression);
  if (!cron) {
    return `expected an EventBridge Scheduler expression like "cron(0 2 * * ? *)" or "rate(1 day)", got "${expression}"`;
  }
  const parts = cron[1]!.trim().split(/\s+/);
  if (parts.length !== FIELDS.length) {
    return `cron needs 6 fields (minutes hours day-of-month month day-of-week year), got ${parts.length} in "${expression}"`;
  }
  for (const [i, field] of FIELDS.entries()) {
    for (const item of parts[i]!.split(',')) {
      const problem = checkItem(item, field);
      if (problem) return `${field.name} field: ${problem}`;
    }
  }
  const [, , dayOfMonth, , dayOfWeek] = parts;
  if ((dayOfMonth === '?') === (dayOfWeek === '?')) {
    return `exactly one of day-of-month and day-of-week must be "?" (got "${dayOfMonth}" and "${dayOfWeek}")`;
  }
  return undefined;
}
