import { serve } from './serve.js';

serve().catch((err) => {
  process.stderr.write(`dockhook: failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
