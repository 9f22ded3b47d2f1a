// Must be imported before anything that builds a zod schema (shared/api.ts does so at load).
// Zod compiles object parsers with `new Function` when it can, and merely probing for that is
// reported as a violation of the host's CSP (script-src 'self'); jitless mode never tries.
import { z } from 'zod';

z.config({ jitless: true });
