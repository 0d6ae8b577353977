// Offline audit-log verifier: node scripts/verify-audit-log.ts <export.json> [--help]
import { runVerifyAuditLog } from "../src/verifyCli.ts";

process.exitCode = await runVerifyAuditLog(process.argv.slice(2));
