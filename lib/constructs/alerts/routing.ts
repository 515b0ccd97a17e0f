import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { AnyPrincipal, Effect, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { CfnSubscription, Subscription, SubscriptionProtocol, Topic } from 'aws-cdk-lib/aws-sns';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { administeredKeyPolicy, logsEncryptionStatement, usableOnlyThroughServices } from '../key-policy';

/**
 * Where alerts go: two topics on one key (critical → e-mail + PagerDuty, warning → e-mail), their
 * e-mail subscriptions, and the queue of what SNS could not deliver.
 */

/**
 * Subscription filter of the e-mail subscriptions on the alerts topic: every message for people, and
 * CloudWatch alarm messages (which carry no attributes); not the successes that only resolve a
 * PagerDuty incident (`audience: pagerduty`, sent when `notifyOnSuccess` is off).
 */
export const EMAIL_FILTER_POLICY = { $or: [{ audience: ['people'] }, { audience: [{ exists: false }] }] };

/**
 * Subscription filter of the PagerDuty Lambda: critical pipeline messages (trigger), successes
 * (resolve), and CloudWatch alarm messages (no attributes: trigger on ALARM, resolve on OK).
 * `severity: critical` alone would drop the successes and alarms that resolve incidents.
 */
export const PAGERDUTY_FILTER_POLICY = {
  $or: [{ severity: ['critical'] }, { outcome: ['succeeded'] }, { severity: [{ exists: false }] }],
};

/** The two alert topics, their key and e-mail subscriptions, and the undelivered-messages queue. */
export interface AlertRoutes {
  readonly key: Key;
  readonly topic: Topic;
  readonly warningTopic: Topic;
  readonly undeliveredQueue: Queue;
}

/** Creates the routes in `scope`, with `emails` subscribed to both topics. */
export function createAlertRoutes(scope: Construct, emails: readonly string[]): AlertRoutes {
  const key = createAlertsKey(scope);
  const topicProps = { masterKey: key, enforceSSL: true };
  const topic = new Topic(scope, 'Topic', { ...topicProps, displayName: 'Cofre alerts (critical)' });
  const warningTopic = new Topic(scope, 'WarningTopic', {
    ...topicProps,
    displayName: 'Cofre alerts (warning)',
  });
  for (const t of [topic, warningTopic]) restrictPublishing(t);
  // Messages SNS could not deliver to a subscriber (e-mail or the PagerDuty Lambda) land here.
  const undeliveredQueue = alertQueue(scope, key, 'UndeliveredQueue');
  emails.forEach((email, i) => {
    const critical = new Subscription(scope, `Email${i}`, {
      topic,
      endpoint: email,
      protocol: SubscriptionProtocol.EMAIL,
      deadLetterQueue: undeliveredQueue,
    });
    (critical.node.defaultChild as CfnSubscription).filterPolicy = EMAIL_FILTER_POLICY;
    new Subscription(scope, `WarningEmail${i}`, {
      topic: warningTopic,
      endpoint: email,
      protocol: SubscriptionProtocol.EMAIL,
      deadLetterQueue: undeliveredQueue,
    });
  });
  return { key, topic, warningTopic, undeliveredQueue };
}

/** An SQS queue encrypted with the alerts key, TLS only, kept 14 days. */
export function alertQueue(scope: Construct, key: Key, id: string): Queue {
  return new Queue(scope, id, {
    encryption: QueueEncryption.KMS,
    encryptionMasterKey: key,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
}

/** The alerts key: topics, the alert Lambdas' logs and environments, the alert queues. */
export function createAlertsKey(scope: Construct): Key {
  const stack = Stack.of(scope);
  const policy = administeredKeyPolicy();
  const sourceAccount = { StringEquals: { 'aws:SourceAccount': stack.account } };
  policy.addStatements(
    logsEncryptionStatement(scope),
    usableOnlyThroughServices(scope, 'AccountUsesTheKeyOnlyThroughSnsLambdaAndSqs', ['sns', 'lambda', 'sqs']),
    // CloudWatch alarms publish to the encrypted topics; SNS and EventBridge write to the encrypted queues.
    new PolicyStatement({
      sid: 'AlarmsAndDeliveriesOfThisAccount',
      principals: [
        new ServicePrincipal('cloudwatch.amazonaws.com'),
        new ServicePrincipal('sns.amazonaws.com'),
        new ServicePrincipal('events.amazonaws.com'),
      ],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'],
      conditions: sourceAccount,
    }),
  );
  const key = new Key(scope, 'Key', {
    description: `Cofre alerts key (${stack.region}): topics, alert Lambdas' logs, environments and queues`,
    enableKeyRotation: true,
    policy,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  key.addAlias('alias/cofre-alerts');
  return key;
}

/** TLS only (enforceSSL), nobody outside this account, and CloudWatch alarms of this account. */
export function restrictPublishing(topic: Topic): void {
  const stack = Stack.of(topic);
  topic.addToResourcePolicy(
    new PolicyStatement({
      sid: 'CloudWatchAlarmsOfThisAccountPublish',
      principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
      conditions: {
        StringEquals: { 'aws:SourceAccount': stack.account },
        ArnLike: {
          'aws:SourceArn': stack.formatArn({
            service: 'cloudwatch',
            resource: 'alarm',
            resourceName: '*',
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        },
      },
    }),
  );
  topic.addToResourcePolicy(
    new PolicyStatement({
      sid: 'DenyPublishingFromOtherAccounts',
      effect: Effect.DENY,
      principals: [new AnyPrincipal()],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
      conditions: {
        StringNotEquals: { 'aws:PrincipalAccount': stack.account },
        Bool: { 'aws:PrincipalIsAWSService': 'false' },
      },
    }),
  );
  topic.addToResourcePolicy(
    new PolicyStatement({
      sid: 'DenyServicesActingForOtherAccounts',
      effect: Effect.DENY,
      principals: [new AnyPrincipal()],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
      conditions: {
        StringNotEquals: { 'aws:SourceAccount': stack.account },
        Bool: { 'aws:PrincipalIsAWSService': 'true' },
      },
    }),
  );
}
