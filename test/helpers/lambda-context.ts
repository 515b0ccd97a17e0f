import type { Context } from 'aws-lambda';

/** The invocation context Lambda passes a handler (what Powertools' injectLambdaContext reads). */
export function lambdaContext(functionName: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:sa-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: `req-${Math.random().toString(36).slice(2)}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => 60_000,
  } satisfies Omit<Context, 'done' | 'fail' | 'succeed'> as Context; // the deprecated callbacks: unused
}
