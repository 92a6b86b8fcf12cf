// Gatehouse demo portal. Plain JavaScript, no build step. Every value from the server goes into
// the page as text (textContent, text nodes, attribute values), never parsed as markup; mails are
// shown in sandboxed frames without scripts.
'use strict';

const $ = (selector) => document.querySelector(selector);

/** Creates an element; string children become text nodes. */
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null && c !== false) e.append(c);
  }
  return e;
}

const state = {
  token: null,
  servicenow: null, // the simulated ServiceNow's URL, when the demo runs one
  record: null,
  optionsSeq: 0,
  requestNodes: new Map(), // id -> {json, node}
  requestOrder: '',
  open: new Set(), // ids of expanded requests
  mails: new Set(), // files already shown
  mailsEmpty: false,
};

/** Calls the API with the demo token; answers {ok, status, body}. */
async function api(path, options) {
  const opts = Object.assign({}, options || {});
  const headers = Object.assign({ Accept: 'application/json' }, opts.headers || {});
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  opts.headers = headers;
  const resp = await fetch(path, opts);
  const text = await resp.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (_) {
    body = null;
  }
  return { ok: resp.ok, status: resp.status, body };
}

/** Runs fn now and then every ms milliseconds; a call while it runs runs it once more after. */
function every(ms, fn) {
  let timer = null;
  let running = false;
  let again = false;
  async function run() {
    if (running) {
      again = true;
      return;
    }
    clearTimeout(timer);
    running = true;
    try {
      await fn();
    } catch (e) {
      console.warn(e);
    }
    running = false;
    if (again) {
      again = false;
      run();
      return;
    }
    timer = setTimeout(run, ms);
  }
  return run;
}

function randomDigits(n) {
  const bytes = crypto.getRandomValues(new Uint32Array(n));
  return Array.from(bytes, (b) => String(b % 10)).join('');
}

function randomHex(bytes) {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The ServiceNow request item an order opens: what the Business Rule sends as source. With the
 * demo's simulated ServiceNow the item is opened there with the order's requester and variables,
 * approved (Gatehouse reads it back and refuses a body that differs, and its work notes land on
 * it); otherwise the page makes up a number and a sys_id.
 */
async function openRecord(body) {
  let record = { number: 'RITM' + randomDigits(7), sys_id: randomHex(16) };
  if (state.servicenow) {
    const item = {
      requested_for: body.requester,
      variables: {
        cloud: body.cloud,
        image: body.image,
        flavor: body.flavor,
        network: body.network,
        server_name: body.server_name,
        count: String(body.count),
      },
    };
    const r = await api('/dev/ritm', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(item),
    });
    if (!r.ok || !r.body || !r.body.number || !r.body.sys_id) throw new Error('the simulated ServiceNow opened no request item');
    record = { number: r.body.number, sys_id: r.body.sys_id };
  }
  $('#ritm').textContent = record.number;
  $('#sys-id').textContent = record.sys_id;
  return record;
}

function when(ts) {
  if (!ts) return '';
  return String(ts).replace('T', ' ').replace(/\.\d+/, '').replace(/Z$/, ' UTC');
}

// ---------------------------------------------------------------- catalog form

function placeholder(text) {
  return el('option', { value: '', text });
}

async function loadClouds() {
  const select = $('#cloud');
  const r = await api('/v1/clouds');
  if (!r.ok || !r.body) {
    select.replaceChildren(placeholder('-- unavailable --'));
    showProblem(r);
    return;
  }
  const clouds = r.body.clouds || [];
  select.replaceChildren(
    placeholder('-- None --'),
    ...clouds.map((c) =>
      el('option', {
        value: c.name,
        text: c.display_name && c.display_name !== c.name ? c.display_name + ' (' + c.name + ')' : c.name,
      }),
    ),
  );
  if (clouds.length === 1) {
    select.value = clouds[0].name;
    await loadOptions();
  }
}

/** The form's OnChange: one call fills the image, flavor and network dropdowns. */
async function loadOptions() {
  const cloud = $('#cloud').value;
  const seq = ++state.optionsSeq;
  const form = $('#order');
  delete form.dataset.optionsFor;
  const kinds = [
    ['image', 'images'],
    ['flavor', 'flavors'],
    ['network', 'networks'],
  ];
  for (const [kind] of kinds) {
    const s = $('#' + kind);
    s.disabled = true;
    s.replaceChildren(placeholder(cloud ? 'Loading…' : '-- choose a cloud first --'));
  }
  setError('cloud', null);
  if (!cloud) return;
  const r = await api('/v1/clouds/' + encodeURIComponent(cloud) + '/options');
  if (seq !== state.optionsSeq) return; // the user changed the cloud meanwhile
  if (!r.ok || !r.body) {
    for (const [kind] of kinds) $('#' + kind).replaceChildren(placeholder('-- unavailable --'));
    showProblem(r);
    return;
  }
  for (const [kind, key] of kinds) {
    const s = $('#' + kind);
    const items = r.body[key] || [];
    s.replaceChildren(placeholder('-- None --'), ...items.map((i) => el('option', { value: i.id, text: i.label || i.name })));
    if (items.length) s.value = items[0].id;
    s.disabled = false;
  }
  form.dataset.optionsFor = cloud;
}

function setError(key, message) {
  for (const p of document.querySelectorAll('.field-error[data-error-for]')) {
    if (p.dataset.errorFor !== key) continue;
    p.textContent = message || '';
    const control = p.parentElement.querySelector('input, select, textarea');
    if (control) {
      if (message) control.setAttribute('aria-invalid', 'true');
      else control.removeAttribute('aria-invalid');
    }
  }
}

function clearErrors() {
  for (const p of document.querySelectorAll('.field-error')) p.textContent = '';
  for (const c of document.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
  $('#form-status').textContent = '';
  $('#form-status').className = 'form-status';
}

/** Shows a problem+json answer: each error next to its field, the rest under the form. */
function showProblem(r) {
  const body = r.body || {};
  const keys = Array.from(document.querySelectorAll('.field-error[data-error-for]'), (p) => p.dataset.errorFor);
  const general = [];
  const byKey = new Map();
  for (const e of body.errors || []) {
    const field = String(e.field || '');
    const key = keys
      .filter((k) => field === k || field.startsWith(k + '.'))
      .sort((a, b) => b.length - a.length)[0];
    const text = key === undefined || key === field ? e.message : field + ': ' + e.message;
    if (key === undefined) general.push(field + ': ' + e.message);
    else byKey.set(key, byKey.has(key) ? byKey.get(key) + '; ' + text : text);
  }
  for (const [key, text] of byKey) setError(key, text);
  const status = $('#form-status');
  status.className = 'form-status bad';
  const fields = body.errors && body.errors.length ? ': see the fields marked in red' : '';
  status.textContent = (body.title || 'HTTP ' + r.status) + (body.detail && !fields ? ': ' + body.detail : fields);
  $('#form-errors').replaceChildren(...general.map((g) => el('div', { text: g })));
}

/** What ServiceNow's Business Rule posts when the RITM is approved in ServiceNow. */
function payload() {
  const v = (id) => $('#' + id).value;
  const count = v('count').trim();
  const body = {
    source: { system: 'servicenow', number: '', sys_id: '' },
    requester: { email: v('requester_email').trim(), name: v('requester_name').trim() },
    cloud: v('cloud'),
    image: v('image'),
    flavor: v('flavor'),
    network: v('network'),
    server_name: v('server_name').trim(),
    count: /^\d+$/.test(count) ? Number(count) : count,
    justification: v('justification'),
    metadata: {},
  };
  if (v('user_name').trim()) body.requester.user_name = v('user_name').trim();
  if (v('cost_center').trim()) body.metadata.cost_center = v('cost_center').trim();
  return body;
}

async function submit(event) {
  event.preventDefault();
  clearErrors();
  const button = $('#submit');
  const body = payload();
  button.disabled = true;
  const status = $('#form-status');
  status.textContent = 'Ordering…';
  try {
    body.source = { system: 'servicenow', ...(await openRecord(body)) };
    $('#payload-json').textContent = JSON.stringify(body, null, 2);
    status.textContent = 'Sending ' + body.source.number + '…';
    const r = await api('/v1/requests', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (r.ok && r.body && r.body.id) {
      status.className = 'form-status good';
      status.dataset.number = body.source.number;
      status.dataset.id = r.body.id;
      status.textContent =
        body.source.number + ' sent: request ' + r.body.id + ' is ' + r.body.status + ' (HTTP ' + r.status + ').';
      state.open.add(r.body.id);
      refreshRequests();
      refreshOutbox();
    } else {
      showProblem(r);
    }
  } catch (e) {
    status.className = 'form-status bad';
    status.textContent = 'Could not reach Gatehouse: ' + e;
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- requests

function dl(rows) {
  return el(
    'dl',
    { class: 'facts' },
    rows.filter(([, v]) => v !== undefined && v !== null && v !== '').flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]),
  );
}

function table(head, rows, cls) {
  return el(
    'table',
    { class: cls },
    el('thead', {}, el('tr', {}, head.map((h) => el('th', { text: h })))),
    el('tbody', {}, rows.map((row) => el('tr', {}, row.map((c) => el('td', { text: c === null || c === undefined ? '' : String(c) }))))),
  );
}

function requestNode(r) {
  const addresses = (r.servers || []).flatMap((s) => s.addresses || []);
  const details = el('details', { open: state.open.has(r.id) });
  details.addEventListener('toggle', () => {
    if (details.open) state.open.add(r.id);
    else state.open.delete(r.id);
  });
  const number = (r.source && r.source.number) || r.id;
  details.append(
    el(
      'summary',
      {},
      el('span', { class: 'number', text: number }),
      el('span', { class: 'badge status-' + r.status, 'data-role': 'status', text: r.status }),
      el('span', { class: 'what', text: r.server_name + ' × ' + r.count + ' · ' + ((r.flavor && r.flavor.name) || '') + ' · ' + r.cloud }),
      el('span', { class: 'addresses', 'data-role': 'addresses', text: addresses.join(', ') }),
    ),
  );
  const body = el('div', { class: 'request-body' });
  body.append(
    dl([
      ['Request id', r.id],
      ['Requester', r.requester ? r.requester.name + ' <' + r.requester.email + '>' : ''],
      ['Image', r.image && r.image.name],
      ['Flavor', r.flavor && r.flavor.name],
      ['Network', r.network && r.network.name],
      ['Justification', r.justification],
      ['Approvers', (r.approvers || []).join(', ')],
      ['Decided by', r.decided_by],
      ['Comment', r.decision_comment],
      ['Links expire', when(r.expires_at)],
      ['Error', r.error],
    ]),
  );
  if (r.approval) {
    const a = r.approval;
    body.append(el('h4', { text: 'Approval: rule ' + a.rule + (a.auto_approved ? ' (approved by the policy, nobody asked)' : '') }));
    if ((a.stages || []).length) {
      body.append(
        table(
          ['Stage', 'Group', 'Quorum', 'State', 'Approved by', 'Waiting on'],
          a.stages.map((s, i) => [
            i + 1 + ' of ' + a.stages.length,
            s.group,
            s.quorum,
            s.state,
            (s.approvals || []).map((x) => (x.delegate ? x.delegate + ' for ' + x.approver : x.approver)).join(', '),
            (s.waiting_on || []).join(', '),
          ]),
          'stages',
        ),
      );
    }
  }
  body.append(el('h4', { text: 'Servers' }));
  if ((r.servers || []).length) {
    body.append(
      table(
        ['Name', 'Status', 'Addresses', 'Nova id'],
        r.servers.map((s) => [s.name, s.status, (s.addresses || []).join(', '), s.id]),
        'servers',
      ),
    );
  } else {
    body.append(el('p', { class: 'muted', text: 'None yet.' }));
  }
  body.append(el('h4', { text: 'History' }));
  body.append(
    table(
      ['At', 'Actor', 'Change', 'Note'],
      (r.history || []).map((h) => [when(h.at), h.actor, (h.from && h.from !== h.to ? h.from + ' → ' : '') + h.to, h.note]),
      'history',
    ),
  );
  if (Array.isArray(r.work_notes)) {
    body.append(el('h4', { text: 'Work notes on ' + number + ' (simulated ServiceNow)' }));
    if (r.work_notes.length) {
      body.append(
        el(
          'ul',
          { class: 'work-notes' },
          r.work_notes.map((n) => el('li', {}, el('div', { class: 'note-head', text: n.at + ' · ' + n.author }), el('div', { class: 'note-text', text: n.text }))),
        ),
      );
    } else {
      body.append(el('p', { class: 'muted', text: 'None yet.' }));
    }
  }
  details.append(body);
  return el(
    'li',
    { class: 'request', 'data-id': r.id, 'data-number': number, 'data-status': r.status },
    details,
  );
}

async function pollRequests() {
  const r = await api('/dev/requests');
  if (!r.ok || !r.body) return;
  const list = $('#request-list');
  const requests = r.body.requests || [];
  if (!requests.length) {
    if (state.requestOrder !== 'none') {
      list.replaceChildren(el('li', { class: 'empty', text: 'No requests yet: order one with the form.' }));
    }
    state.requestNodes.clear();
    state.requestOrder = 'none';
    return;
  }
  const nodes = new Map();
  for (const req of requests) {
    const json = JSON.stringify(req);
    const old = state.requestNodes.get(req.id);
    if (old && old.json === json) {
      nodes.set(req.id, old);
    } else {
      const node = requestNode(req);
      if (old) old.node.replaceWith(node);
      nodes.set(req.id, { json, node });
    }
  }
  state.requestNodes = nodes;
  const order = requests.map((q) => q.id).join(' ');
  if (order !== state.requestOrder) {
    list.replaceChildren(...requests.map((q) => nodes.get(q.id).node));
    state.requestOrder = order;
  }
}

// ---------------------------------------------------------------- outbox

/** The mail's HTML with its links opening a new tab, as from a mail client. */
function withLinkTarget(html) {
  const base = '<base target="_blank">';
  const i = html.indexOf('<html>');
  if (i < 0) return base + html;
  return html.slice(0, i) + '<html><head>' + base + '</head>' + html.slice(i + '<html>'.length);
}

function mailNode(m) {
  let body;
  if (m.html) {
    body = el('iframe', {
      class: 'mail-body',
      title: m.subject,
      sandbox: 'allow-popups allow-popups-to-escape-sandbox',
      referrerpolicy: 'no-referrer',
    });
    // srcdoc is a property: the browser renders it inside the sandboxed frame, not in this page.
    body.srcdoc = withLinkTarget(m.html);
  } else {
    body = el('pre', { class: 'mail-text', text: m.text });
  }
  const to = (m.to || []).join(', ');
  return el(
    'article',
    { class: 'mail', 'data-file': m.file, 'data-to': to },
    el(
      'header',
      {},
      el('div', { class: 'subject', text: m.subject }),
      el('div', { class: 'meta' }, el('b', { text: 'To: ' }), to, ' · ', el('b', { text: 'From: ' }), m.from || '', ' · ', when(m.date)),
    ),
    body,
  );
}

async function pollOutbox() {
  const r = await api('/dev/outbox');
  if (!r.ok || !r.body) return;
  const mails = r.body.mails || [];
  const list = $('#mail-list');
  if (!mails.length) {
    if (!state.mailsEmpty) list.replaceChildren(el('p', { class: 'empty', text: 'No mail yet.' }));
    state.mailsEmpty = true;
    state.mails.clear();
    return;
  }
  state.mailsEmpty = false;
  if (list.querySelector('.empty')) list.replaceChildren();
  // Oldest first from the server: each new one goes on top.
  for (const m of mails) {
    if (state.mails.has(m.file)) continue;
    state.mails.add(m.file);
    list.prepend(mailNode(m));
  }
}

// ---------------------------------------------------------------- start

const refreshRequests = every(1000, pollRequests);
const refreshOutbox = every(1500, pollOutbox);

async function start() {
  $('#order').addEventListener('submit', submit);
  $('#cloud').addEventListener('change', loadOptions);
  // Editing a field clears the error the server gave it.
  $('#order').addEventListener('input', (event) => {
    const p = event.target.closest('.field') && event.target.closest('.field').querySelector('.field-error');
    if (p && p.dataset.errorFor !== undefined) setError(p.dataset.errorFor, null);
    const status = $('#form-status');
    if (status.classList.contains('bad') && !document.querySelector('.field-error[data-error-for]:not(:empty)')) {
      status.textContent = '';
      status.className = 'form-status';
    }
  });
  const cfg = await api('/dev/config.json');
  if (!cfg.ok || !cfg.body || !cfg.body.token) {
    $('#who').textContent = 'This page needs `gatehouse serve --demo`: no demo token was handed out.';
    return;
  }
  state.token = cfg.body.token;
  state.servicenow = cfg.body.servicenow || null;
  $('#who').textContent =
    'Calling the API as ServiceNow with the demo token. Approver: ' + ((cfg.body.approvers || []).join(', ') || 'none');
  refreshRequests();
  refreshOutbox();
  await loadClouds();
}

document.addEventListener('DOMContentLoaded', start);
