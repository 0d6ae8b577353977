#!/usr/bin/env node
// `blockchain-restore` = `vitalstream restore` (the name the operators' runbooks use).
import { main } from "../src/cli/main.ts";

await main(process.argv, "restore");
