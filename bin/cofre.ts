#!/usr/bin/env node
import path from 'node:path';
import { buildCofreApp } from '../lib/app';
import { ConfigError, parseConfig } from '../lib/config';

// The configuration file: cofre.config.ts at the root, or the file named by COFRE_CONFIG.
const configFile = path.resolve(process.env.COFRE_CONFIG ?? path.join(__dirname, '..', 'cofre.config.ts'));

try {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the file is chosen at run time
  const loaded = require(configFile) as { default?: unknown };
  buildCofreApp(parseConfig(loaded.default)).app.synth();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`${path.relative(process.cwd(), configFile)}: ${error.message}`);
    process.exit(2);
  }
  throw error;
}
