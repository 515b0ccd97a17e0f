import { describe, expect, it } from 'vitest';
import { scheduleExpressionProblem } from '../../lib/config/schedule-expression';

describe('scheduleExpressionProblem', () => {
  it.each([
    'cron(0 2 * * ? *)',
    'cron(0 3 ? * MON-SAT *)',
    'cron(0 4 ? * SUN#1 *)',
    'cron(0 4 ? * 1#1 *)',
    'cron(15,45 */2 L * ? 2026-2030)',
    'cron(0 0 15W JAN,JUL ? *)',
    'cron(0 0 ? * 6L *)',
    'cron(0 0 LW * ? *)',
    'rate(1 hour)',
    'rate(5 minutes)',
    'rate(7 days)',
  ])('accepts %s', (expression) => {
    expect(scheduleExpressionProblem(expression)).toBeUndefined();
  });

  it.each([
    ['0 2 * * *', /expected an EventBridge Scheduler expression/],
    ['cron(0 2 * * *)', /cron needs 6 fields .* got 5/],
    ['cron(60 2 * * ? *)', /minutes field: "60" is out of range \(expected 0-59\)/],
    ['cron(0 2 32 * ? *)', /day-of-month field: "32" is out of range/],
    ['cron(0 2 * 13 ? *)', /month field: "13" is out of range \(expected 1-12 or JAN-DEC\)/],
    ['cron(0 2 ? * FUNDAY *)', /day-of-week field: "FUNDAY" is out of range/],
    ['cron(0 2 ? * MON#6 *)', /the week number after # must be 1-5/],
    ['cron(0 2 * * * *)', /exactly one of day-of-month and day-of-week must be "\?"/],
    ['cron(0 2 ? * ? *)', /exactly one of day-of-month and day-of-week/],
    ['cron(? 2 * * ? *)', /minutes field: "\?" is only allowed in day-of-month or day-of-week/],
    ['cron(0/x 2 * * ? *)', /the step after "\/" must be a number/],
    ['cron(0 2 * * ? 1800)', /year field: "1800" is out of range/],
    ['rate(0 minutes)', /at least 1/],
    ['rate(1 hours)', /use "1 hour"/],
    ['rate(2 weeks)', /expected rate\(<number> minute\(s\)\|hour\(s\)\|day\(s\)\)/],
  ])('rejects %s', (expression, expected) => {
    expect(scheduleExpressionProblem(expression)).toMatch(expected);
  });
});
