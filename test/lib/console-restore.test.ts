/**
 * CDK assertions for the console restore (lib/constructs/console-restore.ts): the `restore` state
 * machine loaded from its ASL file, its Lambdas and the IAM of everything that runs a restore,
 * including what they must NOT be able to do (delete or change the source, read other databases'
 * backups, write to the vault).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { RESTORE_TAG as CORE_RESTORE_TAG } from '../../core/aws/rds-restore';
import { parseRestoreDatabases } from '../../core/aws/restore-validate';

const RESTORE_TAG = 'cofre:restore';
import { parseConfig } from '../../lib/config';
import { STATE_MACHINES_DIR } from '../../lib/constructs/asl-state-machine';
import { vaultPrefixesOf } from '../../lib/constructs/dump-task';
import type { ConsoleRestore } from '../../lib/constructs/console-restore';
import type { CofrePrimaryStack } from '../../lib/stacks/primary-stack';
import { buildTestApp, exampleConfig } from '../helpers/cdk';
import { actionsOf, arnOf, logicalIdOf, resourceOf, statementsOf } from '../helpers/template';

const config = parseConfig(exampleConfig());
let stack: CofrePrimaryStack;
let restore: ConsoleRestore;
let template: Template;
let resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;

beforeAll(() => {
  stack = buildTestApp().primary;
  restore = stack.consoleRestore!;
  template = Template.fromStack(stack);
  resources = (template.toJSON() as { Resources: typeof resources }).Resources;
});

/** Every statement of the inline policies attached to a role (by the role's logical id). */
function statementsOfRole(roleLogicalId: string) {
  return Object.values(resources)
    .filter(
      (r) =>
        r.Type === 'AWS::IAM::Policy' &&
        (r.Properties.Roles as { Ref?: string }[]).some((x) => x.Ref === roleLogicalId),
    )
    .flatMap((r) => statementsOf(r.Properties.PolicyDocument));
}
const allActions = (roleLogicalId: string) => statementsOfRole(roleLogicalId).flatMap(actionsOf);

describe('the restore state machine', () => {
  it('is restore.asl.json with every placeholder substituted, logging ALL with execution data and X-Ray on', () => {
    const machine = resourceOf(template, restore.stateMachine.stateMachine);
    const file = readFileSync(path.join(STATE_MACHINES_DIR, 'restore.asl.json'), 'utf8');
    const body = JSON.stringify(machine.Properties.DefinitionString);
    for (const state of Object.keys((JSON.parse(file) as { States: object }).States))
      expect(body).toContain(`\\"${state}\\"`);
    expect(Object.keys(machine.Properties.DefinitionSubstitutions as object).sort()).toEqual([
      'ClusterArn',
      'ContainerName',
      'NotifyFunctionArn',
      'RestoreRdsFunctionArn',
      'RestoreRecordFunctionArn',
      'RestoreValidateFunctionArn',
    ]);
    expect(machine.Properties).toMatchObject({
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: true },
      TracingConfiguration: { Enabled: true },
    });
  });

  it('may invoke only its two Lambdas and notify, and run only the dump tasks, in the Cofre cluster', () => {
    const role = logicalIdOf(restore.stateMachine.stateMachine.role);
    const statements = statementsOfRole(role);
    const invoke = statements.find((s) => actionsOf(s).includes('lambda:InvokeFunction'))!;
    const sorted = (list: unknown) => (list as unknown[]).map((x) => JSON.stringify(x)).sort();
    expect(sorted(invoke.Resource)).toEqual(
      sorted([
        arnOf(restore.validateFunction.function),
        arnOf(restore.recordFunction.function),
        arnOf(restore.rdsFunction.function),
        arnOf(stack.alerts.notifyFunction.function),
      ]),
    );
    const run = statements.find((s) => actionsOf(s).includes('ecs:RunTask'))!;
    expect(run.Resource).toEqual(
      config.databases.map((db) => ({
        Ref: logicalIdOf(stack.pipeline.dumpTasks.get(db.id)!.taskDefinition),
      })),
    );
    expect(run.Condition).toEqual({ ArnEquals: { 'ecs:cluster': arnOf(stack.pipeline.cluster) } });
    const pass = statements.find((s) => actionsOf(s).includes('iam:PassRole'))!;
    expect(pass.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } });
  });

  it('cannot touch RDS, S3, Secrets Manager or the history itself (deny by absence)', () => {
    const actions = allActions(logicalIdOf(restore.stateMachine.stateMachine.role));
    expect(
      actions.filter((a) => /^(rds|s3|secretsmanager|dynamodb|kms|backup):/.test(a) || a === '*'),
    ).toEqual([]);
  });
});

describe('the restore Lambdas', () => {
  it('restore-validate knows every configured database and the dump task it restores on', () => {
    const fn = resourceOf(template, restore.validateFunction.function);
    const variables = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    const resolved = stack.resolve(variables.COFRE_RESTORE_DATABASES) as unknown;
    const text = JSON.stringify(resolved);
    for (const db of config.databases) {
      expect(text).toContain(`\\"id\\":\\"${db.id}\\"`);
      expect(text).toContain(logicalIdOf(stack.pipeline.dumpTasks.get(db.id)!.taskDefinition));
    }
    expect(
      Object.keys(variables)
        .filter((k) => k.startsWith('COFRE_'))
        .sort(),
    ).toEqual([
      'COFRE_ACCOUNT',
      'COFRE_DR_REGION',
      'COFRE_HISTORY_TABLE',
      'COFRE_PRIMARY_REGION',
      'COFRE_RESTORE_DATABASES',
      'COFRE_VAULT_URL',
    ]);
    expect(variables).toMatchObject({
      COFRE_PRIMARY_REGION: config.regions.primary,
      COFRE_DR_REGION: config.regions.dr,
    });
  });

  it('the COFRE_RESTORE_DATABASES value parses with the runtime schema once CloudFormation resolves it', () => {
    const entries = config.databases.map((database) => ({
      database,
      taskDefinitionArn: `arn:aws:ecs:sa-east-1:111111111111:task-definition/Cofre${database.id}:1`,
    }));
    expect(parseRestoreDatabases(JSON.stringify(entries)).map((d) => d.database.id)).toEqual(
      config.databases.map((db) => db.id),
    );
  });

  it("restore-validate reads only the configured databases' prefixes of the vault, and writes nothing there", () => {
    const role = logicalIdOf(restore.validateFunction.function.role!);
    const statements = statementsOfRole(role);
    const s3 = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')));
    const actions = s3.flatMap(actionsOf);
    expect(
      actions.filter(
        (a) => /^s3:(Put|Delete|Abort|Bypass|Replicate|Restore)/.test(a) && a !== 's3:RestoreObject',
      ),
    ).toEqual([]);
    const objectResources = s3
      .filter((s) => actionsOf(s).includes('s3:GetObject'))
      .flatMap((s): unknown[] => (Array.isArray(s.Resource) ? (s.Resource as unknown[]) : [s.Resource]));
    const prefixes = config.databases.flatMap((db) => vaultPrefixesOf(db.id));
    const text = (list: unknown[]) => list.map((x) => JSON.stringify(x)).sort();
    expect(text(objectResources)).toEqual(
      text(prefixes.map((p) => ({ 'Fn::Join': ['', [arnOf(stack.vault.bucket), `/${p}*`]] }))),
    );
    const list = s3.find((s) => actionsOf(s).includes('s3:ListBucket'))!;
    expect(list.Condition).toEqual({ StringLike: { 's3:prefix': prefixes.map((p) => `${p}*`) } });
    expect(
      allActions(role).filter((a) =>
        /^(secretsmanager|ecs):|^rds:(?!Describe)|dynamodb:(Delete|Scan)/.test(a),
      ),
    ).toEqual([]);
  });

  it('restore-record may put restore records but never delete one', () => {
    const actions = allActions(logicalIdOf(restore.recordFunction.function.role!));
    expect(actions).toContain('dynamodb:PutItem');
    expect(actions.filter((a) => /Delete|^s3:|^rds:|^secretsmanager:/.test(a))).toEqual([]);
  });
});

describe('restore-rds: the role that makes point-in-time copies', () => {
  const rdsStatements = () =>
    statementsOfRole(logicalIdOf(restore.rdsFunction.function.role!)).filter((st) =>
      actionsOf(st).some((a) => a.startsWith('rds:')),
    );

  it('creates (restores, first Aurora instance, tags) only with the cofre:restore tag in the request and no other tag', () => {
    const create = rdsStatements().find((st) =>
      actionsOf(st).includes('rds:RestoreDBInstanceToPointInTime'),
    )!;
    expect(actionsOf(create).sort()).toEqual([
      'rds:AddTagsToResource',
      'rds:CreateDBInstance',
      'rds:RestoreDBClusterFromSnapshot',
      'rds:RestoreDBClusterToPointInTime',
      'rds:RestoreDBInstanceFromDBSnapshot',
      'rds:RestoreDBInstanceToPointInTime',
    ]);
    // In the primary and the DR region only (a recovery point is restored in its region).
    const regions = new Set(
      JSON.stringify(create.Resource)
        .match(/:rds:[a-z0-9-]+:/g)!
        .map((m) => m.split(':')[2]),
    );
    expect([...regions].sort()).toEqual([config.regions.dr, config.regions.primary].sort());
    expect(create.Condition).toEqual({
      StringLike: { [`aws:RequestTag/${RESTORE_TAG}`]: '?*' },
      'ForAllValues:StringEquals': { 'aws:TagKeys': [RESTORE_TAG] },
    });
    // Every other RDS action it has is read-only.
    const others = rdsStatements()
      .filter((st) => st !== create)
      .flatMap(actionsOf);
    expect(others.every((a) => /^rds:Describe/.test(a))).toBe(true);
  });

  it('cannot delete, modify, stop, reboot or fail over anything (the source included)', () => {
    const actions = allActions(logicalIdOf(restore.rdsFunction.function.role!));
    expect(
      actions.filter((a) =>
        /^rds:(Delete|Modify|Stop|Reboot|Failover|Promote|RemoveTags)|^rds:\*$|^\*$/.test(a),
      ),
    ).toEqual([]);
    expect(actions.filter((a) => /^(s3|secretsmanager|dynamodb|ecs|iam):/.test(a))).toEqual([]);
    // KMS only as RDS uses the keys of the copies.
    const kms = statementsOfRole(logicalIdOf(restore.rdsFunction.function.role!)).find((st) =>
      actionsOf(st).includes('kms:CreateGrant'),
    )!;
    expect(actionsOf(kms).sort()).toEqual(['kms:CreateGrant', 'kms:DescribeKey']);
    expect(kms.Condition).toEqual({
      StringEquals: {
        'kms:ViaService': [
          `rds.${config.regions.primary}.amazonaws.com`,
          `rds.${config.regions.dr}.amazonaws.com`,
        ],
      },
    });
  });

  it('restore-validate may only describe in RDS', () => {
    const actions = allActions(logicalIdOf(restore.validateFunction.function.role!));
    expect(actions.filter((a) => a.startsWith('rds:')).sort()).toEqual([
      'rds:DescribeDBClusterSnapshots',
      'rds:DescribeDBClusters',
      'rds:DescribeDBInstances',
      'rds:DescribeDBSnapshots',
    ]);
  });

  it('uses the tag key of the runtime (core/aws/rds-restore.ts)', () => {
    expect(RESTORE_TAG).toBe(CORE_RESTORE_TAG);
  });
});

describe("the task a console restore runs on (each database's dump task)", () => {
  it.each(config.databases.map((db) => db.id))(
    '%s: reads only its own vault prefixes, cannot delete backups, and has no RDS permission to delete or change its source',
    (id) => {
      const task = stack.pipeline.dumpTasks.get(id)!;
      const statements = statementsOfRole(logicalIdOf(task.taskRole));
      const actions = statements.flatMap(actionsOf);
      expect(actions.filter((a) => /^s3:Delete|^rds:|^backup:|^s3:\*$|^\*$/.test(a))).toEqual([]);
      const reads = statements
        .filter((s) => actionsOf(s).includes('s3:GetObject'))
        .flatMap((s): unknown[] => (Array.isArray(s.Resource) ? (s.Resource as unknown[]) : [s.Resource]));
      expect(reads).toEqual(
        vaultPrefixesOf(id).map((p) => ({ 'Fn::Join': ['', [arnOf(stack.vault.bucket), `/${p}*`]] })),
      );
    },
  );
});

it('the primary stack outputs the restore state machine ARN for the console', () => {
  const outputs = template.toJSON() as { Outputs: Record<string, { Value: unknown }> };
  const found = Object.entries(outputs.Outputs).find(([k]) => k.includes('RestoreStateMachineArn'));
  expect(found?.[1].Value).toEqual({ Ref: logicalIdOf(restore.stateMachine.stateMachine) });
});

it('is left out of a deployment without databases (nothing to restore)', () => {
  const { primary } = buildTestApp((c) => ({ ...c, databases: [] }));
  expect(primary.consoleRestore).toBeUndefined();
});

describe('restore targets (databases[].restoreTargets): the task role reads only the listed targets’ secrets', () => {
  const STAGING = 'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/staging-AbCdEf';
  const REPORTING = 'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/reporting-XyZ123';
  const withTargets = buildTestApp((c) => ({
    ...c,
    databases: c.databases!.map((db) =>
      db.id === 'app-prod'
        ? {
            ...db,
            restoreTargets: [
              { name: 'staging', credentialsSecretArn: STAGING },
              { name: 'reporting', host: 'reporting.internal', credentialsSecretArn: REPORTING },
            ],
          }
        : db,
    ),
  })).primary;
  const json = Template.fromStack(withTargets).toJSON() as { Resources: typeof resources };
  const statementsOfRoleIn = (roleLogicalId: string) =>
    Object.values(json.Resources)
      .filter(
        (r) =>
          r.Type === 'AWS::IAM::Policy' &&
          (r.Properties.Roles as { Ref?: string }[]).some((x) => x.Ref === roleLogicalId),
      )
      .flatMap((r) => statementsOf(r.Properties.PolicyDocument));
  const secretStatements = (roleLogicalId: string) =>
    statementsOfRoleIn(roleLogicalId).filter((s) =>
      actionsOf(s).some((a) => a.startsWith('secretsmanager:')),
    );

  it('app-prod: secretsmanager:GetSecretValue on exactly its two targets’ secrets, nothing else of Secrets Manager', () => {
    const task = withTargets.pipeline.dumpTasks.get('app-prod')!;
    const statements = secretStatements(logicalIdOf(task.taskRole));
    expect(statements).toEqual([
      {
        Sid: 'ReadTheRestoreTargetSecrets',
        Effect: 'Allow',
        Action: 'secretsmanager:GetSecretValue',
        Resource: [REPORTING, STAGING],
      },
    ]);
  });

  it('ledger-prod (no targets) and every other role get no secret of a target', () => {
    const task = withTargets.pipeline.dumpTasks.get('ledger-prod')!;
    expect(secretStatements(logicalIdOf(task.taskRole))).toEqual([]);
    const roles = Object.entries(json.Resources).filter(([, r]) => r.Type === 'AWS::IAM::Role');
    for (const [id] of roles) {
      if (id === logicalIdOf(withTargets.pipeline.dumpTasks.get('app-prod')!.taskRole)) continue;
      const text = JSON.stringify(statementsOfRoleIn(id));
      expect(text, id).not.toContain('cofre/staging');
      expect(text, id).not.toContain('cofre/reporting');
    }
  });

  it('the example (no targets) gives no task role any Secrets Manager permission', () => {
    for (const id of config.databases.map((db) => db.id)) {
      const task = stack.pipeline.dumpTasks.get(id)!;
      expect(
        statementsOfRole(logicalIdOf(task.taskRole))
          .flatMap(actionsOf)
          .filter((a) => a.startsWith('secretsmanager:')),
      ).toEqual([]);
    }
  });

  it('restore-validate gets the targets in COFRE_RESTORE_DATABASES (names, host, secret), so it can name them', () => {
    const fn = withTargets.consoleRestore!.validateFunction.function;
    const props = resourceOf(Template.fromStack(withTargets), fn).Properties as {
      Environment: { Variables: Record<string, unknown> };
    };
    const text = JSON.stringify(props.Environment.Variables.COFRE_RESTORE_DATABASES);
    expect(text).toContain('\\"name\\":\\"staging\\"');
    expect(text).toContain('\\"host\\":\\"reporting.internal\\"');
    expect(text).toContain(REPORTING);
  });
});
