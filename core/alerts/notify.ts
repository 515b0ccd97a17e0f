/**
 * Reports one job outcome: formats it ({@link formatAlert}) and hands it to `publish` (SNS in AWS, the
 * console in `cofre local`, PagerDuty directly in the local end-to-end test).
 *
 * Every outcome is published, successes included, because a success is what resolves the PagerDuty
 * incident of an earlier failure of the same job and database. With `notifyOnSuccess` off, a success
 * goes out with `audience: pagerduty`, which the e-mail subscriptions filter out: nobody gets mail for
 * it. With it on, successes are `audience: people` like everything else.
 */
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { booleanEnv, requiredEnv } from '../aws/env';
import { formatAlert, type AlertMessage, type NotifyEvent } from './message';

export {
  formatAlert,
  parseNotifyEvent,
  type AlertMessage,
  type NotifyEvent,
  type NotifyJob,
  type NotifyOutcome,
} from './message';

export interface NotifyDeps {
  /** Sends the message (SNS Publish with the attributes as string message attributes). */
  publish(message: AlertMessage): Promise<void>;
  /** `alerts.notifyOnSuccess`: also e-mail successes. */
  readonly notifyOnSuccess: boolean;
  /** Region of the pipeline. */
  readonly region: string;
  /** The vault (`s3://bucket`), for the runbook lines. */
  readonly vaultUrl?: string;
}

/** What was sent. */
export interface NotifyResult {
  readonly message: AlertMessage;
  /** `people` when e-mail subscribers get it; `pagerduty` when it only resolves an incident. */
  readonly audience: 'people' | 'pagerduty';
}

export async function notify(event: NotifyEvent, deps: NotifyDeps): Promise<NotifyResult> {
  const audience = event.outcome === 'succeeded' && !deps.notifyOnSuccess ? 'pagerduty' : 'people';
  const message = formatAlert(event, { region: deps.region, vaultUrl: deps.vaultUrl, audience });
  await deps.publish(message);
  return { message, audience };
}

/** A `publish` that sends to an SNS topic, the attributes as string message attributes. */
export function snsPublisher(client: SNSClient, topicArn: string): (message: AlertMessage) => Promise<void> {
  return async (message) => {
    await client.send(
      new PublishCommand({
        TopicArn: topicArn,
        Subject: message.subject,
        Message: message.body,
        MessageAttributes: Object.fromEntries(
          Object.entries(message.attributes).map(([k, v]) => [k, { DataType: 'String', StringValue: v }]),
        ),
      }),
    );
  };
}

/**
 * `notify` through the alerts topic as a Lambda's environment names it: `COFRE_TOPIC_ARN`,
 * `COFRE_NOTIFY_ON_SUCCESS` and `AWS_REGION`, read (and checked) once, when it is made.
 */
export function topicNotifier(sns: SNSClient): (event: NotifyEvent) => Promise<NotifyResult> {
  const publish = snsPublisher(sns, requiredEnv('COFRE_TOPIC_ARN'));
  const notifyOnSuccess = booleanEnv('COFRE_NOTIFY_ON_SUCCESS');
  const region = requiredEnv('AWS_REGION');
  return (event) => notify(event, { publish, notifyOnSuccess, region });
}
