// Shared by the tests: the running Gatehouse (from test.sh), its API, and request items.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

import { sysIdOf } from '../build-update-set.mjs';
import { createInstance } from './shim.mjs';

export const BASE_URL = process.env.GATEHOUSE_URL;
export const TOKEN = process.env.GATEHOUSE_TOKEN;
export const DATA_DIR = process.env.GATEHOUSE_DATA_DIR;
/** The demo's ServiceNow simulator, which Gatehouse reads request items back from. */
export const SN_SIM_URL = process.env.GATEHOUSE_SN_SIM_URL;
export const INTEGRATION_USER = 'gatehouse.integration';
/** sys_id of the variable set "Gatehouse VM" in the update set. */
export const VARIABLE_SET = sysIdOf('variable_set');

if (!BASE_URL || !TOKEN) {
  throw new Error('GATEHOUSE_URL and GATEHOUSE_TOKEN are not set: run infra/servicenow/test.sh (it starts gatehouse serve --demo)');
}

/** Calls the Gatehouse API directly (to check what the scripts did). */
export async function api(method, path, body) {
  const response = await fetch(BASE_URL + path, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, Accept: 'application/json', ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** An instance whose system properties point at the running Gatehouse. */
export function instance(properties = {}, options = {}) {
  return createInstance({
    properties: {
      'x_gatehouse.base_url': `${BASE_URL}/`,
      'x_gatehouse.api_token': TOKEN,
      'x_gatehouse.timeout_ms': '5000',
      'x_gatehouse.integration_user': INTEGRATION_USER,
      ...properties,
    },
    ...options,
  });
}

/** A port on 127.0.0.1 that nothing listens on (bound, then closed). */
export async function closedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export const sysId = () => randomBytes(16).toString('hex');
const ritmNumber = () => `RITM${String(1000000 + Math.floor(Math.random() * 8999999))}`;

/** Calls the ServiceNow simulator's control API (no credentials). */
async function sim(method, path, body) {
  assert.ok(SN_SIM_URL, 'GATEHOUSE_SN_SIM_URL is not set: run infra/servicenow/test.sh (it reads the simulator URL gatehouse serve --demo prints)');
  const response = await fetch(SN_SIM_URL + path, {
    method,
    headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `ServiceNow simulator: ${method} ${path} answered ${response.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

/** The intake variables of a RITM's gatehouse_* variables, by their short names, as stored. */
const simVariables = (vars) => {
  const out = {};
  for (const name of ['cloud', 'image', 'flavor', 'network', 'server_name', 'count', 'lease_days', 'justification']) {
    if (vars[`gatehouse_${name}`] !== undefined) out[name] = String(vars[`gatehouse_${name}`]);
  }
  return out;
};

/**
 * Creates the approved request item on the demo's ServiceNow simulator, where Gatehouse reads it
 * back at intake: POST /_sim/request_items answers {sys_id, number}.
 */
export async function simCreateItem({ requestedFor, openedBy, shortDescription, variables }) {
  const body = { approval: 'approved', short_description: shortDescription, variables: simVariables(variables) };
  if (requestedFor) body.requested_for = requestedFor;
  if (openedBy) body.opened_by = openedBy;
  const created = await sim('POST', '/_sim/request_items', body);
  assert.match(String(created && created.sys_id), /^[0-9a-f]{32}$/, 'the simulator answers the item\'s sys_id');
  assert.ok(created.number, 'the simulator answers the item\'s number');
  return created;
}

/**
 * Changes variables of an item on the simulator as an admin would on the instance (the shim's
 * copy must change too): PATCH /_sim/request_items/{sys_id}/variables with the gatehouse_* names.
 */
export async function simSetVariables(sysIdText, variables) {
  const body = {};
  for (const [name, value] of Object.entries(variables)) body[name] = String(value);
  return sim('PATCH', `/_sim/request_items/${sysIdText}/variables`, body);
}

/** Sets variables on the shim's RITM and on the simulator's copy of it. */
export async function setVariables(inst, ritm, variables) {
  Object.assign(inst.row('sc_req_item', ritm.sysId).variables, variables);
  await simSetVariables(ritm.sysId, variables);
}

/** Demo catalog choices: the first image, flavor and network that Gatehouse offers. */
export async function demoChoice() {
  const { status, body } = await api('GET', '/v1/clouds/demo/options');
  assert.equal(status, 200);
  return { image: body.images[0], flavor: body.flavors[1], network: body.networks[0], options: body };
}

/**
 * A request item of a catalog item using the "Gatehouse VM" variable set, waiting for approval,
 * with its requester (Ada), opener (Olga), catalog item and parent request. Unless `onServiceNow`
 * is false, the same item (same sys_id, number, users and variables) exists approved on the
 * demo's ServiceNow simulator, where Gatehouse checks it at intake. Returns {sysId, number, ...}.
 */
export async function makeRitm(inst, { variables = {}, values = {}, requester = 'ada', withVariables = true, onServiceNow = true } = {}) {
  const choice = await demoChoice();
  const people = {
    ada: { name: 'Ada Lovelace', email: 'ada@example.com', user_name: 'ada' },
    olga: { name: 'Olga Opener', email: 'olga@example.com', user_name: 'olga' },
  };
  const ada = inst.insert('sys_user', people.ada);
  const opener = inst.insert('sys_user', people.olga);
  const item = inst.insert('sc_cat_item', { name: 'Virtual machine (Gatehouse)' });
  if (withVariables) inst.insert('io_set_item', { sc_cat_item: item, variable_set: VARIABLE_SET });
  const request = inst.insert('sc_request', { number: `REQ${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}` });
  const vars = withVariables
    ? {
      gatehouse_cloud: 'demo',
      gatehouse_image: choice.image.id,
      gatehouse_flavor: choice.flavor.id,
      gatehouse_network: choice.network.id,
      gatehouse_server_name: 'web-01',
      gatehouse_count: '2',
      gatehouse_justification: 'Load test environment',
      ...variables,
    }
    : {};
  let id = sysId();
  let number = ritmNumber();
  if (onServiceNow) {
    const created = await simCreateItem({
      requestedFor: requester === 'ada' ? people.ada : null,
      openedBy: people.olga,
      shortDescription: 'Virtual machine (Gatehouse)',
      variables: vars,
    });
    id = String(created.sys_id);
    number = String(created.number);
  }
  inst.insert('sc_req_item', {
    sys_id: id,
    number,
    approval: 'requested',
    state: '1',
    active: 'true',
    requested_for: requester === 'ada' ? ada : '',
    opened_by: opener,
    cat_item: item,
    request,
    short_description: 'Virtual machine (Gatehouse)',
    ...values,
  }, { variables: vars });
  return { sysId: id, number, choice, requestNumber: inst.row('sc_request', request).values.number, people };
}

/** Work notes written on a record, oldest first. */
export const workNotes = (inst, table, id) => (inst.row(table, id).journal.work_notes || []).map((n) => n.value);

/** The approval link of a request from the demo outbox (mail to the demo approver). */
export async function approvalToken(ritmNumberText) {
  assert.ok(DATA_DIR, 'GATEHOUSE_DATA_DIR is not set');
  const dir = join(DATA_DIR, 'outbox');
  for (let attempt = 0; attempt < 50; attempt += 1) {
    for (const name of readdirSync(dir)) {
      const raw = readFileSync(join(dir, name), 'utf8');
      if (!/^To: approver@demo\.invalid/m.test(raw)) continue;
      const text = raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
      if (!text.includes(ritmNumberText)) continue;
      const m = /\/v1\/approvals\/([A-Za-z0-9_-]{20,})/.exec(text);
      if (m) return m[1];
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no approval mail for ${ritmNumberText}`);
}

/** Waits until the request has one of the statuses. */
export async function waitForStatus(id, statuses, ms = 10000) {
  const until = Date.now() + ms;
  let last;
  while (Date.now() < until) {
    last = await api('GET', `/v1/requests/${id}`);
    if (statuses.includes(last.body.status)) return last.body;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`request ${id} is ${last && last.body.status}, not ${statuses.join('|')}`);
}

/** The token (and webhook secret) must never be in a log line. */
export function assertNoSecretsLogged(inst, ...secrets) {
  const text = inst.logText();
  for (const s of [TOKEN, ...secrets]) assert.ok(!text.includes(s), 'a secret reached the system log');
}
