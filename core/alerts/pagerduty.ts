/**
 * PagerDuty Events API v2: turns what arrives on the alerts topic into `trigger` / `resolve` events
 * and sends them, with retries. Pure logic plus `fetch`; the endpoint is injectable, so tests run it
 * against a local HTTP server and the local end-to-end run can call it in-process.
 *
 * What pages (see README "Alerts"):
 * - a pipeline message (`notify`) with `severity: critical` → `trigger`, dedup key `cofre:<job>:<database>`;
 * - a pipeline message with `outcome: succeeded` → `resolve` of that same key;
 * - a CloudWatch alarm on the critical route: `ALARM` → `trigger`, `OK` → `resolve`, dedup key
 *   `cofre:alarm:<alarm name>`; the alarm description's `[high]` tag maps to PagerDuty severity `error`;
 * - anything else (warnings, the monthly report) is ignored.
 */

export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';

/** One message as SNS delivered it. */
export interface SnsAlert {
  readonly subject?: string;
  readonly message: string;
  /** String message attributes (name → value). */
  readonly attributes: Readonly<Record<string, string>>;
}

export type PagerDutySeverity = 'critical' | 'error' | 'warning' | 'info';

/** An Events API v2 event (routing key added when sent). */
export type PagerDutyEvent =
  | {
      readonly event_action: 'trigger';
      readonly dedup_key: string;
      readonly payload: {
        readonly summary: string;
        readonly source: string;
        readonly severity: PagerDutySeverity;
        readonly component?: string;
        readonly group?: string;
        readonly class?: string;
        readonly custom_details?: Record<string, unknown>;
      };
      readonly client: string;
      readonly client_url?: string;
      readonly links?: readonly { readonly href: string; readonly text: string }[];
    }
  | { readonly event_action: 'resolve'; readonly dedup_key: string };

/** The PagerDuty event for an alert, or why there is none. */
export type PagerDutyDecision = { readonly event: PagerDutyEvent } | { readonly ignore: string };

/** Minimal structured logger (Powertools Logger fits). */
export interface AlertLog {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}

const MAX_SUMMARY = 1024;
const MAX_DETAILS_TEXT = 8000;

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

/** `cofre:<job>:<database>`: one incident per job and database, so the next success resolves it. */
export function dedupKeyFor(job: string, database: string): string {
  return `cofre:${job}:${database}`;
}

/** `cofre:alarm:<alarm name>`. */
export function alarmDedupKey(alarmName: string): string {
  return `cofre:alarm:${alarmName}`;
}

interface CloudWatchAlarmMessage {
  AlarmName: string;
  AlarmDescription?: string | null;
  NewStateValue: 'ALARM' | 'OK' | 'INSUFFICIENT_DATA';
  NewStateReason?: string;
  StateChangeTime?: string;
  AlarmArn?: string;
  Trigger?: {
    MetricName?: string;
    Namespace?: string;
    Dimensions?: { name?: string; value?: string }[];
  };
}

function cloudWatchAlarm(message: string): CloudWatchAlarmMessage | undefined {
  try {
    const parsed = JSON.parse(message) as Partial<CloudWatchAlarmMessage> | null;
    if (parsed && typeof parsed.AlarmName === 'string' && typeof parsed.NewStateValue === 'string')
      return parsed as CloudWatchAlarmMessage;
  } catch {
    // not JSON: not an alarm
  }
  return undefined;
}

/** Severity tag at the start of an alarm description: `[critical]`, `[high]`, `[warning]`. */
export function alarmSeverity(description: string | null | undefined): PagerDutySeverity {
  const tag = /^\[(critical|high|warning)\]/i.exec(description ?? '')?.[1]?.toLowerCase();
  return tag === 'high' ? 'error' : tag === 'warning' ? 'warning' : 'critical';
}

function alarmEvent(alarm: CloudWatchAlarmMessage): PagerDutyDecision {
  const dedupKey = alarmDedupKey(alarm.AlarmName);
  if (alarm.NewStateValue === 'OK') return { event: { event_action: 'resolve', dedup_key: dedupKey } };
  if (alarm.NewStateValue !== 'ALARM')
    return {
      ignore: `alarm ${alarm.AlarmName} went to ${alarm.NewStateValue}, which neither pages nor resolves`,
    };
  const region = alarm.AlarmArn?.split(':')[3];
  const database = alarm.Trigger?.Dimensions?.find((d) => d.name === 'Database')?.value;
  const description = (alarm.AlarmDescription ?? '').replace(/^\[[a-z]+\]\s*/i, '');
  const url = region
    ? `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#alarmsV2:alarm/${encodeURIComponent(alarm.AlarmName)}`
    : undefined;
  return {
    event: {
      event_action: 'trigger',
      dedup_key: dedupKey,
      payload: {
        summary: truncate(
          `[Cofre] ALARM ${description || alarm.AlarmName}${region ? ` (${region})` : ''}`,
          MAX_SUMMARY,
        ),
        source: database ? `cofre:${database}` : `cofre:${region ?? 'aws'}`,
        severity: alarmSeverity(alarm.AlarmDescription),
        ...(database ? { component: database } : {}),
        group: 'alarm',
        ...(alarm.Trigger?.MetricName ? { class: alarm.Trigger.MetricName } : {}),
        custom_details: {
          alarm: alarm.AlarmName,
          description: alarm.AlarmDescription ?? '',
          reason: alarm.NewStateReason ?? '',
          since: alarm.StateChangeTime ?? '',
          metric: alarm.Trigger ? `${alarm.Trigger.Namespace ?? ''}/${alarm.Trigger.MetricName ?? ''}` : '',
        },
      },
      client: 'Cofre',
      ...(url ? { client_url: url, links: [{ href: url, text: 'CloudWatch alarm' }] } : {}),
    },
  };
}

/** Decides what an alert means for PagerDuty (pure). */
export function pagerDutyEventFor(alert: SnsAlert): PagerDutyDecision {
  const { job, database, outcome, severity, kind } = alert.attributes;
  if (job && database) {
    const dedupKey = dedupKeyFor(job, database);
    if (outcome === 'succeeded') return { event: { event_action: 'resolve', dedup_key: dedupKey } };
    if (severity !== 'critical')
      return { ignore: `${severity ?? 'unknown'} ${outcome ?? ''} message for ${dedupKey} does not page` };
    const url = /https:\/\/\S+\.console\.aws\.amazon\.com\/states\/\S+/.exec(alert.message)?.[0];
    return {
      event: {
        event_action: 'trigger',
        dedup_key: dedupKey,
        payload: {
          summary: truncate(
            alert.subject ?? `[Cofre] ${outcome ?? 'failed'} ${job} ${database}`,
            MAX_SUMMARY,
          ),
          source: `cofre:${database}`,
          severity: 'critical',
          component: database,
          group: job,
          ...(kind ? { class: kind } : {}),
          custom_details: { message: truncate(alert.message, MAX_DETAILS_TEXT), ...alert.attributes },
        },
        client: 'Cofre',
        ...(url ? { client_url: url, links: [{ href: url, text: 'Step Functions execution' }] } : {}),
      },
    };
  }
  const alarm = cloudWatchAlarm(alert.message);
  if (alarm) return alarmEvent(alarm);
  return {
    ignore: `neither a Cofre pipeline message (job and database attributes) nor a CloudWatch alarm; attributes ${JSON.stringify(alert.attributes)}`,
  };
}

/** PagerDuty refused the event (HTTP 4xx other than 429): retrying would not help. */
export class PagerDutyRejectedError extends Error {
  constructor(
    public readonly status: number,
    public readonly responseBody: string,
    dedupKey: string,
  ) {
    super(`PagerDuty rejected the ${dedupKey} event with HTTP ${status}: ${responseBody}`);
    this.name = 'PagerDutyRejectedError';
  }
}

export interface SendOptions {
  /** Events API URL (default {@link PAGERDUTY_EVENTS_URL}). */
  readonly endpoint?: string;
  /** Attempts in all, first included (default 5). */
  readonly attempts?: number;
  /** First backoff delay; doubles per attempt, capped at 8 s, ±20 % jitter (default 500 ms). */
  readonly baseDelayMs?: number;
  /** Per-request timeout (default 10 s). */
  readonly timeoutMs?: number;
  readonly log?: AlertLog;
  /** Injectable for tests. */
  readonly fetch?: typeof fetch;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface SendResult {
  readonly status: number;
  readonly attempts: number;
  /** PagerDuty's response (`{status, message, dedup_key}`). */
  readonly response: unknown;
}

const RETRYABLE = (status: number) => status === 429 || status >= 500;

/**
 * POSTs the event with the routing key; retries 429, 5xx and network errors with exponential backoff.
 * A 4xx other than 429 is not retried: it throws {@link PagerDutyRejectedError} after logging
 * PagerDuty's error body. After the last attempt the last error is thrown (the Lambda's async retries
 * and dead-letter queue take it from there).
 */
export async function sendPagerDutyEvent(
  event: PagerDutyEvent,
  routingKey: string,
  options: SendOptions = {},
): Promise<SendResult> {
  const endpoint = options.endpoint ?? PAGERDUTY_EVENTS_URL;
  const attempts = options.attempts ?? 5;
  const base = options.baseDelayMs ?? 500;
  const doFetch = options.fetch ?? fetch;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const body = JSON.stringify({ routing_key: routingKey, ...event });
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    let status: number | undefined;
    let text = '';
    try {
      const response = await doFetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      });
      status = response.status;
      text = await response.text();
    } catch (error) {
      lastError = error;
      options.log?.warn('PagerDuty request failed (network)', {
        dedupKey: event.dedup_key,
        attempt,
        error: error instanceof Error ? error.message : String(error),
      });
    }
    if (status !== undefined) {
      if (status >= 200 && status < 300) {
        let response: unknown = text;
        try {
          response = JSON.parse(text);
        } catch {
          // keep the text
        }
        options.log?.info(`PagerDuty accepted ${event.event_action} ${event.dedup_key}`, {
          status,
          attempt,
          response,
        });
        return { status, attempts: attempt, response };
      }
      if (!RETRYABLE(status)) {
        const error = new PagerDutyRejectedError(status, text, event.dedup_key);
        options.log?.error(error.message, {
          dedupKey: event.dedup_key,
          eventAction: event.event_action,
          status,
          pagerDutyResponse: text,
        });
        throw error;
      }
      lastError = new Error(`PagerDuty answered HTTP ${status}: ${text}`);
      options.log?.warn(`PagerDuty answered HTTP ${status}, will retry`, {
        dedupKey: event.dedup_key,
        attempt,
        pagerDutyResponse: text,
      });
    }
    if (attempt < attempts) {
      const delay = Math.min(8000, base * 2 ** (attempt - 1));
      await sleep(Math.round(delay * (0.8 + Math.random() * 0.4)));
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

/** Decides and sends: the whole PagerDuty path for one alert (in the Lambda, or in-process locally). */
export async function relayToPagerDuty(
  alert: SnsAlert,
  routingKey: string,
  options: SendOptions = {},
): Promise<{ sent: PagerDutyEvent; result: SendResult } | { ignored: string }> {
  const decision = pagerDutyEventFor(alert);
  if ('ignore' in decision) {
    options.log?.info('not for PagerDuty', { reason: decision.ignore });
    return { ignored: decision.ignore };
  }
  return { sent: decision.event, result: await sendPagerDutyEvent(decision.event, routingKey, options) };
}
