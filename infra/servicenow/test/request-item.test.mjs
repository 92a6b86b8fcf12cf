// The sc_req_item business rules and the "Send to Gatehouse" UI action, against the running Gatehouse.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  INTEGRATION_USER, TOKEN, api, approvalToken, assertNoSecretsLogged, closedPort, instance, makeRitm,
  waitForStatus, workNotes,
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
  test('posts DESIGN.md\'s intake body, answered 202; the request id and a work note land on the RITM', async () => {
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

  test('without requested_for the requester is opened_by', async () => {
    const inst = instance();
    const ritm = await makeRitm(inst, { requester: 'none' });
    const id = await approve(inst, ritm);
    const { body } = await api('GET', `/v1/requests/${id}`);
    assert.deepEqual(body.requester, { email: 'olga@example.com', name: 'Olga Opener', user_name: 'olga' });
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
    assert.match(note, /Correct the variables and use "Send to Gatehouse" to send it again\.$/);

    row.variables.gatehouse_server_name = 'web-01'; // the fulfiller corrects the server name only
    inst.uiAction('ui_resend', 'sc_req_item', ritm.sysId);
    assert.match(workNotes(inst, 'sc_req_item', ritm.sysId).at(-1), /^Gatehouse refused this request: image: /);
    row.variables.gatehouse_image = ritm.choice.image.id;
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
    row.variables.gatehouse_count = '3';
    inst.uiAction('ui_resend', 'sc_req_item', ritm.sysId);
    assert.equal(posts(inst, '/v1/requests').at(-1).response.status, 409);
    assert.match(workNotes(inst, 'sc_req_item', ritm.sysId).at(-1), /^Gatehouse already holds a different request for RITM\d+/);
    assert.equal(inst.messages.at(-1).type, 'error');
  });

  test('an item without the Gatehouse variables is left alone', async () => {
    const inst = instance();
    const ritm = await makeRitm(inst, { withVariables: false });
    assert.deepEqual(inst.update('sc_req_item', ritm.sysId, { approval: 'approved' }), [INTAKE_RULE]);
    assert.equal(inst.http.length, 0);
    assert.deepEqual(workNotes(inst, 'sc_req_item', ritm.sysId), []);
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
    assert.deepEqual(
      { actor: body.history.at(-1).actor, from: body.history.at(-1).from, to: body.history.at(-1).to, note: body.history.at(-1).note },
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
