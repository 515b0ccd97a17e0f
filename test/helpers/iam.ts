/**
 * The IAM policies of a synthesized Cofre app, with every CloudFormation intrinsic resolved into the
 * names and ARNs of the resources a test made in the local AWS (moto). Per runtime role (the dump
 * task role of each database, each Lambda's role): its identity policies. Per resource: the vault
 * bucket policies (primary and DR), the KMS key policies (vault, DR vault, pipeline, history,
 * alerts) and the alerts topic policy. `iam-check.ts` evaluates recorded AWS calls against them.
 */
import type { IConstruct } from 'constructs';
import type { CofreConfigInput } from '../../lib/config';
import type { CofrePrimaryStack } from '../../lib/stacks/primary-stack';
import { buildTestApp } from './cdk';
import { ACCOUNT, REGION } from './local-aws';
import { logicalIdOf } from './template';

/** An IAM policy document (resolved: only strings). */
export interface PolicyDocument {
  readonly Version?: string;
  readonly Statement: readonly Record<string, unknown>[];
}

export interface NamedPolicy {
  readonly name: string;
  readonly policy: PolicyDocument;
}

/** The resources a test made in moto, which the synthesized logical ids stand for. */
export interface LocalResources {
  readonly vaultBucket: string;
  readonly vaultKeyArn: string;
  readonly drVaultBucket: string;
  readonly drVaultKeyArn: string;
  readonly historyTable: string;
  readonly historyKeyArn: string;
  /** The idempotency table of `prepare` (lib/constructs/idempotency-table.ts). */
  readonly idempotencyTable: string;
  readonly alertsTopicArn: string;
  readonly alertsKeyArn: string;
  readonly pipelineKeyArn: string;
  /** Secret ARN of each database of the config (`databases[].credentialsSecretArn`), by id. */
  readonly databaseSecretArns: Readonly<Record<string, string>>;
  /** Restore targets of a database (`databases[].restoreTargets`), by database id. */
  readonly restoreTargets?: Readonly<
    Record<string, readonly { name: string; host?: string; port?: number; credentialsSecretArn: string }[]>
  >;
  readonly pagerDutySecretArn: string;
  /** The configuration snapshots' secret (`configuration.secretArns`) and parameter path (`ssmParameterPaths`). */
  readonly configSecretArn: string;
  readonly configParameterPath: string;
  /**
   * The S3-compatible buckets of the config (`buckets[]` with `source`), by name in the example: the
   * bucket (a moto bucket standing for the store) and its access key secret.
   */
  readonly filesSources?: Readonly<Record<string, { readonly bucket: string; readonly secretArn: string }>>;
  /** The AWS S3 buckets of the config (`buckets[]` without `source`): the moto bucket standing for each, by name in the example. */
  readonly awsBuckets?: Readonly<Record<string, string>>;
}

/** The runtime roles: the dump task of each database, and every Lambda that runs our code. */
export type RuntimeRoleName =
  | `task:${string}`
  /** The files task of an S3-compatible bucket (by its name in the synthesized config). */
  | `files:${string}`
  | 'prepare'
  | 'verify'
  | 'record'
  | 'list-tenants'
  | 'list-backups'
  | 'notify'
  | 'pagerduty'
  | 'freshness'
  | 'monthly-report'
  | 'restore-validation'
  | 'files-restore-validation'
  | 'backup-events'
  | 'config-snapshot'
  | 'restore-validate'
  | 'restore-record'
  | 'restore-rds'
  | 'restore-stopped'
  /** A state machine's role: its Task states' integrations (invoke, RunTask, PassRole). */
  | `sm:${string}`;

export interface RuntimeRole {
  readonly name: RuntimeRoleName;
  readonly logicalId: string;
  readonly arn: string;
  /** The identity policies attached to it (default policy, other policies, inline, customer managed). */
  readonly policies: readonly NamedPolicy[];
  /** AWS managed policies attached (not evaluated: they only let Lambda write logs / manage ENIs). */
  readonly awsManagedPolicies: readonly string[];
}

/** What the simulator evaluates calls against. */
export interface SynthesizedIam {
  readonly account: string;
  readonly region: string;
  readonly roles: ReadonlyMap<RuntimeRoleName, RuntimeRole>;
  /** Resource policies by the ARN they protect (bucket ARN, key ARN, topic ARN). */
  readonly resourcePolicies: ReadonlyMap<string, PolicyDocument>;
  readonly resources: LocalResources & { readonly drRegion: string };
  /** The environment CDK gives each runtime (Lambda environment, dump task container environment), resolved. */
  readonly environments: ReadonlyMap<RuntimeRoleName, Readonly<Record<string, string>>>;
  /**
   * The dead-letter queue of each asynchronously invoked Lambda and its KMS key: Lambda delivers a
   * failed event there with the function's own role.
   */
  readonly deadLetterQueues: ReadonlyMap<
    RuntimeRoleName,
    { readonly queueArn: string; readonly keyArn?: string }
  >;
  /** ARNs of what the state machines integrate with, and of the state machines themselves. */
  readonly arns: {
    readonly functions: ReadonlyMap<string, string>;
    readonly cluster: string;
    readonly taskDefinitions: ReadonlyMap<string, string>;
    readonly taskRoles: ReadonlyMap<string, string>;
    readonly executionRoles: ReadonlyMap<string, string>;
    readonly stateMachines: ReadonlyMap<string, string>;
  };
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface CfnTemplate {
  Resources: Record<string, { Type: string; Properties?: Record<string, Json> }>;
  Outputs?: Record<string, { Value: Json }>;
}

/** Names of one stack's resources: `Ref` and attributes by logical id. */
type Physical = Record<string, Record<string, string>>;

interface StackContext {
  readonly name: string;
  readonly region: string;
  readonly template: CfnTemplate;
  readonly physical: Physical;
}

function defaultPhysical(ctx: { region: string }, logicalId: string, type: string): Record<string, string> {
  const name = `cofre-${logicalId}`.toLowerCase();
  const arn = (service: string, resource: string, region = ctx.region) =>
    `arn:aws:${service}:${region}:${ACCOUNT}:${resource}`;
  switch (type) {
    case 'AWS::IAM::Role':
      return { Ref: logicalId, Arn: `arn:aws:iam::${ACCOUNT}:role/${logicalId}`, RoleId: `AROA${logicalId}` };
    case 'AWS::IAM::ManagedPolicy':
      return { Ref: `arn:aws:iam::${ACCOUNT}:policy/${logicalId}` };
    case 'AWS::S3::Bucket':
      return { Ref: name, Arn: `arn:aws:s3:::${name}` };
    case 'AWS::KMS::Key':
      return { Ref: logicalId, Arn: arn('kms', `key/${logicalId}`), KeyId: logicalId };
    case 'AWS::SQS::Queue':
      return {
        Ref: `https://sqs.${ctx.region}.amazonaws.com/${ACCOUNT}/${name}`,
        Arn: arn('sqs', name),
        QueueName: name,
        QueueUrl: `https://sqs.${ctx.region}.amazonaws.com/${ACCOUNT}/${name}`,
      };
    case 'AWS::SNS::Topic':
      return { Ref: arn('sns', name), TopicArn: arn('sns', name), TopicName: name };
    case 'AWS::DynamoDB::Table':
      return { Ref: name, Arn: arn('dynamodb', `table/${name}`) };
    case 'AWS::Lambda::Function':
      return { Ref: name, Arn: arn('lambda', `function:${name}`) };
    case 'AWS::Logs::LogGroup':
      return { Ref: name, Arn: arn('logs', `log-group:${name}:*`) };
    case 'AWS::StepFunctions::StateMachine':
      return {
        Ref: arn('states', `stateMachine:${name}`),
        Arn: arn('states', `stateMachine:${name}`),
        Name: name,
      };
    case 'AWS::ECS::Cluster':
      return { Ref: name, Arn: arn('ecs', `cluster/${name}`) };
    case 'AWS::ECS::TaskDefinition':
      return {
        Ref: arn('ecs', `task-definition/${name}:1`),
        TaskDefinitionArn: arn('ecs', `task-definition/${name}:1`),
      };
    case 'AWS::Backup::RestoreTestingPlan':
      return {
        Ref: name,
        RestoreTestingPlanArn: arn('backup', `restore-testing-plan:${name}`),
      };
    case 'AWS::Events::Rule':
      return { Ref: name, Arn: arn('events', `rule/${name}`) };
    default: {
      // Resources the runtime never calls (alarms, schedules...): a well-formed ARN of their service.
      const [, service, kind] = type.split('::');
      return { Ref: name, Arn: arn(service!.toLowerCase(), `${kind!.toLowerCase()}/${name}`) };
    }
  }
}

function physicalNames(ctx: { region: string; template: CfnTemplate }, overrides: Physical): Physical {
  const out: Physical = {};
  for (const [id, resource] of Object.entries(ctx.template.Resources))
    out[id] = { ...defaultPhysical(ctx, id, resource.Type), ...overrides[id] };
  return out;
}

/**
 * Resolves CloudFormation intrinsics into strings: Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select,
 * Fn::Split, Fn::GetStackOutput (the cross-region references between the two stacks) and the pseudo
 * parameters. Anything else throws, naming the intrinsic: a policy the test cannot read is a failure.
 */
function resolve(value: Json, ctx: StackContext, stacks: Readonly<Record<string, StackContext>>): Json {
  if (Array.isArray(value)) return value.map((v) => resolve(v, ctx, stacks));
  if (value === null || typeof value !== 'object') return value;
  const keys = Object.keys(value);
  if (keys.length === 1 && (keys[0] === 'Ref' || keys[0]!.startsWith('Fn::'))) {
    const key = keys[0]!;
    const arg = value[key]!;
    const str = (v: Json): string => {
      const r = resolve(v, ctx, stacks);
      if (typeof r !== 'string') throw new Error(`${key}: expected a string, got ${JSON.stringify(r)}`);
      return r;
    };
    switch (key) {
      case 'Ref':
        return ref(str(arg), ctx);
      case 'Fn::GetAtt': {
        const [id, attr] = Array.isArray(arg) ? arg.map(str) : str(arg).split('.');
        return attribute(id!, attr!, ctx);
      }
      case 'Fn::Join': {
        const [sep, parts] = arg as [Json, Json[]];
        const resolved = resolve(parts, ctx, stacks) as Json[];
        return resolved.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(str(sep));
      }
      case 'Fn::Sub': {
        const [text, vars]: [Json, Record<string, Json>] = Array.isArray(arg)
          ? (arg as [Json, Record<string, Json>])
          : [arg, {}];
        return str(text).replace(/\$\{([^}]+)\}/g, (_, name: string) => {
          if (vars[name] !== undefined) return str(vars[name]);
          if (name.includes('.') && !name.startsWith('AWS::')) {
            const [id, attr] = name.split('.');
            return attribute(id!, attr!, ctx);
          }
          return ref(name, ctx);
        });
      }
      case 'Fn::Select': {
        const [index, list] = arg as [Json, Json];
        const items = resolve(list, ctx, stacks);
        if (!Array.isArray(items))
          throw new Error(`Fn::Select: expected a list, got ${JSON.stringify(items)}`);
        return items[Number(resolve(index, ctx, stacks))]!;
      }
      case 'Fn::Split': {
        const [sep, text] = arg as [Json, Json];
        return str(text).split(str(sep));
      }
      case 'Fn::GetStackOutput': {
        const { StackName, OutputName } = arg as { StackName: string; OutputName: string };
        const other = stacks[StackName];
        const output = other?.template.Outputs?.[OutputName];
        if (!other || !output) throw new Error(`Fn::GetStackOutput: no output ${OutputName} in ${StackName}`);
        return resolve(output.Value, other, stacks);
      }
      default:
        throw new Error(`cannot resolve ${key} in ${ctx.name}: ${JSON.stringify(value).slice(0, 200)}`);
    }
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v, ctx, stacks)]));
}

function ref(name: string, ctx: StackContext): string {
  const pseudo: Record<string, string> = {
    'AWS::Partition': 'aws',
    'AWS::Region': ctx.region,
    'AWS::AccountId': ACCOUNT,
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackName': ctx.name,
  };
  if (pseudo[name] !== undefined) return pseudo[name];
  const value = ctx.physical[name]?.Ref;
  if (value === undefined) throw new Error(`cannot resolve Ref ${name} in ${ctx.name}`);
  return value;
}

function attribute(id: string, attr: string, ctx: StackContext): string {
  const value = ctx.physical[id]?.[attr];
  if (value === undefined)
    throw new Error(
      `cannot resolve Fn::GetAtt ${id}.${attr} in ${ctx.name} (${ctx.template.Resources[id]?.Type ?? 'no such resource'})`,
    );
  return value;
}

function isRefTo(value: Json, logicalId: string): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && value.Ref === logicalId;
}

/** The config the test synthesizes: the example, in the test account and region, naming moto's secrets. */
export function configFor(resources: LocalResources): (c: CofreConfigInput) => CofreConfigInput {
  return (c) => ({
    ...c,
    account: ACCOUNT,
    regions: { ...c.regions, primary: REGION },
    ...(c.breakGlassRoleArn ? { breakGlassRoleArn: `arn:aws:iam::${ACCOUNT}:role/cofre-break-glass` } : {}),
    databases: (c.databases ?? []).map((db) => {
      const arn = resources.databaseSecretArns[db.id];
      if (!arn) throw new Error(`no secret made for database ${db.id}`);
      const targets = resources.restoreTargets?.[db.id];
      return { ...db, credentialsSecretArn: arn, ...(targets ? { restoreTargets: [...targets] } : {}) };
    }),
    alerts: { ...c.alerts, pagerDutyRoutingKeySecretArn: resources.pagerDutySecretArn },
    configuration: {
      ...c.configuration,
      secretArns: [resources.configSecretArn],
      ssmParameterPaths: [resources.configParameterPath],
    },
    buckets: (c.buckets ?? []).map((b) => {
      if (!b.source) {
        const local = resources.awsBuckets?.[b.bucketName];
        return local ? { ...b, bucketName: local } : b;
      }
      const local = resources.filesSources?.[b.bucketName];
      if (!local)
        throw new Error(`no source bucket and secret made for S3-compatible bucket ${b.bucketName}`);
      return {
        ...b,
        bucketName: local.bucket,
        source: { ...b.source, credentialsSecretArn: local.secretArn },
      };
    }),
  });
}

/**
 * Synthesizes the app from the example configuration pointed at `resources`, and returns every
 * runtime role's identity policies and the resource policies, resolved.
 */
export function synthesizeIam(resources: LocalResources): SynthesizedIam {
  const { app, primary, dr } = buildTestApp(configFor(resources));
  const drRegion = dr.region;
  // One synth for both templates (Template.fromStack would synthesize the app, with cdk-nag, per stack).
  const assembly = app.synth();
  const templates = {
    primary: assembly.getStackArtifact(primary.artifactId).template as CfnTemplate,
    dr: assembly.getStackArtifact(dr.artifactId).template as CfnTemplate,
  };
  const id = (c: IConstruct) => logicalIdOf(c);
  const name = (arn: string) =>
    arn
      .split(':')
      .slice(5)
      .join(':')
      .replace(/^key\//, '');
  const kms = (arn: string) => ({ Ref: name(arn), Arn: arn, KeyId: name(arn) });
  const bucket = (b: string) => ({ Ref: b, Arn: `arn:aws:s3:::${b}` });
  const table = resources.historyTable;
  const stacks: Record<string, StackContext> = {};
  stacks[dr.stackName] = {
    name: dr.stackName,
    region: drRegion,
    template: templates.dr,
    physical: physicalNames(
      { region: drRegion, template: templates.dr },
      {
        [id(dr.vault.bucket)]: bucket(resources.drVaultBucket),
        [id(dr.vault.key)]: kms(resources.drVaultKeyArn),
      },
    ),
  };
  stacks[primary.stackName] = {
    name: primary.stackName,
    region: REGION,
    template: templates.primary,
    physical: physicalNames(
      { region: REGION, template: templates.primary },
      {
        [id(primary.vault.bucket)]: bucket(resources.vaultBucket),
        [id(primary.vault.key)]: kms(resources.vaultKeyArn),
        [id(primary.history.table)]: {
          Ref: table,
          Arn: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${table}`,
        },
        [id(primary.history.key)]: kms(resources.historyKeyArn),
        [id(primary.pipeline.idempotency.table)]: {
          Ref: resources.idempotencyTable,
          Arn: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${resources.idempotencyTable}`,
        },
        [id(primary.alerts.topic)]: {
          Ref: resources.alertsTopicArn,
          TopicArn: resources.alertsTopicArn,
          TopicName: resources.alertsTopicArn.split(':').at(-1)!,
        },
        [id(primary.alerts.key)]: kms(resources.alertsKeyArn),
        [id(primary.pipeline.key.key)]: kms(resources.pipelineKeyArn),
      },
    ),
  };
  const p = stacks[primary.stackName]!;
  const resolveIn = (ctx: StackContext, value: Json) => resolve(value, ctx, stacks);

  const roles = new Map<RuntimeRoleName, RuntimeRole>();
  const environments = new Map<RuntimeRoleName, Record<string, string>>();
  const deadLetterQueues = new Map<RuntimeRoleName, { queueArn: string; keyArn?: string }>();
  for (const [role, construct, runtime] of runtimeRoles(primary)) {
    const props = p.template.Resources[id(runtime)]!.Properties ?? {};
    const env =
      role.startsWith('task:') || role.startsWith('files:')
        ? Object.fromEntries(
            (
              (props.ContainerDefinitions as { Environment?: { Name: string; Value: Json }[] }[])[0]!
                .Environment ?? []
            ).map((e) => [e.Name, resolveIn(p, e.Value) as string]),
          )
        : (resolveIn(p, (props.Environment as { Variables?: Json } | undefined)?.Variables ?? {}) as Record<
            string,
            string
          >);
    environments.set(role, env);
    const target = (props.DeadLetterConfig as { TargetArn?: Json } | undefined)?.TargetArn;
    if (target !== undefined) {
      const queueId = (target as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      const key = p.template.Resources[queueId]?.Properties?.KmsMasterKeyId;
      deadLetterQueues.set(role, {
        queueArn: resolveIn(p, target) as string,
        ...(key !== undefined ? { keyArn: resolveIn(p, key) as string } : {}),
      });
    }
    const logicalId = id(construct);
    roles.set(role, {
      name: role,
      logicalId,
      arn: p.physical[logicalId]!.Arn!,
      ...identityPolicies(p, logicalId, resolveIn),
    });
  }

  const arnOf = (c: IConstruct, attr = 'Arn') => p.physical[id(c)]![attr]!;
  const functions = new Map<string, string>();
  for (const [name, f] of Object.entries(primary.pipeline.functions)) functions.set(name, arnOf(f.function));
  functions.set('notify', arnOf(primary.alerts.notifyFunction.function));
  const consoleRestore = primary.consoleRestore;
  if (consoleRestore) {
    functions.set('restore-validate', arnOf(consoleRestore.validateFunction.function));
    functions.set('restore-record', arnOf(consoleRestore.recordFunction.function));
    functions.set('restore-rds', arnOf(consoleRestore.rdsFunction.function));
  }
  const taskDefinitions = new Map<string, string>();
  const taskRoles = new Map<string, string>();
  const executionRoles = new Map<string, string>();
  for (const [db, task] of primary.pipeline.dumpTasks) {
    taskDefinitions.set(db, arnOf(task.taskDefinition, 'Ref'));
    taskRoles.set(db, arnOf(task.taskRole));
    executionRoles.set(db, arnOf(task.executionRole));
  }
  const stateMachines = new Map<string, string>();
  const machines = {
    ...primary.pipeline.stateMachines,
    ...(consoleRestore ? { restore: consoleRestore.stateMachine } : {}),
  };
  for (const [job, machine] of Object.entries(machines)) {
    stateMachines.set(job, arnOf(machine.stateMachine, 'Ref'));
    const roleId = id(machine.stateMachine.role);
    roles.set(`sm:${job}`, {
      name: `sm:${job}`,
      logicalId: roleId,
      arn: p.physical[roleId]!.Arn!,
      ...identityPolicies(p, roleId, resolveIn),
    });
  }
  const arns = {
    functions,
    cluster: p.physical[id(primary.pipeline.cluster)]!.Arn!,
    taskDefinitions,
    taskRoles,
    executionRoles,
    stateMachines,
  };

  const resourcePolicies = new Map<string, PolicyDocument>();
  for (const ctx of Object.values(stacks)) {
    for (const [logicalId, r] of Object.entries(ctx.template.Resources)) {
      const props = r.Properties ?? {};
      if (r.Type === 'AWS::KMS::Key')
        resourcePolicies.set(
          ctx.physical[logicalId]!.Arn!,
          resolveIn(ctx, props.KeyPolicy!) as unknown as PolicyDocument,
        );
      if (r.Type === 'AWS::S3::BucketPolicy') {
        const bucketName = resolveIn(ctx, props.Bucket!) as string;
        resourcePolicies.set(
          `arn:aws:s3:::${bucketName}`,
          resolveIn(ctx, props.PolicyDocument!) as unknown as PolicyDocument,
        );
      }
      if (r.Type === 'AWS::SQS::QueuePolicy')
        for (const url of resolveIn(ctx, props.Queues!) as string[]) {
          const queueId = Object.keys(ctx.physical).find((id) => ctx.physical[id]!.QueueUrl === url);
          if (queueId)
            resourcePolicies.set(
              ctx.physical[queueId]!.Arn!,
              resolveIn(ctx, props.PolicyDocument!) as unknown as PolicyDocument,
            );
        }
      if (r.Type === 'AWS::SNS::TopicPolicy')
        for (const topic of resolveIn(ctx, props.Topics!) as string[])
          resourcePolicies.set(topic, resolveIn(ctx, props.PolicyDocument!) as unknown as PolicyDocument);
    }
  }
  return {
    account: ACCOUNT,
    region: REGION,
    roles,
    resourcePolicies,
    resources: { ...resources, drRegion },
    environments,
    deadLetterQueues,
    arns,
  };
}

/** Each runtime role: its name, the role construct, and what runs under it (function or task definition). */
function runtimeRoles(primary: CofrePrimaryStack): [RuntimeRoleName, IConstruct, IConstruct][] {
  const out: [RuntimeRoleName, IConstruct, IConstruct][] = [];
  for (const [db, task] of primary.pipeline.dumpTasks)
    out.push([`task:${db}`, task.taskRole, task.taskDefinition]);
  for (const [fn, construct] of Object.entries(primary.pipeline.functions))
    out.push([fn as RuntimeRoleName, construct.function.role!, construct.function]);
  for (const [bucket, task] of primary.filesSyncJobs?.tasks ?? [])
    out.push([`files:${bucket}`, task.taskRole, task.taskDefinition]);
  const alerts = primary.alerts;
  const lambda = (name: RuntimeRoleName, f: { function: { role?: IConstruct } & IConstruct }) =>
    out.push([name, f.function.role!, f.function]);
  lambda('notify', alerts.notifyFunction);
  lambda('freshness', alerts.freshnessFunction);
  lambda('monthly-report', alerts.monthlyReportFunction);
  if (alerts.pagerDutyFunction) lambda('pagerduty', alerts.pagerDutyFunction);
  if (alerts.backupEventsFunction) lambda('backup-events', alerts.backupEventsFunction);
  if (primary.configSnapshots) lambda('config-snapshot', primary.configSnapshots.snapshotFunction);
  if (primary.snapshotRestoreTests)
    lambda('restore-validation', primary.snapshotRestoreTests.validationFunction);
  if (primary.bucketRestoreTests)
    lambda('files-restore-validation', primary.bucketRestoreTests.validationFunction);
  if (primary.consoleRestore) {
    lambda('restore-validate', primary.consoleRestore.validateFunction);
    lambda('restore-record', primary.consoleRestore.recordFunction);
    lambda('restore-rds', primary.consoleRestore.rdsFunction);
  }
  if (primary.restoreStopped) lambda('restore-stopped', primary.restoreStopped.function);
  return out;
}

function identityPolicies(
  ctx: StackContext,
  roleId: string,
  resolveIn: (ctx: StackContext, value: Json) => Json,
): { policies: NamedPolicy[]; awsManagedPolicies: string[] } {
  const policies: NamedPolicy[] = [];
  const awsManagedPolicies: string[] = [];
  const role = ctx.template.Resources[roleId]!.Properties ?? {};
  for (const inline of (role.Policies ?? []) as { PolicyName: Json; PolicyDocument: Json }[])
    policies.push({
      name: `${roleId}/${resolveIn(ctx, inline.PolicyName) as string}`,
      policy: resolveIn(ctx, inline.PolicyDocument) as unknown as PolicyDocument,
    });
  for (const [logicalId, r] of Object.entries(ctx.template.Resources)) {
    if (r.Type !== 'AWS::IAM::Policy' && r.Type !== 'AWS::IAM::ManagedPolicy') continue;
    const attached = (r.Properties?.Roles ?? []) as Json[];
    if (attached.some((x) => isRefTo(x, roleId)))
      policies.push({
        name: logicalId,
        policy: resolveIn(ctx, r.Properties!.PolicyDocument!) as unknown as PolicyDocument,
      });
  }
  for (const managed of (role.ManagedPolicyArns ?? []) as Json[]) {
    const refId =
      typeof managed === 'object' && managed !== null && !Array.isArray(managed) ? managed.Ref : undefined;
    if (typeof refId === 'string' && ctx.template.Resources[refId]?.Type === 'AWS::IAM::ManagedPolicy') {
      const already = policies.some((x) => x.name === refId);
      if (!already)
        policies.push({
          name: refId,
          policy: resolveIn(
            ctx,
            ctx.template.Resources[refId].Properties!.PolicyDocument!,
          ) as unknown as PolicyDocument,
        });
    } else awsManagedPolicies.push(resolveIn(ctx, managed) as string);
  }
  return { policies, awsManagedPolicies };
}
