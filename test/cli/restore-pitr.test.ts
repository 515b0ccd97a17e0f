/**
 * CLI parity: `cofre restore --point-in-time` runs the same core code as the console's
 * `point-in-time` kind (core/aws/rds-restore.ts) against moto's RDS: a new, tagged instance
 * with the source's settings, polled until available; bad input exits 2 having created nothing.
 */
import {
  CreateDBInstanceCommand,
  CreateDBSnapshotCommand,
  DescribeDBInstancesCommand,
  ListTagsForResourceCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { beforeAll, expect, it } from 'vitest';
import { cofre } from '../helpers/cli';
import { clientConfig, describeLocalAws, localAwsEnv, uniqueName } from '../helpers/local-aws';

describeLocalAws('cofre restore --point-in-time (moto RDS)', () => {
  let rds: RDSClient;
  let source: string;
  const count = async () => (await rds.send(new DescribeDBInstancesCommand({}))).DBInstances!.length;

  beforeAll(async () => {
    rds = new RDSClient(clientConfig());
    source = uniqueName('cli-pitr');
    await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: source,
        Engine: 'mysql',
        DBInstanceClass: 'db.m6g.large',
        AllocatedStorage: 20,
        MasterUsername: 'cofre',
        MasterUserPassword: 'not-a-real-password-1',
        BackupRetentionPeriod: 3,
        MultiAZ: true,
      }),
    );
  });

  it('restores into a new instance with the source settings, tagged, and waits until it is available', async () => {
    const target = uniqueName('cli-new');
    const r = await cofre(
      [
        'restore',
        '--point-in-time',
        'latest',
        '--rds-instance',
        source,
        '--target-identifier',
        target,
        '--poll-seconds',
        '0',
        '--json',
      ],
      localAwsEnv(),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`OK ${target} is available`);
    const out = JSON.parse(r.stdout) as { status: { available: boolean }; plan: { source: string } };
    expect(out).toMatchObject({ status: { available: true }, plan: { source } });
    const made = (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: target })))
      .DBInstances![0]!;
    expect(made).toMatchObject({ DBInstanceClass: 'db.m6g.large', MultiAZ: true, Engine: 'mysql' });
    const tags = await rds.send(new ListTagsForResourceCommand({ ResourceName: made.DBInstanceArn! }));
    expect(tags.TagList?.find((t) => t.Key === 'cofre:restore')?.Value).toMatch(/^cli-\d{8}T\d{9}Z$/);
  });

  it.each([
    [
      ['--point-in-time', '2999-01-01T00:00:00Z'],
      /^cofre: --point-in-time: expected a time that has passed \(now is .+\), got 2999-01-01T00:00:00Z\nnothing was changed\n$/,
    ],
    [
      ['--point-in-time', 'latest', '--target-identifier', 'SELF'],
      /--target-identifier: expected the identifier of a new instance, got "cofre-t-cli-pitr-\d+-[0-9a-f]{6}", which already exists/,
    ],
    [
      ['--point-in-time', 'soon'],
      /--point-in-time: expected "latest" or an ISO-8601 time with its offset, got "soon"/,
    ],
    [['--point-in-time', 'latest', '--vault', 'file:///tmp/v'], /--vault: not with --point-in-time/],
  ])('exits 2 and creates nothing: %j', async (args, message) => {
    const before = await count();
    const r = await cofre(
      ['restore', '--rds-instance', source, ...args.map((a) => (a === 'SELF' ? source : a))],
      localAwsEnv(),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(await count()).toBe(before);
  });

  it('--snapshot: a recovery point of the source into a new tagged instance; one of another account exits 2', async () => {
    const snapshot = await rds.send(
      new CreateDBSnapshotCommand({
        DBInstanceIdentifier: source,
        DBSnapshotIdentifier: uniqueName('cli-rp'),
      }),
    );
    const target = uniqueName('cli-snap');
    const r = await cofre(
      [
        'restore',
        '--snapshot',
        snapshot.DBSnapshot!.DBSnapshotArn!,
        '--rds-instance',
        source,
        '--target-identifier',
        target,
        '--poll-seconds',
        '0',
      ],
      localAwsEnv(),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      `restoring ${source} from ${snapshot.DBSnapshot!.DBSnapshotArn!} into the new instance ${target}`,
    );
    const made = (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: target })))
      .DBInstances![0]!;
    expect(made).toMatchObject({ DBInstanceStatus: 'available', DBInstanceClass: 'db.m6g.large' });

    const before = await count();
    const foreign = snapshot.DBSnapshot!.DBSnapshotArn!.replace(/:\d{12}:/, ':999999999999:');
    const denied = await cofre(['restore', '--snapshot', foreign, '--rds-instance', source], localAwsEnv());
    expect(denied.code).toBe(2);
    expect(denied.stderr).toMatch(
      /^cofre: --snapshot: expected a recovery point in this account \(\d{12}\), got one in 999999999999: a restore never reads from or creates anything in another account\nnothing was changed\n$/,
    );
    expect(await count()).toBe(before);
  });

  it('without --point-in-time, a logical restore still needs --vault, --backup and --target-url', async () => {
    const r = await cofre(['restore', '--backup', 'x'], localAwsEnv());
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'cofre: --vault, --target-url: required (or --point-in-time for an RDS/Aurora restore)\n',
    );
  });
});
