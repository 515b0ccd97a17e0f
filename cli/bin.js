#!/usr/bin/env node
// `npx cofre …` from a checkout: runs the TypeScript CLI through tsx on the project's Node 24.
'use strict';
require('tsx/cjs');
require('./cofre.ts').run();
