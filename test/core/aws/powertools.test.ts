import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { lambdaHandler, powertools, stepHandler } from '../../../core/aws/powertools';
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

  it('lambdaHandler: the factory is built once, a failed build is retried, errors keep their name', async () => {
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
    let builds = 0;
    try {
      const pt = powertools('cofre-test');
      const handler = lambdaHandler(pt, 'alert', () => {
        builds += 1;
        if (builds === 1) throw new Error('environment variable COFRE_TOPIC_ARN is not set');
        return (event: { n: number }) => {
          pt.metrics.addMetric('BackupSucceeded', 'Count', event.n);
          if (event.n < 0) return Promise.reject(new RangeError('negative'));
          return Promise.resolve(event.n * 2);
        };
      });
      await expect(handler({ n: 1 }, lambdaContext('cofre-alert'))).rejects.toThrow(/COFRE_TOPIC_ARN/);
      expect(await handler({ n: 2 }, lambdaContext('cofre-alert'))).toBe(4);
      expect(await handler({ n: 3 }, lambdaContext('cofre-alert'))).toBe(6);
      await expect(handler({ n: -1 }, lambdaContext('cofre-alert'))).rejects.toBeInstanceOf(RangeError);
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    expect(builds).toBe(2);
    const json = lines
      .flatMap((l) => l.split('\n'))
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const logs = json.filter((j) => j.message);
    expect(logs.map((l) => l.message)).toEqual(['alert failed', 'alert done', 'alert done', 'alert failed']);
    for (const l of logs) expect(l).toMatchObject({ function_name: 'cofre-alert', service: 'cofre-test' });
    expect(logs[3]).toMatchObject({ errorName: 'RangeError', errorMessage: 'negative' });
    expect(json.filter((j) => j._aws && 'BackupSucceeded' in j)).toHaveLength(3);
  });

  it('every Lambda exports its handler through lambdaHandler or stepHandler', () => {
    const other: string[] = [];
    for (const name of readdirSync(LAMBDAS_DIR)) {
      const source = readFileSync(path.join(LAMBDAS_DIR, name, 'index.ts'), 'utf8');
      if (!/export const handler = (lambdaHandler|stepHandler)\(/.test(source)) other.push(name);
    }
    expect(other).toEqual([]);
  });

  it('the Fargate dump runner prints structured JSON lines of the same Logger', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, POWERTOOLS_LOG_LEVEL: 'INFO', POWERTOOLS_DEV: '' };
    delete env.COFRE_TASK_TOKEN;
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', path.join(__dirname, '../../../tasks/dump-runner/index.ts')],
      { env, encoding: 'utf8', timeout: 60_000 },
    );
    expect(run.status).toBe(2);
    const lines = `${run.stdout}${run.stderr}`.split('\n').filter((l) => l.trim());
    expect(lines.length).toBeGreaterThan(0);
    const json = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(json[0]).toMatchObject({
      level: 'INFO',
      service: 'cofre-dump-runner',
      message: expect.stringMatching(/COFRE_TASK_TOKEN is not set/) as unknown,
    });
    expect(json.at(-1)).toMatchObject({ level: 'ERROR', exitCode: 2 });
  });
});
