import type { Duration } from 'aws-cdk-lib';
import { Metric } from 'aws-cdk-lib/aws-cloudwatch';
import { metricIdentity, type MetricName } from '../../../core/policy/metrics';

/**
 * One of Cofre's own metrics, for an alarm or a dashboard widget: its namespace and name come from
 * the metric factory (core/policy/metrics.ts) that the runtime publishers use too.
 */
export function cofreMetric(
  name: MetricName,
  dimensions: Record<string, string>,
  statistic: string,
  period: Duration,
): Metric {
  return new Metric({ ...metricIdentity(name, dimensions), statistic, period });
}
