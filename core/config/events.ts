/**
 * The EventBridge events that mean "a protected value changed": Secrets Manager API calls delivered
 * by CloudTrail (`AWS API Call via CloudTrail`) and Parameter Store's own `Parameter Store Change`.
 * Parsing keeps only what a snapshot needs (never a value: CloudTrail does not log secret values).
 */
import type { ConfigKind } from './types';

/** The Secrets Manager calls that change a secret's value or existence. */
export const SECRET_EVENT_NAMES = [
  'CreateSecret',
  'PutSecretValue',
  'UpdateSecret',
  'RotateSecret',
  'RestoreSecret',
  'DeleteSecret',
] as const;
/** Parameter Store change operations. */
export const PARAMETER_OPERATIONS = ['Create', 'Update', 'Delete', 'LabelParameterVersion'] as const;

export const SECRET_EVENT_SOURCE = 'aws.secretsmanager';
export const CLOUDTRAIL_DETAIL_TYPE = 'AWS API Call via CloudTrail';
export const PARAMETER_EVENT_SOURCE = 'aws.ssm';
export const PARAMETER_DETAIL_TYPE = 'Parameter Store Change';

/** One change, as an event reports it. */
export interface ConfigChange {
  readonly kind: ConfigKind;
  /** Secret ARN or name, or parameter name. */
  readonly id: string;
  /** Secret name when the event carries it. */
  readonly name?: string | undefined;
  readonly eventName: string;
  readonly eventId: string;
  /** ISO-8601 UTC time of the change. */
  readonly at: string;
  readonly changedBy?: string | undefined;
  /** The version the call created (PutSecretValue, UpdateSecret, RotateSecret). */
  readonly versionId?: string | undefined;
  /** The call deleted it (DeleteSecret, Parameter Store `Delete`). */
  readonly deleted: boolean;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function isoTime(value: string | undefined, fallback: string | undefined): string {
  for (const v of [value, fallback]) {
    if (!v) continue;
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return new Date(t).toISOString();
  }
  throw new Error('event without a valid time');
}

/**
 * The change an EventBridge event reports, `undefined` for an event that is not one (another source
 * or call, or a call that failed: CloudTrail also records those, with an `errorCode`). Throws on an
 * event that claims to be one but lacks what identifies the secret or parameter.
 */
export function parseConfigEvent(event: unknown): ConfigChange | undefined {
  const e = obj(event);
  const detail = obj(e.detail);
  const eventId = str(e.id) ?? 'unknown';
  if (e.source === SECRET_EVENT_SOURCE && e['detail-type'] === CLOUDTRAIL_DETAIL_TYPE) {
    const eventName = str(detail.eventName);
    if (!eventName || !(SECRET_EVENT_NAMES as readonly string[]).includes(eventName)) return undefined;
    if (detail.errorCode !== undefined) return undefined;
    const request = obj(detail.requestParameters);
    const response = obj(detail.responseElements);
    // Before February 2024 some calls reported the ARN as "aRN" (AWS re:Post, secrets-manager-arn).
    const id = str(response.arn) ?? str(response.aRN) ?? str(request.secretId) ?? str(request.name);
    if (!id) throw new Error(`${eventName} event ${eventId}: no secret ARN or id in the event`);
    const identity = obj(detail.userIdentity);
    return {
      kind: 'secret',
      id,
      name: str(response.name) ?? str(request.name),
      eventName,
      eventId,
      at: isoTime(str(detail.eventTime), str(e.time)),
      changedBy: str(identity.arn) ?? str(identity.principalId) ?? str(identity.invokedBy),
      versionId: str(response.versionId),
      deleted: eventName === 'DeleteSecret',
    };
  }
  if (e.source === PARAMETER_EVENT_SOURCE && e['detail-type'] === PARAMETER_DETAIL_TYPE) {
    const operation = str(detail.operation);
    if (!operation || !(PARAMETER_OPERATIONS as readonly string[]).includes(operation)) return undefined;
    const name = str(detail.name);
    if (!name) throw new Error(`Parameter Store ${operation} event ${eventId}: no parameter name`);
    return {
      kind: 'parameter',
      id: name,
      name,
      eventName: operation,
      eventId,
      at: isoTime(str(e.time), undefined),
      changedBy: undefined,
      versionId: undefined,
      deleted: operation === 'Delete',
    };
  }
  return undefined;
}
