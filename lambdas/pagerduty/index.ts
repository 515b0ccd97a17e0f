/**
 * PagerDuty: subscribed to the alerts topic (critical messages, successes and alarms only, by the
 * subscription's filter policy). Sends Events API v2 `trigger` / `resolve` (core/alerts/pagerduty.ts)
 * with retries; an event that still fails is thrown, so Lambda retries it asynchronously and then
 * puts it in the dead-letter queue (which has its own alarm).
 *
 * Env: COFRE_PAGERDUTY_SECRET_ARN (secret: the routing key, plain or `{"routingKey": "..."}`, read
 * through Powertools Parameters and cached for 5 minutes);
 * optional COFRE_PAGERDUTY_URL (default https://events.pagerduty.com/v2/enqueue).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SNSEvent } from 'aws-lambda';
import { optionalEnv, requiredEnv } from '../../core/aws/env';
import { PAGERDUTY_EVENTS_URL, relayToPagerDuty, type SendOptions } from '../../core/alerts/pagerduty';
import { lambdaHandler, powertools } from '../../core/aws/powertools';
import { PAGERDUTY_KEY_MAX_AGE_SECONDS, secretReader } from '../../core/aws/secrets';

export interface PagerDutyHandlerDeps {
  readonly secrets: SecretsManagerClient;
  readonly logger: Logger;
  /** How long the routing key is cached, in seconds (Parameters `maxAge`). @default PAGERDUTY_KEY_MAX_AGE_SECONDS */
  readonly keyMaxAgeSeconds?: number;
  /** Backoff settings (tests shorten them). */
  readonly send?: Pick<SendOptions, 'attempts' | 'baseDelayMs' | 'sleep'>;
}

/** The routing key in a secret: the whole string, or `routingKey` / `routing_key` of a JSON object. */
export function routingKeyOf(secretText: string | undefined, secretArn: string): string {
  const text = (secretText ?? '').trim();
  let key = text;
  if (text.startsWith('{')) {
    try {
      const json = JSON.parse(text) as Record<string, unknown>;
      const value = json.routingKey ?? json.routing_key ?? json.integrationKey;
      key = typeof value === 'string' ? value.trim() : '';
    } catch {
      key = '';
    }
  }
  if (!key)
    throw new Error(
      `secret ${secretArn} holds no PagerDuty routing key: expected the 32-character key, or JSON {"routingKey": "..."}`,
    );
  return key;
}

export function createPagerDutyHandler(deps: PagerDutyHandlerDeps) {
  const secretArn = requiredEnv('COFRE_PAGERDUTY_SECRET_ARN');
  const endpoint = optionalEnv('COFRE_PAGERDUTY_URL') ?? PAGERDUTY_EVENTS_URL;
  // Through Powertools Parameters: cached for maxAge, so a rotated key is used within it.
  const readSecret = secretReader(deps.secrets, deps.keyMaxAgeSeconds ?? PAGERDUTY_KEY_MAX_AGE_SECONDS);
  const key = async () => routingKeyOf(await readSecret(secretArn), secretArn);
  const log = {
    info: (m: string, e?: Record<string, unknown>) => {
      deps.logger.info(m, e ?? {});
    },
    warn: (m: string, e?: Record<string, unknown>) => {
      deps.logger.warn(m, e ?? {});
    },
    error: (m: string, e?: Record<string, unknown>) => {
      deps.logger.error(m, e ?? {});
    },
  };
  return async (event: SNSEvent) => {
    for (const record of event.Records) {
      const sns = record.Sns;
      const attributes = Object.fromEntries(
        Object.entries(
          (sns.MessageAttributes as SNSEvent['Records'][number]['Sns']['MessageAttributes'] | undefined) ??
            {},
        ).map(([k, v]) => [k, v.Value]),
      );
      await relayToPagerDuty(
        { subject: sns.Subject ?? undefined, message: sns.Message, attributes },
        await key(),
        { endpoint, log, ...deps.send },
      );
    }
  };
}

const pt = powertools('cofre-pagerduty');

export const handler = lambdaHandler(pt, 'pagerduty', () =>
  createPagerDutyHandler({
    secrets: pt.traced(new SecretsManagerClient({})),
    logger: pt.logger,
  }),
);
