import { CfnElement, Stack } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';

/** A resource of a template. */
export interface FoundResource {
  readonly logicalId: string;
  readonly Properties: Record<string, unknown>;
  readonly DeletionPolicy?: string;
  readonly UpdateReplacePolicy?: string;
}

/** A construct's L1 resource in a template, found through the construct (never by a hashed logical id). */
export function resourceOf(template: Template, construct: IConstruct): FoundResource {
  const logicalId = logicalIdOf(construct);
  const resources = (template.toJSON() as { Resources: Record<string, Omit<FoundResource, 'logicalId'>> })
    .Resources;
  const resource = resources[logicalId];
  if (!resource) throw new Error(`no resource ${logicalId} (${construct.node.path}) in the template`);
  return { logicalId, ...resource };
}

/** The logical id CloudFormation gives a construct's L1 resource (the construct itself or its default child). */
export function logicalIdOf(construct: IConstruct): string {
  const element = construct.node.defaultChild ?? construct;
  if (!CfnElement.isCfnElement(element))
    throw new Error(`${construct.node.path} has no CloudFormation resource`);
  return Stack.of(element).resolve(element.logicalId) as string;
}

/** `{ 'Fn::GetAtt': [<logical id>, 'Arn'] }` of a construct. */
export function arnOf(construct: IConstruct): { 'Fn::GetAtt': [string, string] } {
  return { 'Fn::GetAtt': [logicalIdOf(construct), 'Arn'] };
}

/** `<construct ARN>/*` as the template writes it. */
export function objectsOf(construct: IConstruct): { 'Fn::Join': [string, unknown[]] } {
  return { 'Fn::Join': ['', [arnOf(construct), '/*']] };
}

interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Principal?: unknown;
  Resource?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

/** The statements of a policy document property. */
export function statementsOf(document: unknown): Statement[] {
  return (document as { Statement: Statement[] }).Statement;
}

/** The actions of a statement, as an array. */
export function actionsOf(statement: Statement): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}

/** The statement with `sid`; throws if there is none. */
export function statementWithSid(document: unknown, sid: string): Statement {
  const statement = statementsOf(document).find((s) => s.Sid === sid);
  if (!statement) throw new Error(`no statement with Sid ${sid}`);
  return statement;
}
