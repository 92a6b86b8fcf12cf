// The change_request business rule: the webhook body, its HMAC signature, the bearer fallback.
import assert from 'node:assert/strict';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { describe, test } from 'node:test';

import { TOKEN, assertNoSecretsLogged, instance, sysId } from './helpers.mjs';

const RULE = "Gatehouse: tell Gatehouse a change's approval moved";
const SECRET = process.env.GATEHOUSE_WEBHOOK_SECRET || `whsec-${randomBytes(24).toString('base64url')}`;

function makeChange(inst, values = {}) {
  return inst.insert('change_request', {
    sys_id: sysId(),
    number: `CHG${String(3000000 + Math.floor(Math.random() * 999999))}`,
    approval: 'requested',
    state: '-3',
    active: 'true',
    correlation_id: `gitlab:4242:${randomBytes(20).toString('hex')}:production`,
    ...values,
  });
}

/** What DESIGN.md says the receiver checks: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">, 5 min tolerance. */
function verifySignature(header, body, secret, now = Date.now()) {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  assert.ok(m, `signature header format: ${header}`);
  const t = Number(m[1]);
  assert.ok(Math.abs(now / 1000 - t) <= 300, 'timestamp within 5 minutes');
  const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${m[1]}.${body}`, 'utf8').digest();
  assert.ok(timingSafeEqual(expected, Buffer.from(m[2], 'hex')), 'HMAC-SHA256 of "t.body" under the secret');
  return t;
}

// The webhook function is being built (F6): today the route may be missing (404), and an unknown
// change is 404 once it exists; 202 when Gatehouse knows the change.
const ACCEPTED = [202, 404];

describe('change approval webhook', () => {
  test('fires only when the approval of a change opened by Gatehouse moves', () => {
    const inst = instance({ 'x_gatehouse.webhook_secret': SECRET });
    const chg = makeChange(inst);
    assert.deepEqual(inst.update('change_request', chg, { short_description: 'edited' }), []);
    assert.deepEqual(inst.update('change_request', chg, { approval: 'approved', state: '-2' }), [RULE]);
    assert.deepEqual(inst.update('change_request', chg, { state: '-1' }), [], 'a state move alone is not sent');
    const manual = makeChange(inst, { correlation_id: '' });
    assert.deepEqual(inst.update('change_request', manual, { approval: 'approved' }), []);
    const other = makeChange(inst, { correlation_id: 'jira:ABC-1' });
    assert.deepEqual(inst.update('change_request', other, { approval: 'rejected' }), []);
    assert.equal(inst.http.length, 1);
  });

  test('signed with X-Gatehouse-Signature as DESIGN.md says; the body is {sys_id, number, approval, state}', (t) => {
    const inst = instance({ 'x_gatehouse.webhook_secret': SECRET });
    const chg = makeChange(inst);
    const before = Date.now();
    inst.update('change_request', chg, { approval: 'approved', state: '-2' });
    const [sent] = inst.http;
    assert.equal(sent.method, 'POST');
    assert.ok(sent.url.endsWith('/v1/webhooks/servicenow'));
    assert.equal(sent.headers['Content-Type'], 'application/json');
    assert.equal(sent.headers.Authorization, undefined, 'signed calls carry no bearer token');
    const row = inst.row('change_request', chg).values;
    assert.deepEqual(JSON.parse(sent.body), { sys_id: chg, number: row.number, approval: 'approved', state: '-2' });
    assert.deepEqual(Object.keys(JSON.parse(sent.body)), ['sys_id', 'number', 'approval', 'state']);
    const stamp = verifySignature(sent.headers['X-Gatehouse-Signature'], sent.body, SECRET);
    assert.ok(stamp >= Math.floor(before / 1000) && stamp <= Math.ceil(Date.now() / 1000));
    // a tampered body or another secret does not verify
    assert.throws(() => verifySignature(sent.headers['X-Gatehouse-Signature'], sent.body.replace('approved', 'rejected'), SECRET));
    assert.throws(() => verifySignature(sent.headers['X-Gatehouse-Signature'], sent.body, `${SECRET}x`));
    // Gatehouse: 202 for a change it knows, 404 for one it does not (this one). test.sh hands the
    // same secret to serve as GATEHOUSE_WEBHOOK_SECRET; 401 means serve took no secret from there.
    const status = sent.response.status;
    t.diagnostic(`signed webhook answered ${status}`);
    assert.ok([...ACCEPTED, 401].includes(status), `webhook answered ${status}: ${sent.response.body}`);
    assertNoSecretsLogged(inst, SECRET);
  });

  test('the signature uses the clock: a fixed instant gives the documented header', () => {
    const inst = instance({ 'x_gatehouse.webhook_secret': 'fixed-secret' });
    inst.clock = () => 1795316512345; // 2026-11-22T03:01:52.345Z
    const body = '{"sys_id":"a","number":"CHG1","approval":"approved","state":"-2"}';
    const header = inst.runServer(`
      var c = new GatehouseClient();
      't=' + Math.floor(new GlideDateTime().getNumericValue() / 1000) + ',v1=' + c.hmacSha256Hex('fixed-secret', '1795316512.' + body);
    `, { body });
    const hex = createHmac('sha256', 'fixed-secret').update(`1795316512.${body}`).digest('hex');
    assert.equal(header, `t=1795316512,v1=${hex}`);
  });

  test('without a secret it falls back to the bearer token', () => {
    const inst = instance();
    const chg = makeChange(inst);
    inst.update('change_request', chg, { approval: 'rejected', state: '4' });
    const [sent] = inst.http;
    assert.equal(sent.headers.Authorization, `Bearer ${TOKEN}`);
    assert.equal(sent.headers['X-Gatehouse-Signature'], undefined);
    assert.ok(ACCEPTED.includes(sent.response.status), `webhook answered ${sent.response.status}: ${sent.response.body}`);
  });

  test('when the instance cannot compute the MAC it warns and falls back to the bearer token', () => {
    const inst = instance({ 'x_gatehouse.webhook_secret': SECRET });
    inst.server.GlideCertificateEncryption = function () {
      this.generateMac = () => { throw new Error(`no such API (key ${SECRET})`); };
    };
    const chg = makeChange(inst);
    inst.update('change_request', chg, { approval: 'approved' });
    const [sent] = inst.http;
    assert.equal(sent.headers.Authorization, `Bearer ${TOKEN}`);
    assert.equal(sent.headers['X-Gatehouse-Signature'], undefined);
    assert.match(inst.logText(), /^warn: Gatehouse: could not compute the webhook signature; sending the bearer token instead$/m);
    assertNoSecretsLogged(inst, SECRET);
  });

  test('base64ToHex matches Node for any length', () => {
    const inst = instance();
    for (let n = 0; n <= 40; n += 1) {
      const bytes = randomBytes(n);
      const hex = inst.runServer('GatehouseClient.base64ToHex(b64)', { b64: bytes.toString('base64') });
      assert.equal(hex, bytes.toString('hex'));
    }
  });
});
