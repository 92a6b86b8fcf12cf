// The sc_req_item business rules and the "Send to Gatehouse" UI action, against the running Gatehouse.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  INTEGRATION_USER, TOKEN, api, approvalToken, assertNoSecretsLogged, closedPort, instance, makeRitm,
  setVariables, waitForStatus, workNotes,
} from './helpers.mjs';

const INTAKE_RULE = 'Gatehouse: send approved request item';
const CANCEL_RULE = 'Gatehouse: cancel when the request item is cancelled';
const posts = (inst, path) => inst.http.filter((h) => h.method === 'POST' && h.url.endsWith(path));

/** Approves the item in ServiceNow and answers the Gatehouse request id it got. */
async function approve(inst, ritm) {
  const fired = inst.update('sc_req_item', ritm.sysId, { approval: 'approved' });
  assert.deepEqual(fired, [INTAKE_RULE]);
  const id = inst.row('sc_req_item', ritm.sysId).values.u_gatehouse_request_id;
  assert.ok(id, `a request id is recorded; work notes: ${workNotes(inst, 'sc_req_item', ritm.sysId).join(' / ')}`);
  return id;
}

describe('request item approved', () => {
  test('posts DESIGN.md\'s intake body (requester, opened_by, variables as stored), answered 202; the request id and a work note land on the RITM', async () => {
    const inst = instance();
    const ritm = await makeRitm(inst);
    const id = await approve(inst, ritm);

    const sent = posts(inst, '/v1/requests');
    assert.equal(sent.length, 1);
    assert.equal(sent[0].response.status, 202);
    assert.deepEqual(inst.http.map((h) => `${h.method} ${new URL(h.url).pathname}`), ['POST /v1/requests', `GET /v1/requests/${id}`]);
    assert.equal(sent[0].headers.Authorization, `Bearer ${TOKEN}`);
    assert.equal(sent[0].headers['Content-Type'], 'application/json');
    assert.deepEqual(JSON.parse(sent[0].body), {
      source: { system: 'servicenow', number: ritm.number, sys_id: ritm.sysId },
      requester: { email: 'ada@example.com', name: 'Ada Lovelace', user_name: 'ada' },
      opened_by: { email: 'olga@example.com', name: 'Olga Opener', user_name: 'olga' },
      cloud: 'demo',
      image: ritm.choice.image.id,
      flavor: ritm.choice.flavor.id,
      network: ritm.choice.network.id,
      server_name: 'web-01',
      count: 2,
      justification: 'Load test environment',
      metadata: { request: ritm.requestNumber, catalog_item: 'Virtual machine (Gatehouse)' },
    });

    const { status, body } = await api('GET', `/v1/requests/${id}`);
    assert.equal(status, 200);
    assert.equal(body.status, 'pending_approval');
    assert.deepEqual(body.source, { system: 'servicenow', number: ritm.number, sys_id: ritm.sysId });
    assert.deepEqual(body.requester, { email: 'ada@example.com', name: 'Ada Lovelace', user_name: 'ada' });
    assert.deepEqual(body.opened_by, { email: 'olga@example.com', name: 'Olga Opener', user_name: 'olga' });
    assert.equal(body.cloud, 'demo');
    assert.deepEqual(body.image, { id: ritm.choice.image.id, name: ritm.choice.image.name });
    assert.deepEqual(body.flavor, { id: ritm.choice.flavor.id, name: ritm.choice.flavor.name });
    assert.deepEqual(body.network, { id: ritm.choice.network.id, name: ritm.choice.network.name });
    assert.equal(body.server_name, 'web-01');
    assert.equal(body.count, 2);
    assert.equal(body.justification, 'Load test environment');

    const notes = workNotes(inst, 'sc_req_item', ritm.sysId);
    assert.equal(notes.length, 1);
    assert.match(notes[0], new RegExp(`^Sent to Gatehouse: request ${id} \\(image ${ritm.choice.image.name}, flavor ${ritm.choice.flavor.name}, network ${ritm.choice.network.name}\\), pending_approval\\. A platform approver decides before \\d{4}-`));
    assertNoSecretsLogged(inst);
  });

  test('only a change of approval to approved sends anything', async () => {
    const inst = instance();
    const ritm = await makeRitm(inst);
    assert.deepEqual(inst.update('sc_req_item', ritm.sysId, { short_description: 'edited' }), []);
    assert.deepEqual(inst.update('sc_req_item', ritm.sysId, { approval: 'rejected' }), []);
    assert.equal(inst.http.length, 0);
    const id = await approve(inst, ritm);
    // a later update of the approved item does not send again
    assert.deepEqual(inst.update('sc_req_item', ritm.sysId, { short_description: 'again' }), []);
    assert.equal(posts(inst, '/v1/requests').length, 1);
    assert.equal(inst.row('sc_req_item', ritm.sysId).values.u_gatehouse_request_id, id);
  });

  test('a replay is safe: Send to Gatehouse for the same item gets 200 and the same request', async () => {
    const inst = instance();
    const ritm = await makeRitm(inst);
    const id = await approve(inst, ritm);
    assert.equal(inst.uiAction('ui_resend', 'sc_req_item', ritm.sysId), false, 'the button is hidden while an id is recorded');

    inst.row('sc_req_item', ritm.sysId).values.u_gatehouse_request_id = ''; // as if the first write-back was lost
    const shown = inst.uiAction('ui_resend', 'sc_req_item', ritm.sysId);
    assert.ok(shown, 'the button shows without an id');
    assert.equal(shown.redirect.getUniqueValue(), ritm.sysId);
    const sent = posts(inst, '/v1/requests');
    assert.equal(sent.length, 2);
    assert.equal(sent[1].response.status, 200);
    assert.equal(sent[1].body, sent[0].body, 'the same body, byte for byte');
    assert.equal(inst.row('sc_req_item', ritm.sysId).values.u_gatehouse_request_id, id);
    assert.match(workNotes(inst, 'sc_req_item', ritm.sysId).at(-1), new RegExp(`^Gatehouse already had this request: request ${id}`));
    assert.deepEqual(inst.messages, [{ type: 'info', msg: `Sent to Gatehouse: request ${id}` }]);
  });

  test('without requested_for nothing is sent (Gatehouse\'s requester is requested_for); a work note says why', async () => {
    const inst = instance();
    const ritm = await makeRitm(inst, { requester: 'none', onServiceNow: false });
    assert.deepEqual(inst.update('sc_req_item', ritm.sysId, { approval: 'approved' }), [INTAKE_RULE]);
    assert.equal(inst.http.length, 0);
    assert.equal(inst.row('sc_req_item', ritm.sysId).values.u_gatehouse_request_id || '', '');
    assert.match(workNotes(inst, 'sc_req_item', ritm.sysId)[0], /^Not sent to Gatehouse: the item's "Requested for" is empty or has no e-mail address\./);
  });

  test('the body holds the variables and users exactly as stored: no trimming, no lower-casing', async () => {
    const inst = instance();
    const ritm = await makeRitm(inst, {
      onServiceNow: false,
      variables: { gatehouse_server_name: ' Web-01 ', gatehouse_count: '03', gatehouse_cloud: 'demo ' },
    });
    inst.row('sys_user', inst.row('sc_req_item', ritm.sysId).values.requested_for).values.email = 'Ada@Example.com';
    const body = JSON.parse(inst.runServer('JSON.stringify(new GatehouseIntegration().buildIntake(current))', { current: inst.load('sc_req_item', ritm.sysId) }));
    assert.equal(body.server_name, ' Web-01 ');
    assert.equal(body.cloud, 'demo ');
    assert.equal(body.count, '03', 'a count that is not a clean integer goes as the text stored');
    assert.equal(body.requester.email, 'Ada@Example.com');
    assert.deepEqual(body.opened_by, { email: 'olga@example.com', name: 'Olga Opener', user_name: 'olga' });
    const clean = inst.runServer('new GatehouseIntegration()._count(t)', { t: '2' });
    assert.equal(clean, 2, 'a clean integer goes as a number');
  });

  test('a body that is not what ServiceNow holds is refused: Gatehouse reads the item back (422 naming the field)', async () => {
    const inst = instance();
    const ritm = await makeRitm(inst);
    // the shim's copy says 3 servers, the item Gatehouse reads from ServiceNow says 2
    inst.row('sc_req_item', ritm.sysId).variables.gatehouse_count = '3';
    assert.deepEqual(inst.update('sc_req_item', ritm.sysId, { approval: 'approved' }), [INTAKE_RULE]);
    const [sent] = posts(inst, '/v1/requests');
    assert.equal(sent.response.status, 422, sent.response.body);
    assert.match(workNotes(inst, 'sc_req_item', ritm.sysId)[0], /^Gatehouse refused this request: .*count/);
    assert.equal(inst.row('sc_req_item', ritm.sysId).values.u_gatehouse_request_id || '', '');
  });

  test('the lease: sent as lease_days (a number) when the item has one, and Gatehouse retires the servers that many days later', async () => {
    const inst = instance();
    const ritm = await makeRitm(inst, { variables: { gatehouse_lease_days: '30' } });
    const before = Date.now();
    const id = await approve(inst, ritm);
    const [sent] = posts(inst, '/v1/requests');
    assert.equal(sent.response.status, 202, sent.response.body);
    assert.equal(JSON.parse(sent.body).lease_days, 30);
    const { body } = await api('GET', `/v1/requests/${id}`);
    const days = (Date.parse(body.retire_at) - before) / 86400000;
    assert.ok(days > 29.99 && days < 30.01, `retire_at ${body.retire_at} is 30 days ahead`);

    const without = await makeRitm(inst);
    const buildIntake = (r) => JSON.parse(inst.runServer('JSON.stringify(new GatehouseIntegration().buildIntake(current))', { current: inst.load('sc_req_item', r.sysId) }));
    assert.equal('lease_days' in buildIntake(without), false, 'an item without a lease sends none');
  });

  test('a lease cannot be dropped or changed on the way: Gatehouse compares lease_days with the item (422 naming it)', async () => {
    const inst = instance();
    const ritm = await makeRitm(inst, { variables: { gatehouse_lease_days: '30' } });
    // the shim's copy lost the lease; the item Gatehouse reads from ServiceNow has 30 days
    inst.row('sc_req_item', ritm.sysId).variables.gatehouse_lease_days = '';
    assert.deepEqual(inst.update('sc_req_item', ritm.sysId, { approval: 'approved' }), [INTAKE_RULE]);
    const [dropped] = posts(inst, '/v1/requests');
    assert.equal(dropped.response.status, 422, dropped.response.body);
    assert.match(workNotes(inst, 'sc_req_item', ritm.sysId)[0], /^Gatehouse refused this request: lease_days: RITM\d+ was approved with a lease of "30" days/);

    inst.row('sc_req_item', ritm.sysId).variables.gatehouse_lease_days = '300';
    inst.uiAction('ui_resend', 'sc_req_item', ritm.sysId);
    assert.equal(posts(inst, '/v1/requests').at(-1).response.status, 422);
    assert.match(workNotes(inst, 'sc_req_item', ritm.sysId).at(-1), /^Gatehouse refused this request: lease_days: ServiceNow approved "30" for this item, not "300"/);
    assert.equal(inst.row('sc_req_item', ritm.sysId).values.u_gatehouse_request_id || '', '');
  });

  test('variables Gatehouse refuses: 422, a work note naming the fields, no id, and the button to send again', async () => {
    const inst = instance();
    const ritm = await makeRitm(inst, { variables: { gatehouse_server_name: 'web_01!', gatehouse_image: 'no-such-image' } });
    assert.deepEqual(inst.update('sc_req_item', ritm.sysId, { approval: 'approved' }), [INTAKE_RULE]);
    assert.equal(posts(inst, '/v1/requests')[0].response.status, 422);
    const row = inst.row('sc_req_item', ritm.sysId);
    assert.equal(row.values.u_gatehouse_request_id || '', '');
    const note = workNotes(inst, 'sc_req_item', ritm.sysId)[0];
    assert.match(note, /^Gatehouse refused this request: server_name: must be an RFC 1123 label/);
    assert.match(note, /The variables are read-only on the item: order again with corrected values, or have an admin correct them and use "Send to Gatehouse"\.$/);

    await setVariables(inst, ritm, { gatehouse_server_name: 'web-01' }); // the fulfiller corrects the server name only
    inst.uiAction('ui_resend', 'sc_req_item', ritm.sysId);
    assert.match(workNotes(inst, 'sc_req_item', ritm.sysId).at(-1), /^Gatehouse refused this request: image: /);
    await setVariables(inst, ritm, { gatehouse_image: ritm.choice.image.id });
    inst.uiAction('ui_resend', 'sc_req_item', ritm.sysId);
    assert.equal(posts(inst, '/v1/requests').at(-1).response.status, 202);
    assert.ok(inst.row('sc_req_item', ritm.sysId).values.u_gatehouse_request_id);
  });

  test('variables changed after sending: 409, reported in a work note', async () => {
    const inst = instance();
    const ritm = await makeRitm(inst);
    await approve(inst, ritm);
    const row = inst.row('sc_req_item', ritm.sysId);
    row.values.u_gatehouse_request_id = '';
    await setVariables(inst, ritm, { gatehouse_count: '3' }); // on the item itself, so ServiceNow agrees
    inst.uiAction('ui_resend', 'sc_req_item', ritm.sysId);
    assert.equal(posts(inst, '/v1/requests').at(-1).response.status, 409);
    assert.match(workNotes(inst, 'sc_req_item', ritm.sysId).at(-1), /^Gatehouse already holds a different request for RITM\d+/);
    assert.equal(inst.messages.at(-1).type, 'error');
  });

  test('an item whose catalog item does not use the variable set Gatehouse VM is left alone', async () => {
    const inst = instance();
    const ritm = await makeRitm(inst, { withVariables: false, onServiceNow: false });
    assert.deepEqual(inst.update('sc_req_item', ritm.sysId, { approval: 'approved' }), [], 'the rule\'s condition does not hold');
    assert.equal(inst.http.length, 0);
    assert.deepEqual(workNotes(inst, 'sc_req_item', ritm.sysId), []);
    assert.equal(inst.uiAction('ui_resend', 'sc_req_item', ritm.sysId), false, 'no Send to Gatehouse button either');

    // gatehouse_* variables alone do not make an item Gatehouse's: the set must be on its catalog item
    const lookalike = await makeRitm(inst, { onServiceNow: false });
    const item = inst.row('sc_req_item', lookalike.sysId).values.cat_item;
    for (const [key, row] of inst.db.io_set_item) if (row.values.sc_cat_item === item) inst.db.io_set_item.delete(key);
    assert.deepEqual(inst.update('sc_req_item', lookalike.sysId, { approval: 'approved' }), []);
    assert.equal(inst.http.length, 0);
  });

  test('Gatehouse unreachable: a work note says so and how to retry; the log has no token', async () => {
    const port = await closedPort();
    const inst = instance({ 'x_gatehouse.base_url': `http://127.0.0.1:${port}` });
    const ritm = await makeRitm(inst);
    inst.update('sc_req_item', ritm.sysId, { approval: 'approved' });
    assert.match(workNotes(inst, 'sc_req_item', ritm.sysId)[0], /^Gatehouse could not take this request \(Gatehouse could not be reached: .*\)\. Use "Send to Gatehouse"/);
    assert.match(inst.logText(), /^error: Gatehouse: POST \/v1\/requests failed/m);
    assertNoSecretsLogged(inst);
  });
});

describe('request item cancelled', () => {
  test('Closed Skipped cancels the pending Gatehouse request; history and work note say who', async () => {
    const inst = instance();
    const ritm = await makeRitm(inst);
    const id = await approve(inst, ritm);
    const fired = inst.update('sc_req_item', ritm.sysId, { state: '7', active: 'false' }, { user: 'carl.fulfiller' });
    assert.deepEqual(fired, [CANCEL_RULE]);

    const sent = posts(inst, `/v1/requests/${id}/cancel`);
    assert.equal(sent.length, 1);
    assert.equal(sent[0].response.status, 200);
    assert.deepEqual(JSON.parse(sent[0].body), {
      reason: `${ritm.number} was closed in ServiceNow (Closed Skipped) by carl.fulfiller`,
      actor: 'servicenow:carl.fulfiller',
    });
    const { body } = await api('GET', `/v1/requests/${id}`);
    assert.equal(body.status, 'cancelled');
    // The last step (the entries that record each mail sent, actor mail, aside).
    const last = body.history.filter((e) => e.actor !== 'mail').at(-1);
    assert.deepEqual(
      { actor: last.actor, from: last.from, to: last.to, note: last.note },
      { actor: 'servicenow:carl.fulfiller', from: 'pending_approval', to: 'cancelled', note: `${ritm.number} was closed in ServiceNow (Closed Skipped) by carl.fulfiller` },
    );
    assert.equal(workNotes(inst, 'sc_req_item', ritm.sysId).at(-1), `Gatehouse request ${id} cancelled; its approval links no longer work.`);
    assertNoSecretsLogged(inst);
  });

  test('Closed Incomplete (a cancelled REQ) cancels too, and a second cancel is harmless', async () => {
    const inst = instance();
    const ritm = await makeRitm(inst);
    const id = await approve(inst, ritm);
    assert.deepEqual(inst.update('sc_req_item', ritm.sysId, { state: '4', active: 'false' }), [CANCEL_RULE]);
    assert.equal((await api('GET', `/v1/requests/${id}`)).body.status, 'cancelled');
    const again = inst.runServer('new GatehouseIntegration().cancel(current)', { current: inst.load('sc_req_item', ritm.sysId) });
    assert.equal(again.cancelled, true);
  });

  test('no cancel for Closed Complete, for Gatehouse\'s own update, or without a Gatehouse request', async () => {
    const inst = instance();
    const done = await makeRitm(inst);
    await approve(inst, done);
    assert.deepEqual(inst.update('sc_req_item', done.sysId, { state: '3', active: 'false' }), []);

    const byGatehouse = await makeRitm(inst);
    await approve(inst, byGatehouse);
    assert.deepEqual(inst.update('sc_req_item', byGatehouse.sysId, { state: '4', active: 'false' }, { user: INTEGRATION_USER }), []);

    const neverSent = await makeRitm(inst);
    assert.deepEqual(inst.update('sc_req_item', neverSent.sysId, { state: '7', active: 'false' }), []);
    assert.equal(inst.http.filter((h) => h.url.endsWith('/cancel')).length, 0);
  });

  test('too late to cancel (the platform approver already approved): 409, reported in a work note', async () => {
    const inst = instance();
    const ritm = await makeRitm(inst, { variables: { gatehouse_count: '1', gatehouse_server_name: 'late-01' } });
    const id = await approve(inst, ritm);
    const token = await approvalToken(ritm.number);
    const decided = await fetch(`${process.env.GATEHOUSE_URL}/v1/approvals/${token}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ decision: 'approve', comment: 'ok' }),
    });
    assert.equal(decided.status, 200);
    await waitForStatus(id, ['approved', 'provisioning', 'active']);

    assert.deepEqual(inst.update('sc_req_item', ritm.sysId, { state: '7', active: 'false' }), [CANCEL_RULE]);
    assert.equal(posts(inst, `/v1/requests/${id}/cancel`)[0].response.status, 409);
    assert.match(workNotes(inst, 'sc_req_item', ritm.sysId).at(-1), new RegExp(`^Gatehouse request ${id} was not cancelled: it is no longer waiting for approval \\(request is (approved|provisioning|active);`));
    assert.notEqual((await api('GET', `/v1/requests/${id}`)).body.status, 'cancelled');
  });

  test('Gatehouse unreachable while cancelling: a work note, an error log without the token', async () => {
    const inst = instance();
    const ritm = await makeRitm(inst);
    const id = await approve(inst, ritm);
    inst.properties['x_gatehouse.base_url'] = `http://127.0.0.1:${await closedPort()}`;
    inst.update('sc_req_item', ritm.sysId, { state: '7', active: 'false' });
    assert.match(workNotes(inst, 'sc_req_item', ritm.sysId).at(-1), new RegExp(`^Gatehouse request ${id} could not be cancelled \\(Gatehouse could not be reached`));
    assert.match(inst.logText(), new RegExp(`^error: Gatehouse: POST /v1/requests/${id}/cancel failed`, 'm'));
    assertNoSecretsLogged(inst);
  });
});
