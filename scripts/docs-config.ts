import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { withConfigReference } from '../lib/config/reference';

// Regenerates the configuration reference in README.md from lib/config/schema.ts.
const readmePath = path.join(__dirname, '..', 'README.md');
writeFileSync(readmePath, withConfigReference(readFileSync(readmePath, 'utf8')));
console.log(`Updated the configuration reference in ${readmePath}`);
