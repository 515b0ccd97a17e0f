import { defineConfig } from './lib/config';

/**
 * Example deployment: a health-records platform in São Paulo with its DR copy in N. Virginia.
 * Every id below is a placeholder, so `npm run synth` works without an AWS account. Replace
 * them with your own before `npx cdk deploy --all`. The configuration reference in README.md
 * lists every field and its default.
 */
export default defineConfig({
  account: '111111111111',
  regions: { primary: 'sa-east-1', dr: 'us-east-1' },
  timeZone: 'America/Sao_Paulo',
  breakGlassRoleArn: 'arn:aws:iam::111111111111:role/cofre-break-glass',
  databases: [
    {
      id: 'app-prod',
      engine: 'postgres',
      rdsInstanceId: 'app-prod',
      databases: 'all',
      excludeDatabases: ['rdsadmin'],
      credentialsSecretArn: 'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/app-prod-AbCdEf',
      network: {
        vpcId: 'vpc-0123456789abcdef0',
        subnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
        securityGroupId: 'sg-0123456789abcdef0',
      },
      snapshotRestoreTest: {
        dbSubnetGroupName: 'app-prod-subnets',
        vpcSecurityGroupIds: ['sg-0123456789abcdef2'],
      },
      dataClass: 'health',
      tenants: { table: 'public.clinics', keyColumn: 'id', tenantColumn: 'clinic_id' },
    },
    {
      id: 'ledger-prod',
      engine: 'mysql',
      host: 'ledger.internal.example.com',
      port: 3306,
      databases: ['ledger'],
      credentialsSecretArn: 'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/ledger-prod-AbCdEf',
      network: {
        vpcId: 'vpc-0123456789abcdef0',
        subnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
        securityGroupId: 'sg-0123456789abcdef1',
      },
      dataClass: 'accounting',
      tenants: { table: 'companies', keyColumn: 'id', tenantColumn: 'tenantId' },
    },
  ],
  // The clients' XML/PDF tax documents and receipts (accounting: kept 5 years): AWS Backup,
  // continuous + daily + weekly + yearly, copied to the DR region.
  buckets: [
    { bucketName: 'app-prod-documents', dataClass: 'accounting' },
    // Residents' attachments kept in a self-hosted MinIO (health): a Fargate task copies the tenant
    // folders into the vault's files/clinic-attachments/ daily (full on Sundays) and checks a sample
    // weekly against the store.
    {
      bucketName: 'clinic-attachments',
      dataClass: 'health',
      prefixes: ['tenants/'],
      source: {
        endpoint: 'https://minio.internal.example.com:9000',
        credentialsSecretArn: 'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/minio-AbCdEf',
        network: {
          subnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
          securityGroupId: 'sg-0123456789abcdef3',
        },
      },
    },
  ],
  configuration: {
    secretArns: ['arn:aws:secretsmanager:sa-east-1:111111111111:secret:app-prod/config-AbCdEf'],
    ssmParameterPaths: ['/app/prod/'],
  },
  alerts: {
    emails: ['ops@example.com'],
    pagerDutyRoutingKeySecretArn:
      'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/pagerduty-AbCdEf',
  },
});
