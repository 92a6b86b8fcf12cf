// The change-gate part of the demo portal: starts GitLab pipelines of acme/shop and walks each
// through the gate, one button per step (request, approve as the Assess group and as the CAB, or
// reject, verify, deploy, report). The server does every step over HTTP as GitLab, ServiceNow and
// the jobs would (see cli/src/dev/gate.rs). Every value from the server goes into the page as
// text (textContent, text nodes, attribute values), never parsed as markup: the MR note is shown
// as its Markdown source.
'use strict';

(() => {
  // `$` and `el` are app.js's (loaded first, in the same global scope): one way to make elements.

  /** The buttons of a pipeline, in the story's order. */
  const STEPS = [
    ['request', 'Request the change'],
    ['approve-assess', 'Approve as the Assess group'],
    ['approve-cab', 'Approve as the CAB'],
    ['reject', 'Reject'],
    ['verify', 'Verify'],
    ['deploy', 'Deploy'],
    ['report-success', 'Report success'],
    ['report-failed', 'Report failure'],
  ];

  const state = {
    views: new Map(), // pipeline id -> its last view
    outcomes: new Map(), // pipeline id -> {step, line, exit_code}
    problems: new Map(), // pipeline id -> problem text
    busy: new Set(), // pipeline ids with a step under way
  };

  async function call(path, method, body) {
    const opts = { method: method || 'GET', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch(path, opts);
    const text = await resp.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch (_) {
      json = null;
    }
    return { ok: resp.ok, status: resp.status, body: json };
  }

  /** A problem+json answer in one line: its title and detail, and each field's error. */
  function problemText(r) {
    const p = (r.body && (r.body.problem || r.body)) || {};
    let text = (p.title || 'HTTP ' + r.status) + (p.detail ? ': ' + p.detail : '');
    for (const e of p.errors || []) text += ' — ' + e.field + ': ' + e.message;
    return text;
  }

  const badge = (kind, value, role) => el('span', { class: 'badge ' + kind + '-' + String(value || 'none').replace(/[^a-z0-9_-]/gi, '_'), 'data-role': role, text: value || '—' });

  function facts(rows) {
    return el(
      'dl',
      { class: 'facts' },
      rows.filter(([, v]) => v !== undefined && v !== null && v !== '').flatMap(([k, v, role]) => [el('dt', { text: k }), el('dd', { text: v, 'data-role': role })]),
    );
  }

  function jobsPanel(v) {
    return el(
      'section',
      { class: 'panel' },
      el('h4', { text: 'GitLab pipeline #' + v.id + ' (' + v.status + ')' }),
      el(
        'table',
        { class: 'jobs' },
        el('thead', {}, el('tr', {}, ['Job', 'Id', 'Status'].map((h) => el('th', { text: h })))),
        el(
          'tbody',
          {},
          (v.jobs || []).map((j) => el('tr', { 'data-job': j.name }, el('td', { text: j.name }), el('td', { text: String(j.id) }), el('td', { class: 'status', text: j.status }))),
        ),
      ),
    );
  }

  function changePanel(v) {
    const c = v.change;
    const panel = el('section', { class: 'panel' }, el('h4', { text: 'ServiceNow change' }));
    if (!c) {
      panel.append(el('p', { class: 'muted', text: 'None yet: gatehouse:request asks for it.' }));
      return panel;
    }
    if (c.error) {
      panel.append(el('p', { class: 'problem', text: c.error }));
      return panel;
    }
    panel.append(
      facts([
        ['Number', c.number, 'change-number'],
        ['Short description', c.short_description],
        ['State', c.state && c.state.display, 'change-state'],
        ['Approval', c.approval && c.approval.display, 'change-approval'],
        ['Type', c.type && c.type.display],
        ['Assignment group', c.assignment_group],
        ['Close code', c.close_code],
        ['Close notes', c.close_notes],
      ]),
    );
    const notes = Array.isArray(c.work_notes) ? c.work_notes.slice().reverse() : [];
    panel.append(el('h4', { text: 'Work notes (newest first)' }));
    if (notes.length) {
      panel.append(
        el(
          'ul',
          { class: 'work-notes', 'data-role': 'work-notes' },
          notes.map((n) => el('li', {}, el('div', { class: 'note-head', text: n.at + ' · ' + n.author }), el('div', { class: 'note-text', text: n.text }))),
        ),
      );
    } else {
      panel.append(el('p', { class: 'muted', text: 'None yet.' }));
    }
    return panel;
  }

  function gatePanel(v) {
    const g = v.gate;
    const panel = el('section', { class: 'panel' }, el('h4', { text: 'Change gate (as gatehouse ci verify sees it)' }));
    if (!g) {
      panel.append(el('p', { class: 'muted', text: 'No change to ask about yet.' }));
    } else if (g.problem) {
      panel.append(el('p', { class: 'problem', 'data-role': 'gate-problem', text: problemText({ body: g.problem }) }));
    } else {
      panel.append(
        el('p', { class: 'decision' }, badge('decision', g.decision, 'decision'), ' ', el('span', { 'data-role': 'reason', text: g.reason || '' })),
      );
      if (g.window && g.window.rule) panel.append(el('p', { class: 'muted', text: 'Window: ' + g.window.rule }));
    }
    const notes = (v.merge_request_notes || []).filter((n) => String(n.body || '').includes('gatehouse'));
    const note = notes[notes.length - 1];
    panel.append(el('h4', { text: 'Note on MR !' + v.merge_request_iid + (note ? ' (by ' + note.author + ', updated ' + note.updated_at + ')' : '') }));
    if (note) {
      // The note's Markdown source, as text: nothing in it is rendered as HTML.
      panel.append(el('pre', { class: 'mr-note', 'data-role': 'mr-note', text: note.body }));
    } else {
      panel.append(el('p', { class: 'muted', 'data-role': 'mr-note', text: 'No note yet.' }));
    }
    return panel;
  }

  function pipelineCard(v) {
    const c = v.change || {};
    const g = v.gate || {};
    const busy = state.busy.has(v.id);
    const card = el('article', {
      class: 'pipeline',
      'data-pipeline': v.id,
      'data-number': c.number,
      'data-state': c.state && c.state.display,
      'data-approval': c.approval && c.approval.value,
      'data-decision': g.decision,
      'aria-busy': busy ? 'true' : 'false',
    });
    card.append(
      el(
        'header',
        {},
        el('strong', { text: 'Pipeline #' + v.id }),
        el('span', { class: 'what', text: v.project_path + ' ' + String(v.sha).slice(0, 8) + ' → ' + v.environment + ' · MR !' + v.merge_request_iid }),
        badge('pipeline', v.status, 'pipeline-status'),
      ),
      el('p', { class: 'commit', 'data-role': 'commit', text: v.title }),
    );
    const buttons = el('div', { class: 'gate-steps' });
    for (const [step, label] of STEPS) {
      if (step === 'request' && v.change) continue;
      const b = el('button', { type: 'button', class: step === v.next ? 'next' : 'secondary', 'data-step': step, text: label, disabled: busy });
      b.addEventListener('click', () => runStep(v.id, step));
      buttons.append(b);
    }
    const refresh = el('button', { type: 'button', class: 'secondary', 'data-step': 'refresh', text: 'Refresh', disabled: busy });
    refresh.addEventListener('click', () => refreshPipeline(v.id));
    buttons.append(refresh);
    card.append(buttons);
    const o = state.outcomes.get(v.id);
    card.append(
      el('p', {
        class: 'outcome',
        'data-role': 'outcome',
        'data-step': o && o.step,
        text: busy ? 'Working…' : o ? o.line + (o.exit_code === null || o.exit_code === undefined ? '' : ' (exit ' + o.exit_code + ')') : '',
      }),
      el('p', { class: 'problem', 'data-role': 'problem', text: state.problems.get(v.id) || '' }),
      el('div', { class: 'gate-panels' }, jobsPanel(v), changePanel(v), gatePanel(v)),
    );
    return card;
  }

  /** Shows the pipelines, newest first, each from its last view. */
  function render() {
    const list = $('#gate-pipelines');
    const ids = Array.from(state.views.keys()).sort((a, b) => b - a);
    if (!ids.length) {
      list.replaceChildren(el('p', { class: 'empty', text: 'No pipeline yet: start one.' }));
      return;
    }
    list.replaceChildren(...ids.map((id) => pipelineCard(state.views.get(id))));
  }

  async function refreshPipeline(id) {
    const r = await call('/dev/gate/pipelines/' + encodeURIComponent(id));
    if (r.ok && r.body) state.views.set(r.body.id, r.body);
    else state.problems.set(id, problemText(r));
    render();
  }

  async function runStep(id, step) {
    state.busy.add(id);
    state.problems.delete(id);
    render();
    try {
      const r = await call('/dev/gate/pipelines/' + encodeURIComponent(id) + '/' + encodeURIComponent(step), 'POST');
      if (r.ok && r.body) {
        state.views.set(r.body.id, r.body);
        if (r.body.step) state.outcomes.set(id, Object.assign({ step }, r.body.step));
      } else {
        state.problems.set(id, problemText(r));
        state.outcomes.delete(id);
        const v = await call('/dev/gate/pipelines/' + encodeURIComponent(id));
        if (v.ok && v.body) state.views.set(v.body.id, v.body);
      }
    } catch (e) {
      state.problems.set(id, 'Could not reach the demo portal: ' + e);
    } finally {
      state.busy.delete(id);
      render();
    }
  }

  function setFieldError(field, message) {
    const p = document.querySelector('.field-error[data-gate-error-for="' + field + '"]');
    if (!p) return false;
    p.textContent = message || '';
    const input = p.parentElement.querySelector('input');
    if (message) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
    return true;
  }

  async function start(event) {
    event.preventDefault();
    const status = $('#gate-status');
    const button = $('#gate-start-button');
    for (const f of ['title', 'environment']) setFieldError(f, null);
    status.className = 'form-status';
    status.textContent = 'Starting a pipeline…';
    button.disabled = true;
    try {
      const r = await call('/dev/gate/pipelines', 'POST', { title: $('#gate-commit').value, environment: $('#gate-environment').value });
      if (!r.ok || !r.body) {
        const general = ((r.body && r.body.errors) || []).filter((e) => !setFieldError(e.field, e.message));
        status.className = 'form-status bad';
        status.textContent = problemText({ status: r.status, body: Object.assign({}, r.body, { errors: general }) });
        return;
      }
      state.views.set(r.body.id, r.body);
      status.className = 'form-status good';
      status.dataset.pipeline = r.body.id;
      status.textContent = 'Pipeline #' + r.body.id + ' started; gatehouse:request asks Gatehouse for the change.';
      await runStep(r.body.id, 'request');
    } catch (e) {
      status.className = 'form-status bad';
      status.textContent = 'Could not reach the demo portal: ' + e;
    } finally {
      button.disabled = false;
    }
  }

  async function load() {
    $('#gate-start').addEventListener('submit', start);
    const r = await call('/dev/gate/pipelines');
    if (!r.ok || !r.body) {
      $('#gate-start-button').disabled = true;
      $('#gate-pipelines').replaceChildren(el('p', { class: 'empty', text: 'The change gate needs the demo\u2019s GitLab and ServiceNow simulators: ' + problemText(r) }));
      return;
    }
    for (const v of r.body.pipelines || []) state.views.set(v.id, v);
    render();
  }

  document.addEventListener('DOMContentLoaded', load);
})();
