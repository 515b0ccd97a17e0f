#!/usr/bin/env node
// `npx cofre …` from a checkout. Runs the esbuild bundle (dist/cofre.js, made by `npm ci` through
// the prepare script, ~0.5 s faster to start) when it is newer than every source file, otherwise
// the TypeScript sources through tsx, so an edit is never shadowed by a stale bundle.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `cofre: needs Node.js 24 or newer (zstd streams), this is ${process.version}; run it as "npx cofre …" from the checkout (npm ci installs Node 24)\n`,
  );
  process.exit(2);
}

const launch = require('./launch.js');
// Streaming commands run in a child with the GC tuned for streams (cli/launch.js).
if (!launch.relaunch(__filename)) start();

function start() {
  launch.watchParent();
  if (launch.bundleIsFresh()) {
    enableCompileCache();
    require(launch.BUNDLE).run();
  } else {
    require('tsx/cjs');
    // The commands are loaded with import() (cli/cofre.ts): that goes through the ESM loader.
    require('tsx/esm/api').register();
    require('./cofre.ts').run();
  }
}

/**
 * V8's compiled code for the bundle, kept between runs (Node's module.enableCompileCache): compiling
 * the 6 MB bundle is ~85 ms of every command's start (a one-row backup 0.50 → 0.41 s, side by side).
 * The cache is code this process will run, so it lives only in a directory of this user's that no
 * one else can write (`$XDG_CACHE_HOME/cofre/compile-cache`, else `~/.cache/…`, mode 0700); anything
 * else, or NODE_DISABLE_COMPILE_CACHE=1, and the bundle compiles as before.
 */
function enableCompileCache() {
  const { enableCompileCache: enable } = require('node:module');
  if (typeof enable !== 'function') return;
  try {
    const dir = compileCacheDir();
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = fs.statSync(dir);
    if (!st.isDirectory() || st.uid !== process.getuid() || (st.mode & 0o077) !== 0) return;
    enable(dir);
  } catch {
    // no usable cache directory: compile as before
  }
}

function compileCacheDir() {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'cofre', 'compile-cache');
}
