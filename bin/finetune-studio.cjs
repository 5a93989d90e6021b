#!/usr/bin/env node
// The CLI runs from TypeScript sources through tsx, so every command shares one codebase with the app.
require('tsx/cjs')
require('../src/cli/index.ts').main(process.argv)
