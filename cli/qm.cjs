#!/usr/bin/env node
// The package's `qm` command: cli/qm.ts through tsx, resolved from this package whatever the cwd.
require('tsx/cjs');
require('./qm.ts')
  .main()
  .then((code) => process.exit(code));
