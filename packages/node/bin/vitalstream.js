#!/usr/bin/env node
// The `vitalstream` command. Runs on Node 24 (pinned in the repo; npm scripts and npx put it first on PATH).
import { main } from "../src/cli/main.ts";

await main(process.argv);
