/**
 * Notify: the last state of every backup state machine. Formats the job's outcome for people and
 * publishes it to the alerts topic (core/alerts/notify.ts); the topic's subscriptions route it by
 * severity to e-mail and PagerDuty.
 *
 * Env: COFRE_TOPIC_ARN, COFRE_NOTIFY_ON_SUCCESS, AWS_REGION; optional COFRE_VAULT_URL (runbook lines).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { SNSClient } from '@aws-sdk/client-sns';
import { booleanEnv, optionalEnv, requiredEnv } from '../../core/aws/env';
import { notify, parseNotifyEvent, snsPublisher } from '../../core/alerts/notify';
import { lambdaHandler, powertools } from '../../core/aws/powertools';

export interface NotifyHandlerDeps {
  readonly sns: SNSClient;
  readonly logger: Logger;
}

/** The handler, with its clients and environment passed in (tests use the local AWS, moto). */
export function createNotifyHandler(deps: NotifyHandlerDeps) {
  const topicArn = requiredEnv('COFRE_TOPIC_ARN');
  const notifyOnSuccess = booleanEnv('COFRE_NOTIFY_ON_SUCCESS');
  const region = requiredEnv('AWS_REGION');
  const vaultUrl = optionalEnv('COFRE_VAULT_URL');
  const publish = snsPublisher(deps.sns, topicArn);
  return async (event: unknown) => {
    const parsed = parseNotifyEvent(event);
    const { message, audience } = await notify(parsed, { publish, notifyOnSuccess, region, vaultUrl });
    deps.logger.info('published', { subject: message.subject, attributes: message.attributes, audience });
    return { subject: message.subject, audience };
  };
}

const pt = powertools('cofre-notify');

export const handler = lambdaHandler(pt, 'notify', () =>
  createNotifyHandler({
    sns: pt.traced(new SNSClient({})),
    logger: pt.logger,
  }),
);
