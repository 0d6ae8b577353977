#!/usr/bin/env node
// `blockchain-backup` = `vitalstream backup` (the name the operators' runbooks and CronJobs use).
import { main } from "../src/cli/main.ts";

await main(process.argv, "backup");
