import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { powertools, stepHandler } from '../../../core/aws/powertools';
import { lambdaContext } from '../../helpers/lambda-context';

const LAMBDAS_DIR = path.join(__dirname, '../../../lambdas');

/** The names of the middleware on a client's stack. */
const middlewareOf = (client: S3Client) => client.middlewareStack.identify().join('\n');

describe('powertools(): one Logger, Metrics and Tracer per function', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('in Lambda, traced() adds the X-Ray subsegment middleware to an SDK v3 client', () => {
    vi.stubEnv('AWS_EXECUTION_ENV', 'AWS_Lambda_nodejs24.x');
    vi.stubEnv('POWERTOOLS_TRACE_ENABLED', 'true');
    const pt = powertools('cofre-test');
    expect(pt.tracer.isTracingEnabled()).toBe(true);
    const client = new S3Client({ region: 'sa-east-1' });
    expect(middlewareOf(client)).not.toMatch(/XRaySDKInstrumentation/);
    expect(pt.traced(client)).toBe(client);
    expect(middlewareOf(client)).toMatch(/XRaySDKInstrumentation/);
  });

  it('outside Lambda (tests, the CLI) the Tracer is off and the client is left as it is', () => {
    vi.stubEnv('AWS_EXECUTION_ENV', '');
    const pt = powertools('cofre-test');
    expect(pt.tracer.isTracingEnabled()).toBe(false);
    const client = pt.traced(new S3Client({ region: 'sa-east-1' }));
    expect(middlewareOf(client)).not.toMatch(/XRaySDKInstrumentation/);
  });

  it('names the service and puts metrics in the Cofre namespace', () => {
    const pt = powertools('cofre-test');
    const emf = JSON.stringify(pt.metrics.serializeMetrics());
    expect(emf).toMatch(/"Namespace":"Cofre"/);
    expect(emf).toMatch(/"service":"cofre-test"/);
  });

  it('every SDK client a Lambda builds is traced', () => {
    const untraced: string[] = [];
    for (const name of readdirSync(LAMBDAS_DIR)) {
      const source = readFileSync(path.join(LAMBDAS_DIR, name, 'index.ts'), 'utf8');
      for (const m of source.matchAll(/(.{0,7})new (\w+Client|KMS)\(/g))
        if (!m[1]!.endsWith('traced(')) untraced.push(`${name}: new ${m[2]}(`);
    }
    expect(untraced).toEqual([]);
  });

  it('stepHandler: the invocation context on each log line, metrics flushed even on failure, a named error', async () => {
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'INFO');
    vi.stubEnv('POWERTOOLS_DEV', '');
    const lines: string[] = [];
    const capture = (chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    };
    const spies = [
      vi.spyOn(process.stdout, 'write').mockImplementation(capture),
      vi.spyOn(process.stderr, 'write').mockImplementation(capture),
    ];
    try {
      const pt = powertools('cofre-test');
      const handler = stepHandler(pt, 'demo', (event: { fail: boolean }) => {
        pt.metrics.addMetric('BackupSucceeded', 'Count', 1);
        if (event.fail)
          return Promise.reject(Object.assign(new Error('bad field'), { name: 'BadInputError' }));
        return Promise.resolve('ok');
      });
      expect(await handler({ fail: false }, lambdaContext('cofre-demo'))).toBe('ok');
      await expect(handler({ fail: true }, lambdaContext('cofre-demo'))).rejects.toMatchObject({
        name: 'Cofre.TaskFailed',
        message: 'bad field',
      });
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    const json = lines
      .flatMap((l) => l.split('\n'))
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const logs = json.filter((j) => j.message);
    expect(logs.map((l) => l.message)).toEqual(['demo done', 'demo failed']);
    for (const l of logs) expect(l).toMatchObject({ function_name: 'cofre-demo', service: 'cofre-test' });
    expect(json.filter((j) => j._aws && 'BackupSucceeded' in j)).toHaveLength(2);
  });
});
