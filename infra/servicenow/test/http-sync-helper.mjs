// One HTTP exchange for the RESTMessageV2 shim, run synchronously by the parent through
// child_process.execFileSync: reads {method, url, headers, body, timeout_ms} as JSON on stdin and
// prints {status, headers, body} or {error} as JSON on stdout. Always exits 0.
import { readFileSync } from 'node:fs';

if (process.argv[2] !== '--stdin') {
  // not a test file: only the shim runs it, with --stdin
  process.exit(0);
}
const request = JSON.parse(readFileSync(0, 'utf8'));
let answer;
try {
  const response = await fetch(request.url, {
    method: request.method,
    headers: request.headers,
    body: request.body === null || request.body === undefined ? undefined : request.body,
    signal: AbortSignal.timeout(request.timeout_ms || 10000),
    redirect: 'manual',
  });
  answer = {
    status: response.status,
    headers: Object.fromEntries(response.headers.entries()),
    body: await response.text(),
  };
} catch (e) {
  const cause = e && e.cause && e.cause.code ? ` (${e.cause.code})` : '';
  answer = { error: `${e && e.name === 'TimeoutError' ? 'timed out' : String(e && e.message)}${cause}` };
}
process.stdout.write(JSON.stringify(answer));
