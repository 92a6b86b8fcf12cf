// The audit page (/audit/): search the records touched in a period, open their evidence, download
// the export. Every value from the server is put into the page as text (textContent), never as
// markup. Credentials: an audit token kept in this tab's sessionStorage and sent as a bearer
// token, or the auditor's session cookie after "sign in" (sent by the browser on its own).
'use strict';

const TOKEN_KEY = 'gatehouse.audit.token';
const DAY_MS = 24 * 3600 * 1000;

const $ = (id) => document.getElementById(id);

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

/** A call to the audit API with the credentials at hand; answers the Response. */
function call(path) {
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  return fetch(path, { headers, credentials: 'same-origin', cache: 'no-store' });
}

/** The problem+json of a failed answer, as one line and a list of field errors. */
async function problemOf(resp) {
  let body = {};
  try {
    body = await resp.json();
  } catch {
    // not JSON: the status says enough
  }
  const title = body.title || `HTTP ${resp.status}`;
  const detail = body.detail ? `: ${body.detail}` : '';
  const errors = Array.isArray(body.errors) ? body.errors : [];
  return { status: resp.status, line: `${title}${detail}`, errors };
}

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

/** A value as text: null as a dash, lists joined, objects as JSON. */
function text(v) {
  if (v === null || v === undefined || v === '') return '—';
  if (Array.isArray(v)) return v.length ? v.map(text).join(', ') : '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function person(p) {
  if (!p) return '—';
  return p.name ? `${p.name} <${p.email}>` : text(p.email);
}

function showStatus(message, problem) {
  const box = $('search-status');
  box.replaceChildren();
  box.className = problem ? 'error' : '';
  box.append(document.createTextNode(message));
  if (problem && problem.errors.length) {
    const list = el('ul');
    for (const e of problem.errors) list.append(el('li', `${e.field}: ${e.message}`, { 'data-field': e.field }));
    box.append(list);
  }
}

// ---------------------------------------------------------------------------------------------
// Who is calling.

async function refreshWho() {
  const who = $('who');
  const resp = await call('/v1/audit/me');
  if (resp.ok) {
    const me = await resp.json();
    if (me.via === 'sign_in') {
      who.dataset.state = 'signed-in';
      who.textContent = `Signed in as ${me.email} (at ${me.issuer}, until ${me.expires_at}).`;
    } else {
      who.dataset.state = 'token';
      who.textContent = 'Using an audit token.';
    }
    return true;
  }
  const problem = await problemOf(resp);
  who.dataset.state = 'none';
  who.textContent =
    resp.status === 401
      ? 'Not signed in: paste an audit token, or sign in.'
      : `This token cannot read the audit records (${problem.line}).`;
  return false;
}

// ---------------------------------------------------------------------------------------------
// The period and the search.

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

/** since and until (RFC 3339, UTC) from the From and To dates; To is inclusive. */
function period() {
  const from = $('from').value;
  const to = $('to').value;
  if (!from || !to) return null;
  const until = new Date(Date.parse(`${to}T00:00:00Z`) + DAY_MS);
  return { since: `${from}T00:00:00Z`, until: until.toISOString().replace('.000Z', 'Z'), from, to };
}

let lastQuery = null;

function searchParams(p, cursor) {
  const q = new URLSearchParams({ since: p.since, until: p.until });
  for (const name of ['number', 'person', 'cloud', 'environment', 'status']) {
    const v = $(name).value.trim();
    if (v) q.set(name, v);
  }
  if (cursor) q.set('cursor', cursor);
  return q;
}

function resultRow(r) {
  const row = el('tr', null, { 'data-id': r.id, 'data-kind': r.kind, 'data-number': r.number });
  row.append(
    el('td', r.number, { 'data-role': 'number' }),
    el('td', r.kind),
    el('td', r.title, { 'data-role': 'title' }),
    el('td', text(r.people), { 'data-role': 'people' }),
    el('td', text(r.cloud)),
    el('td', text(r.environment)),
    el('td', r.status, { 'data-role': 'status' }),
    el('td', r.updated_at),
  );
  const cell = el('td');
  const open = el('button', 'Evidence', { type: 'button', 'data-role': 'open-evidence' });
  open.addEventListener('click', () => openEvidence(r, row));
  cell.append(open);
  row.append(cell);
  return row;
}

async function runSearch(cursor) {
  const p = cursor && lastQuery ? lastQuery.period : period();
  if (!p) {
    showStatus('Give the period: From and To.', { errors: [] });
    return;
  }
  const params = cursor && lastQuery ? new URLSearchParams(lastQuery.params) : searchParams(p);
  if (cursor) params.set('cursor', cursor);
  const button = $('search-button');
  button.disabled = true;
  try {
    const resp = await call(`/v1/audit/search?${params}`);
    if (!resp.ok) {
      const problem = await problemOf(resp);
      showStatus(problem.line, problem);
      return;
    }
    const answer = await resp.json();
    const table = $('results');
    const body = table.tBodies[0];
    if (!cursor) body.replaceChildren();
    for (const r of answer.results) body.append(resultRow(r));
    table.hidden = body.rows.length === 0;
    const base = new URLSearchParams(params);
    base.delete('cursor');
    lastQuery = { period: p, params: base.toString(), next: answer.next_cursor };
    $('more').hidden = !answer.next_cursor;
    const shown = body.rows.length;
    const more = answer.next_cursor ? ' More records remain in the period: press More results.' : '';
    showStatus(`${shown} ${shown === 1 ? 'record' : 'records'} found (${answer.scanned} read).${more}`);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Evidence.

function fillTable(id, items, columns, empty) {
  const body = $(id).tBodies[0];
  body.replaceChildren();
  const list = Array.isArray(items) ? items : [];
  if (!list.length) {
    const row = el('tr');
    row.append(el('td', empty, { colspan: String(columns.length), class: 'note' }));
    body.append(row);
    return;
  }
  for (const item of list) {
    const row = el('tr');
    for (const c of columns) row.append(el('td', text(item[c]), c === 'hash' ? { class: 'hash' } : {}));
    body.append(row);
  }
}

function fillFacts(id, pairs) {
  const dl = $(id);
  dl.replaceChildren();
  for (const [k, v] of pairs) dl.append(el('dt', k), el('dd', text(v), { 'data-fact': k }));
}

/** A change record's evidence: the change, who asked for it, and its history of steps. */
function renderChangeEvidence(record) {
  const gitlab = record.gitlab || {};
  const servicenow = record.servicenow || {};
  fillFacts('facts', [
    ['Status', record.status],
    ['ServiceNow change', `${text(servicenow.number)} (sys_id ${text(servicenow.sys_id)})`],
    ['Project', `${text(gitlab.project_path)} (${text(gitlab.project_id)})`],
    ['Commit', gitlab.sha],
    ['Environment', record.environment],
    ['Title', record.title],
    ['Pipeline', gitlab.pipeline_url],
    ['Merge request', gitlab.merge_request_iid],
    ['Emergency', record.emergency_reason],
    ['Verify job played', gitlab.played_job],
    ['Deployment', record.deployment],
    ['Created', record.created_at],
    ['Last written', record.updated_at],
  ]);
  fillTable('requested-by', record.requested_by, ['at', 'actor', 'user', 'proof'], 'No request recorded.');
  fillTable('change-history', record.history, ['at', 'actor', 'user', 'event', 'note', 'proof', 'hash'], 'No history.');
}

function renderEvidence(record) {
  const isChange = record.kind === 'change';
  for (const [id, shown] of [
    ['request-parts', !isChange], ['mail-parts', !isChange], ['history', !isChange],
    ['change-parts', isChange], ['change-history', isChange],
  ]) $(id).hidden = !shown;
  const request = record.request || {};
  const number = (record.servicenow && record.servicenow.number) || record.number;
  $('evidence-title').textContent = `Evidence: ${text(number)} — ${record.kind} ${record.id}`;
  const chain = $('chain');
  const history = Array.isArray(record.history) ? record.history : [];
  chain.dataset.ok = String(record.chain_ok === true);
  if (record.chain_ok === true) {
    chain.textContent = `History chain verifies: ${history.length} ${history.length === 1 ? 'entry' : 'entries'}, none edited or removed.`;
  } else {
    const broken = record.chain_break || {};
    chain.textContent = `History chain BROKEN at entry ${text(broken.entry)}: ${text(broken.reason)}`;
  }
  if (isChange) {
    renderChangeEvidence(record);
    const section = $('evidence');
    section.dataset.id = record.id;
    section.hidden = false;
    return;
  }
  fillFacts('facts', [
    ['Status', record.status],
    ['Error', record.error],
    ['ServiceNow item', record.servicenow ? `${record.servicenow.number} (sys_id ${record.servicenow.sys_id})` : null],
    ['Requested for', person(request.requester)],
    ['Opened by', person(request.opened_by)],
    ['Cloud', request.cloud],
    ['Image', request.image && request.image.name],
    ['Flavor', request.flavor && request.flavor.name],
    ['Network', request.network && request.network.name],
    ['Server name', request.server_name],
    ['Count', request.count],
    ['Justification', request.justification],
    ['Created', request.created_at],
    ['Last written', request.updated_at],
    ['Retire at', record.retire_at],
  ]);
  fillTable(
    'approvals',
    record.approvals,
    ['stage', 'group', 'rule', 'approver', 'delegate', 'at', 'proof'],
    'No approval was counted in a stage.',
  );
  const decision = record.decision || {};
  fillFacts('decision', [
    ['Decided by', decision.decided_by],
    ['Identity', decision.proof],
    ['Comment', decision.comment],
    ['Approved by the policy itself', decision.auto_approved],
  ]);
  fillTable('servers', record.servers, ['id', 'name', 'status', 'addresses'], 'No server was created.');
  fillTable('history', history, ['at', 'actor', 'from', 'to', 'note', 'proof', 'hash'], 'No history.');
  const mails = record.mails || {};
  $('mails-kept').textContent = text(mails.kept);
  fillTable('mails-sent', mails.sent, ['to', 'template', 'subject', 'sent_at'], 'No mail was sent.');
  fillTable(
    'mails',
    mails.owed,
    ['to', 'template', 'queued_at', 'status', 'attempts', 'last_error'],
    'No mail is owed or dead.',
  );
  const section = $('evidence');
  section.dataset.id = record.id;
  section.hidden = false;
}

async function openEvidence(summary, row) {
  for (const r of $('results').tBodies[0].rows) r.classList.remove('open');
  row.classList.add('open');
  const resp = await call(summary.evidence_url);
  if (!resp.ok) {
    const problem = await problemOf(resp);
    showStatus(`Evidence of ${summary.number}: ${problem.line}`, problem);
    return;
  }
  renderEvidence(await resp.json());
  $('evidence').scrollIntoView();
}

// ---------------------------------------------------------------------------------------------
// The export: every page of the period (following Link: rel="next"), saved as one .jsonl file.

function nextLink(resp) {
  const link = resp.headers.get('Link') || '';
  const m = /<([^>]+)>\s*;\s*rel="next"/.exec(link);
  return m ? m[1] : null;
}

async function downloadExport() {
  const p = period();
  if (!p) {
    showStatus('Give the period: From and To.', { errors: [] });
    return;
  }
  const button = $('download');
  button.disabled = true;
  try {
    const parts = [];
    let lines = 0;
    let url = `/v1/audit/export?${new URLSearchParams({ since: p.since, until: p.until })}`;
    while (url) {
      // Only this origin's pages: the Link is a path of the export.
      if (!url.startsWith('/v1/audit/export?')) throw new Error(`unexpected next page ${url}`);
      const resp = await call(url);
      if (!resp.ok) {
        const problem = await problemOf(resp);
        showStatus(`Export: ${problem.line}`, problem);
        return;
      }
      const page = await resp.text();
      lines += page.split('\n').filter((l) => l.trim()).length;
      parts.push(page);
      url = nextLink(resp);
    }
    const name = `gatehouse-audit-${p.from}-to-${p.to}.jsonl`;
    const blob = new Blob(parts, { type: 'application/jsonl' });
    const a = el('a', null, { download: name });
    a.href = URL.createObjectURL(blob);
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
    showStatus(`Exported ${lines} ${lines === 1 ? 'record' : 'records'} to ${name}.`);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------

function start() {
  const today = new Date();
  $('to').value = isoDay(today);
  $('from').value = isoDay(new Date(today.getTime() - 30 * DAY_MS));
  $('token').value = '';

  $('token-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = $('token').value.trim();
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    $('token').value = '';
    await refreshWho();
  });
  $('forget-token').addEventListener('click', async () => {
    sessionStorage.removeItem(TOKEN_KEY);
    await refreshWho();
  });
  $('search').addEventListener('submit', (e) => {
    e.preventDefault();
    runSearch(null);
  });
  $('more').addEventListener('click', () => lastQuery && lastQuery.next && runSearch(lastQuery.next));
  $('download').addEventListener('click', () => downloadExport());
  refreshWho();
}

document.addEventListener('DOMContentLoaded', start);
