/**
 * Once per `npm test` (vitest globalSetup): starts the local AWS (moto server) and hands its
 * endpoint to every test file through `inject('motoEndpoint')`. Without moto the AWS suites skip
 * with the reason printed (`inject('motoMissing')`), except under CI=true, where they fail.
 */
import type { TestProject } from 'vitest/node';
import { findMotoServer, startMotoServer } from './moto-server';

declare module 'vitest' {
  export interface ProvidedContext {
    motoEndpoint: string;
    motoMissing: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const found = findMotoServer();
  if (!found.bin) {
    project.provide('motoEndpoint', '');
    project.provide('motoMissing', found.reason ?? 'moto_server not found');
    return async () => {};
  }
  const server = await startMotoServer(found.bin);
  project.provide('motoEndpoint', server.endpoint);
  project.provide('motoMissing', '');
  return () => server.stop();
}
