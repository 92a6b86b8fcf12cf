// Browser test of the demo portal (/dev/ in `gatehouse serve --demo`), in Debian's Chromium driven
// by playwright-core. run.sh starts the server and sets GATEHOUSE_URL and SCREENSHOT_DIR.
//
// The whole product, by clicking: order a VM through the catalog form (after a rejected try that
// shows the server's field error next to the field), open the approver's mail in the outbox,
// follow its Approve link, press Approve on the confirmation page, go back to the portal and wait
// until the request is active with an address. Then the change gate: a pipeline whose change the
// Assess group and the CAB approve proceeds, deploys and closes the change; a rejected one is
// blocked and its change cancelled.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = process.env.GATEHOUSE_URL;
const shots = process.env.SCREENSHOT_DIR || 'test-output/screenshots';
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const approver = 'approver@demo.invalid';
assert.ok(base, 'GATEHOUSE_URL must be set (run tests/browser/run.sh)');
mkdirSync(shots, { recursive: true });

const step = (s) => console.log(`-- ${s}`);
const shot = async (page, name, opts = {}) => {
  const path = join(shots, name);
  await page.screenshot({ path, ...opts });
  console.log(`   screenshot ${path}`);
};

/**
 * The change gate section: a pipeline approved by the Assess group and then the CAB proceeds,
 * deploys and closes its change; a second one, rejected, is blocked and its change cancelled.
 * Each step's view shows the change as ServiceNow shows it, the gate's decision and the MR note.
 */
async function walkTheChangeGate(page) {
  const pipeline = (id, attrs = '') => page.locator(`article.pipeline[data-pipeline="${id}"]${attrs}`);
  const start = async (title) => {
    await page.fill('#gate-commit', title);
    const started = page.waitForResponse((r) => r.url().endsWith('/dev/gate/pipelines') && r.request().method() === 'POST');
    const requested = page.waitForResponse((r) => /\/dev\/gate\/pipelines\/\d+\/request$/.test(r.url()));
    await page.click('#gate-start-button');
    const answer = await started;
    assert.equal(answer.status(), 201, 'the pipeline is created in the GitLab simulator');
    assert.equal((await requested).status(), 200, 'gatehouse:request got a change');
    return (await answer.json()).id;
  };
  const click = async (id, step) => {
    const done = page.waitForResponse((r) => r.url().endsWith(`/dev/gate/pipelines/${id}/${step}`));
    await pipeline(id).locator(`button[data-step="${step}"]`).click();
    return (await done).status();
  };
  const jobStatus = (id, job) => pipeline(id).locator(`tr[data-job="${job}"] td.status`);
  const mrNote = async (id) => (await pipeline(id).locator('[data-role="mr-note"]').textContent()) || '';

  step('change gate: start a pipeline; its change waits in Assess');
  await page.locator('#gate').scrollIntoViewIfNeeded();
  const first = await start('Add the spring sale banner');
  const card = pipeline(first);
  await pipeline(first, '[data-state="Assess"][data-decision="wait"]').waitFor();
  const closed = await card.getAttribute('data-number');
  assert.match(closed, /^CHG\d{7}$/);
  assert.equal(await jobStatus(first, 'gatehouse:request').textContent(), 'success');
  assert.equal(await jobStatus(first, 'gatehouse:verify').textContent(), 'manual');
  assert.ok((await mrNote(first)).includes(closed), 'the MR note names the change');
  assert.match(await card.locator('[data-role="reason"]').textContent(), /waiting for approval/);
  await card.screenshot({ path: join(shots, 'gate-requested.png') });

  step('change gate: a deploy before the gate opened is refused; the problem is shown');
  assert.equal(await click(first, 'deploy'), 409);
  const problem = card.locator('[data-role="problem"]');
  await problem.filter({ hasText: 'Conflict' }).waitFor();
  assert.match(await problem.textContent(), /^Conflict: .*gatehouse:verify/);

  step('change gate: the Assess group approves (Authorize), then the CAB (Scheduled): proceed');
  assert.equal(await click(first, 'approve-assess'), 200);
  await pipeline(first, '[data-state="Authorize"][data-decision="wait"]').waitFor();
  assert.equal(await problem.textContent(), '', 'the next step cleared the problem');
  assert.equal(await click(first, 'approve-cab'), 200);
  await pipeline(first, '[data-state="Scheduled"][data-approval="approved"][data-decision="proceed"]').waitFor();
  // Gatehouse acts only on proceed: it played the blocking manual verify job.
  assert.equal(await jobStatus(first, 'gatehouse:verify').textContent(), 'pending');
  assert.match(await mrNote(first), /proceed/);

  step('change gate: verify proceeds; deploy; report success: the change is Closed');
  assert.equal(await click(first, 'verify'), 200);
  await card.locator('[data-role="outcome"][data-step="verify"]', { hasText: 'proceed' }).waitFor();
  assert.equal(await jobStatus(first, 'gatehouse:verify').textContent(), 'success');
  assert.equal(await click(first, 'deploy'), 200);
  await jobStatus(first, 'deploy').filter({ hasText: 'running' }).waitFor();
  assert.equal(await click(first, 'report-success'), 200);
  await pipeline(first, '[data-state="Closed"]').waitFor();
  assert.equal(await jobStatus(first, 'gatehouse:report').textContent(), 'success');
  const note = await mrNote(first);
  assert.ok(/Deployment/.test(note) && /success/.test(note), `the MR note says the deployment:\n${note}`);
  assert.match(await card.locator('[data-role="work-notes"]').textContent(), /Deployment to production succeeded/);
  await card.screenshot({ path: join(shots, 'gate-closed.png') });

  step('change gate: a second pipeline, rejected: blocked and its change Canceled');
  const title = 'Try the <img src=x> & "risky" <b>thing</b>';
  const second = await start(title);
  await pipeline(second, '[data-state="Assess"]').waitFor();
  assert.equal(await click(second, 'reject'), 200);
  await pipeline(second, '[data-decision="blocked"][data-state="Canceled"]').waitFor();
  const rejected = pipeline(second);
  const canceled = await rejected.getAttribute('data-number');
  assert.notEqual(canceled, closed, 'a new change for the new commit');
  assert.match(await rejected.locator('[data-role="reason"]').textContent(), /rejected/);
  assert.match(await mrNote(second), /blocked/);
  assert.equal(await rejected.locator('[data-role="commit"]').textContent(), title, 'the title is shown as text');
  assert.equal(await page.locator('#gate img, #gate b').count(), 0, 'no markup from the pipeline got into the page');
  await rejected.screenshot({ path: join(shots, 'gate-rejected.png') });
  await page.locator('#gate').screenshot({ path: join(shots, 'gate.png') });
  console.log(`   screenshots ${join(shots, 'gate-*.png')} and gate.png`);
  return { closed, canceled };
}

const browser = await chromium.launch({
  executablePath,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
let page;
let failed = false;
const problems = [];
try {
  const context = await browser.newContext({ viewport: { width: 1360, height: 1000 } });
  context.setDefaultTimeout(15_000);
  page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    d.dismiss();
  });
  page.on('console', (m) => {
    // The expected failures: the 422 of the order with a bad server name, and the 409 of the
    // change gate's deploy before the gate opened.
    const url = m.location().url;
    const expected =
      (/ 422 /.test(m.text()) && url.endsWith('/v1/requests')) ||
      (/ 409 /.test(m.text()) && /\/dev\/gate\/pipelines\/\d+\/deploy$/.test(url));
    if (m.type() === 'error' && !expected) problems.push(`console error: ${m.text()} (${m.location().url})`);
  });

  step('open the portal');
  const resp = await page.goto(`${base}/dev/`);
  assert.equal(resp.status(), 200);
  await page.getByText('Calling the API as ServiceNow').waitFor();

  step('choose the cloud; one options call fills image, flavor and network');
  const optionsCalls = [];
  page.on('request', (r) => r.url().includes('/options') && optionsCalls.push(r.url()));
  await page.locator('#cloud option[value="demo"]').waitFor({ state: 'attached' });
  await page.locator('#order[data-options-for="demo"]').waitFor({ state: 'attached' }); // the auto-selected single cloud
  optionsCalls.length = 0;
  await page.selectOption('#cloud', '');
  await page.selectOption('#cloud', 'demo');
  await page.locator('#order[data-options-for="demo"]').waitFor({ state: 'attached' });
  assert.equal(optionsCalls.length, 1, `one options call per cloud change, saw ${optionsCalls.join(', ')}`);
  for (const id of ['image', 'flavor', 'network']) {
    assert.ok(await page.locator(`#${id}`).isEnabled(), `${id} is enabled`);
    assert.ok((await page.locator(`#${id} option`).count()) > 1, `${id} has options`);
  }
  await page.selectOption('#image', { label: 'Ubuntu 24.04 LTS' });
  await page.selectOption('#flavor', { label: 'm1.small — 1 vCPU, 2 GiB RAM, 20 GB disk' });

  step("a name that is not an RFC 1123 label: the server's 422 shows next to the field");
  await page.fill('#server_name', 'Web_01');
  await page.click('#submit');
  const nameError = page.locator('.field-error[data-error-for="server_name"]');
  await nameError.filter({ hasText: 'RFC 1123' }).waitFor();
  assert.equal(await page.getAttribute('#server_name', 'aria-invalid'), 'true');
  await shot(page, 'form-error.png');

  step('fill the form and order');
  await page.fill('#server_name', 'browser-01');
  // Markup in a field is shown as text everywhere (the portal, the mails, the approval page).
  const justification = 'Load test before the <b>spring</b> sale & "launch"';
  await page.fill('#justification', justification);
  assert.equal(await nameError.textContent(), '', 'editing the field cleared its error');
  await shot(page, 'form.png');
  const posted = page.waitForResponse((r) => r.url().endsWith('/v1/requests') && r.request().method() === 'POST');
  await page.click('#submit');
  const answer = await posted;
  assert.equal(answer.status(), 202, 'intake answers 202');
  const sent = answer.request().postDataJSON();
  assert.equal(sent.source.system, 'servicenow');
  // Ordering opened the request item on the simulated ServiceNow, approved, with the order's
  // requester and variables: Gatehouse read it back before answering 202.
  const number = sent.source.number;
  assert.match(number, /^RITM\d{7}$/);
  assert.equal((await page.textContent('#ritm')).trim(), number);
  assert.match((await page.textContent('#sys-id')).trim(), /^[0-9a-f]{32}$/);
  assert.equal(sent.server_name, 'browser-01');
  assert.equal(sent.count, 1);
  await page.locator('#form-status.good').filter({ hasText: number }).waitFor();

  step('the request is listed, waiting for approval');
  const request = page.locator(`li.request[data-number="${number}"]`);
  await request.locator('[data-role="status"]', { hasText: 'pending_approval' }).waitFor();

  step("open the approver's mail in the outbox and click Approve");
  const mail = page
    .locator(`article.mail[data-to="${approver}"]`)
    .filter({ has: page.locator('.subject', { hasText: `Approval needed: ${number}` }) });
  await mail.waitFor();
  await mail.scrollIntoViewIfNeeded();
  const approveLink = mail.locator('iframe.mail-body').contentFrame().getByRole('link', { name: 'Approve' });
  const [confirmation] = await Promise.all([context.waitForEvent('page'), approveLink.click()]);
  await confirmation.waitForLoadState();
  assert.match(confirmation.url(), /\/v1\/approvals\/[A-Za-z0-9_-]+\?decision=approve$/);

  step('the confirmation page changed nothing yet; press Approve');
  await confirmation.getByRole('heading', { name: `Approve ${number}?` }).waitFor();
  assert.equal(await request.getAttribute('data-status'), 'pending_approval');
  await shot(confirmation, 'confirmation.png');
  const decided = confirmation.waitForResponse((r) => r.request().method() === 'POST');
  await confirmation.getByRole('button', { name: 'Approve' }).click();
  assert.equal((await decided).status(), 200, 'the decision is taken');
  await confirmation.getByText(number).first().waitFor();
  await shot(confirmation, 'approved.png');
  await confirmation.close();

  step('back to the portal: the request becomes active with an address');
  await page.bringToFront();
  await request.locator('[data-role="status"]', { hasText: 'active' }).waitFor({ timeout: 60_000 });
  const address = (await request.locator('[data-role="addresses"]').textContent()).trim();
  assert.match(address, /^\d{1,3}(\.\d{1,3}){3}/, `an IPv4 address, got "${address}"`);
  // Expanded on submit: its servers and history are on show.
  const body = request.locator('.request-body');
  await body.waitFor();
  await body.locator('table.servers td', { hasText: 'ACTIVE' }).first().waitFor();
  const shown = body.locator('dl.facts dt', { hasText: 'Justification' }).locator('xpath=following-sibling::dd[1]');
  assert.equal(await shown.textContent(), justification, 'the justification is shown as text');
  assert.equal(await page.locator('#requests b').count(), 0, 'no markup from the request got into the page');
  const history = await body.locator('table.history tbody tr').allTextContents();
  const changes = history.join('\n');
  for (const to of ['approved', 'provisioning', 'active']) {
    assert.ok(changes.includes(`→ ${to}`), `history shows → ${to}:\n${changes}`);
  }
  assert.ok(changes.includes(approver), `history names the approver:\n${changes}`);
  // Its approval stages: without a policy file, one stage of the demo approver, passed.
  const stages = (await body.locator('table.stages tbody tr').allTextContents()).join('\n');
  assert.ok(stages.includes('passed') && stages.includes(approver), `the stage shows who approved:\n${stages}`);

  // With the demo's simulated ServiceNow, Gatehouse's work notes on the RITM show beside it.
  const demo = await (await page.request.get(`${base}/dev/config.json`)).json();
  if (demo.servicenow) {
    step('the work notes Gatehouse wrote on the RITM are shown');
    await body.locator('ul.work-notes li').first().waitFor({ timeout: 30_000 });
  }

  step("the requester's mail says it is ready");
  await page
    .locator('article.mail[data-to="ada@example.com"] .subject', { hasText: `Ready: ${number}` })
    .waitFor({ timeout: 30_000 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, 'request-active.png');
  await request.screenshot({ path: join(shots, 'request-active-detail.png') });
  // Frames below the fold paint once they have been on screen.
  await page.locator('#outbox').scrollIntoViewIfNeeded();
  await page.waitForTimeout(300);
  await shot(page, 'portal.png', { fullPage: true });

  const gate = await walkTheChangeGate(page);

  assert.deepEqual(problems, [], 'no script errors on the portal');
  console.log(`ok: ${number} ordered, approved by mail and active at ${address}`);
  console.log(`ok: ${gate.closed} approved by the Assess group and the CAB, deployed and closed; ${gate.canceled} rejected and cancelled`);
} catch (e) {
  failed = true;
  console.error(e);
  if (problems.length) console.error(problems.join('\n'));
  if (page) await page.screenshot({ path: join(shots, 'failure.png'), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
