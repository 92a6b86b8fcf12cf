// Browser test of the audit page (/audit/ in `gatehouse serve --demo`), in Debian's Chromium driven
// by playwright-core. run.sh starts the server and sets GATEHOUSE_URL, GATEHOUSE_TOKEN (the demo's
// token, good for every scope, `audit` included) and SCREENSHOT_DIR.
//
// A request item is ordered on the simulated ServiceNow and submitted to intake as the portal
// does; then, by clicking: open /audit/, paste the audit token, search by the requester's e-mail,
// see the request's row, open its evidence and see its history and that its chain verifies, and
// download the export of the period as a .jsonl file. No script error, no CSP violation.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = process.env.GATEHOUSE_URL;
const token = process.env.GATEHOUSE_TOKEN;
const shots = process.env.SCREENSHOT_DIR || 'test-output/screenshots';
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
assert.ok(base && token, 'GATEHOUSE_URL and GATEHOUSE_TOKEN must be set (run tests/browser/run.sh)');
mkdirSync(shots, { recursive: true });

const step = (s) => console.log(`-- ${s}`);

/** Orders a VM for `requester` as the portal does: a request item, then intake. */
async function order(requester) {
  const variables = {
    cloud: 'demo', image: 'Ubuntu 24.04 LTS', flavor: 'm1.small', network: 'dev-net',
    server_name: 'audit-01', count: '1',
  };
  const ritm = await fetch(`${base}/dev/ritm`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ requested_for: requester, variables }),
  });
  assert.equal(ritm.status, 200, 'the simulated ServiceNow opened a request item');
  const { number, sys_id } = await ritm.json();
  const intake = await fetch(`${base}/v1/requests`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({
      source: { system: 'servicenow', number, sys_id },
      requester,
      cloud: 'demo', image: 'Ubuntu 24.04 LTS', flavor: 'm1.small', network: 'dev-net',
      server_name: 'audit-01', count: 1,
      justification: 'Audit <b>page</b> & "evidence" test',
    }),
  });
  assert.equal(intake.status, 202, `intake answers 202: ${await intake.clone().text()}`);
  return { number, id: (await intake.json()).id };
}

const browser = await chromium.launch({
  executablePath,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
});
let page;
let failed = false;
const problems = [];
try {
  const unique = Date.now().toString(36);
  const requester = { email: `auditee.${unique}@example.com`, name: 'Auditee Example', user_name: `auditee${unique}` };
  step(`order a VM for ${requester.email} (request item on the simulated ServiceNow, then intake)`);
  const { number, id } = await order(requester);
  assert.match(number, /^RITM\d{7}$/);

  const context = await browser.newContext({ viewport: { width: 1360, height: 1000 }, acceptDownloads: true });
  context.setDefaultTimeout(15_000);
  // Counts CSP violations the page's own code would not see.
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  page = await context.newPage();
  let tokenGiven = false;
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // Expected: the 401 of "who am I" before the token is pasted.
    const expected = !tokenGiven && / 401 /.test(m.text()) && m.location().url.endsWith('/v1/audit/me');
    if (m.type() === 'error' && !expected) problems.push(`console error: ${m.text()} (${m.location().url})`);
  });

  step('open /audit/: a strict CSP, nobody signed in yet');
  const resp = await page.goto(`${base}/audit/`);
  assert.equal(resp.status(), 200);
  const csp = resp.headers()['content-security-policy'] || '';
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  await page.locator('#who[data-state="none"]').waitFor();

  step('paste the audit token');
  await page.fill('#token', token);
  tokenGiven = true;
  await page.click('#use-token');
  await page.locator('#who[data-state="token"]').waitFor();
  assert.equal(await page.inputValue('#token'), '', 'the field is cleared; the token stays in sessionStorage');

  step('search by the requester\'s e-mail: the request is listed');
  await page.fill('#person', requester.email.toUpperCase());
  const searched = page.waitForResponse((r) => r.url().includes('/v1/audit/search?'));
  await page.click('#search-button');
  assert.equal((await searched).status(), 200);
  const row = page.locator(`#results tbody tr[data-number="${number}"]`);
  await row.waitFor();
  assert.equal(await page.locator('#results tbody tr').count(), 1, 'only this requester\'s request');
  assert.equal(await row.getAttribute('data-id'), id);
  assert.match(await row.locator('[data-role="people"]').textContent(), new RegExp(requester.email.replace('.', '\\.')));
  assert.equal(await row.locator('[data-role="status"]').textContent(), 'pending_approval');
  await page.screenshot({ path: join(shots, 'audit-search.png'), fullPage: true });

  step('open its evidence: its history, and the chain verifies');
  await row.locator('button[data-role="open-evidence"]').click();
  const evidence = page.locator(`#evidence[data-id="${id}"]`);
  await evidence.waitFor();
  await page.locator('#chain[data-ok="true"]').waitFor();
  assert.match(await page.textContent('#chain'), /History chain verifies/);
  const history = (await page.locator('#history tbody tr').allTextContents()).join('\n');
  assert.match(history, /pending_approval/, `the history shows the request coming in:\n${history}`);
  assert.match(history, /[0-9a-f]{64}/, 'each entry shows its hash');
  const justification = page.locator('#facts dd[data-fact="Justification"]');
  assert.equal(await justification.textContent(), 'Audit <b>page</b> & "evidence" test', 'shown as text');
  assert.equal(await page.locator('#evidence b').count(), 0, 'no markup from the record got into the page');
  await evidence.screenshot({ path: join(shots, 'audit-evidence.png') });

  step('a pipeline asks for a change: search by its environment and open the change\'s evidence');
  const environment = `audit-${unique}`;
  const started = await fetch(`${base}/dev/gate/pipelines`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ environment, title: 'Audit page change' }),
  });
  assert.equal(started.status, 201, `the demo pipeline starts: ${await started.clone().text()}`);
  const pipeline = (await started.json()).id;
  const requested = await fetch(`${base}/dev/gate/pipelines/${pipeline}/request`, { method: 'POST' });
  assert.equal(requested.status, 200, `gatehouse:request got a change: ${await requested.clone().text()}`);
  await page.fill('#person', '');
  await page.fill('#environment', environment);
  const changeSearch = page.waitForResponse((r) => r.url().includes('/v1/audit/search?'));
  await page.click('#search-button');
  assert.equal((await changeSearch).status(), 200);
  const changeRow = page.locator('#results tbody tr[data-kind="change"]');
  await changeRow.first().waitFor();
  assert.equal(await page.locator('#results tbody tr').count(), 1, 'only the change to that environment');
  await changeRow.locator('button[data-role="open-evidence"]').click();
  await page.locator(`#evidence[data-id$="/${environment}"]`).waitFor();
  await page.locator('#chain[data-ok="true"]').waitFor();
  assert.equal(await page.locator('#change-parts').isVisible(), true, 'the change\'s own parts are shown');
  assert.equal(await page.locator('#request-parts').isVisible(), false, 'a request\'s parts are not');
  const steps = (await page.locator('#change-history tbody tr').allTextContents()).join('\n');
  assert.match(steps, /requested/, `the change's history shows the pipeline asking:\n${steps}`);
  assert.match(steps, /created/, `and the change created in ServiceNow:\n${steps}`);
  const askers = (await page.locator('#requested-by tbody tr').allTextContents()).join('\n');
  assert.match(askers, /GitLab ID token/, `who asked, and how the job proved it:\n${askers}`);
  assert.match(askers, /root <admin@example\.com>/, `the user the job ran as, from its ID token:\n${askers}`);
  await page.locator('#evidence').screenshot({ path: join(shots, 'audit-change-evidence.png') });

  step('download the export of the period as a .jsonl file');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  assert.match(download.suggestedFilename(), /^gatehouse-audit-\d{4}-\d{2}-\d{2}-to-\d{4}-\d{2}-\d{2}\.jsonl$/);
  const lines = readFileSync(await download.path(), 'utf8').split('\n').filter((l) => l.trim());
  const records = lines.map((l) => JSON.parse(l));
  assert.ok(records.some((r) => r.id === id && r.chain_ok === true), `the export holds ${number}`);
  assert.ok(
    records.some((r) => r.kind === 'change' && r.environment === environment && r.chain_ok === true),
    'the export holds the change',
  );
  await page.locator('#search-status', { hasText: 'Exported' }).waitFor();

  const csp_violations = await page.evaluate(() => window.__csp);
  assert.deepEqual(csp_violations, [], 'no CSP violation');
  assert.deepEqual(problems, [], 'no script errors on the audit page');
  console.log(`ok: ${number} found by its requester on the audit page, its evidence verifies, ${records.length} records exported`);
} catch (e) {
  failed = true;
  console.error(e);
  if (problems.length) console.error(problems.join('\n'));
  if (page) await page.screenshot({ path: join(shots, 'audit-failure.png'), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
