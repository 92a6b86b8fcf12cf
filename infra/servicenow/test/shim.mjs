// A small stand-in for the parts of a ServiceNow instance that the Gatehouse scripts touch, so
// that the real script files run unchanged under Node against a running `gatehouse serve --demo`:
//
//   server side (one vm context, like the instance's global scope): Class, Object.extendsObject,
//     AbstractAjaxProcessor, gs, GlideRecord (with GlideElement, dot-walking, variables, journal
//     fields, changes()/changesTo()), GlideDateTime, GlideStringUtil, GlideCertificateEncryption,
//     sn_ws.RESTMessageV2 (synchronous like the real one: each execute() runs
//     http-sync-helper.mjs through child_process.execFileSync);
//   client side (one vm context per client script, like the browser): g_form and GlideAjax,
//     whose calls reach the server context's client-callable Script Includes, after the checks
//     the platform makes: a guest only reaches one whose isPublic() answers true, and a user
//     must pass the include's client_callable_script_include ACLs of manifest.json (a role of
//     the ACL; admin_overrides lets admins through).
//   RESTMessageV2 through a MID server (setMIDServer) only answers executeAsync() followed by
//     waitForResponse(seconds), as ServiceNow documents for MID servers; execute() refuses.
//
// Business rules are run the way the platform does: on an update, every rule of the table whose
// condition (from manifest.json) holds for current/previous runs its script file.

import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

import { HERE as SN_DIR, loadManifest, textOf } from '../build-update-set.mjs';

const HELPER = join(dirname(fileURLToPath(import.meta.url)), 'http-sync-helper.mjs');

const SCHEMA = {
  sc_req_item: {
    display: 'number',
    fields: {
      number: 'string', approval: 'string', state: 'integer', active: 'boolean', stage: 'string',
      requested_for: 'ref:sys_user', opened_by: 'ref:sys_user', cat_item: 'ref:sc_cat_item',
      request: 'ref:sc_request', short_description: 'string', u_gatehouse_request_id: 'string',
      work_notes: 'journal', comments: 'journal',
    },
    choices: {
      state: { '-5': 'Pending', 1: 'Open', 2: 'Work in Progress', 3: 'Closed Complete', 4: 'Closed Incomplete', 7: 'Closed Skipped' },
    },
  },
  change_request: {
    display: 'number',
    fields: {
      number: 'string', approval: 'string', state: 'integer', active: 'boolean', correlation_id: 'string',
      short_description: 'string', work_notes: 'journal',
    },
    choices: { state: { '-5': 'New', '-4': 'Assess', '-3': 'Authorize', '-2': 'Scheduled', '-1': 'Implement', 0: 'Review', 3: 'Closed', 4: 'Canceled' } },
  },
  sys_user: { display: 'name', fields: { name: 'string', email: 'string', user_name: 'string' } },
  sc_cat_item: { display: 'name', fields: { name: 'string' } },
  sc_request: { display: 'number', fields: { number: 'string' } },
  // catalog item <-> variable set
  io_set_item: { display: 'variable_set', fields: { sc_cat_item: 'ref:sc_cat_item', variable_set: 'string' } },
  sys_properties: {
    display: 'name',
    fields: {
      name: 'string', type: 'string', value: 'string', description: 'string', is_private: 'boolean',
      read_roles: 'string', write_roles: 'string',
    },
  },
  sys_dictionary: { display: 'element', fields: { name: 'string', element: 'string', internal_type: 'string' } },
  sys_user_role: { display: 'name', fields: { name: 'string' } },
  sys_security_acl: { display: 'name', fields: { name: 'string', type: 'string', operation: 'string' } },
  sys_security_acl_role: { display: 'sys_user_role', fields: { sys_security_acl: 'ref:sys_security_acl', sys_user_role: 'ref:sys_user_role' } },
};

let idCounter = 0;
const newSysId = () => (Date.now().toString(16) + (++idCounter).toString(16).padStart(6, '0') + Math.random().toString(16).slice(2)).slice(0, 32).padEnd(32, '0');

export function readScript(relPath) {
  return readFileSync(join(SN_DIR, relPath), 'utf8');
}

/** One simulated instance: a database, system properties, logs, and the scripts loaded. */
export function createInstance({ properties = {}, user = 'beth.admin', roles = ['admin'], schema = SCHEMA } = {}) {
  const manifest = loadManifest();
  const inst = {
    manifest,
    schema,
    properties: { ...properties },
    user,
    roles,
    db: {},
    logs: [],
    messages: [],
    http: [],
    ajax: [],
    clock: () => Date.now(),
  };
  for (const table of Object.keys(schema)) inst.db[table] = new Map();

  // ---- GlideRecord and GlideElement ------------------------------------------------------------
  const fieldType = (table, field) => schema[table] && schema[table].fields[field];

  function element(gr, field) {
    const type = fieldType(gr._table, field);
    const raw = () => (gr._values[field] === undefined || gr._values[field] === null ? '' : String(gr._values[field]));
    const before = () => (gr._prev[field] === undefined || gr._prev[field] === null ? '' : String(gr._prev[field]));
    const el = {
      toString: () => raw(),
      valueOf: () => (type === 'boolean' ? raw() === 'true' : raw()),
      getValue: () => (raw() === '' ? null : raw()),
      setValue: (v) => gr._set(field, v),
      nil: () => raw() === '',
      changes: () => raw() !== before(),
      changesTo: (v) => raw() !== before() && raw() === String(v),
      changesFrom: (v) => raw() !== before() && before() === String(v),
      getDisplayValue: () => {
        if (type && type.startsWith('ref:')) return raw() ? ref().getDisplayValue() : '';
        const choices = schema[gr._table].choices && schema[gr._table].choices[field];
        return choices && choices[raw()] !== undefined ? choices[raw()] : raw();
      },
      getRefRecord: () => ref(),
      getName: () => field,
    };
    const ref = () => {
      const target = new GlideRecord(type.slice(4));
      if (raw()) target.get(raw());
      return target;
    };
    return new Proxy(el, {
      get(target, prop) {
        if (prop in target || typeof prop === 'symbol') return target[prop];
        if (type && type.startsWith('ref:')) return ref()[prop]; // dot-walking
        return undefined;
      },
    });
  }

  function variablesOf(gr) {
    const vars = gr._variables;
    return new Proxy({}, {
      get(_, name) {
        if (typeof name !== 'string' || !Object.prototype.hasOwnProperty.call(vars, name)) return undefined;
        const value = () => (vars[name] === null || vars[name] === undefined ? '' : String(vars[name]));
        return { toString: value, valueOf: value, getValue: value, getDisplayValue: value, nil: () => value() === '' };
      },
      set(_, name, v) {
        vars[name] = String(v);
        return true;
      },
    });
  }

  class GlideRecordShim {
    constructor(table) {
      if (!schema[table]) throw new Error(`GlideRecord: no table ${table} in the shim`);
      this._table = table;
      this._values = {};
      this._prev = {};
      this._journal = {};
      this._variables = {};
      this._conditions = [];
      this._limit = Infinity;
      this._results = null;
      this._index = -1;
      this._loaded = false;
      const self = this;
      return new Proxy(this, {
        get(target, prop) {
          if (typeof prop === 'symbol' || prop in target) {
            const v = target[prop];
            return typeof v === 'function' ? v.bind(target) : v;
          }
          if (prop === 'variables') return variablesOf(self);
          if (fieldType(table, prop)) return element(self, prop);
          if (prop === 'sys_id') return element(self, 'sys_id');
          return undefined;
        },
        set(target, prop, value) {
          if (typeof prop === 'string' && fieldType(table, prop)) {
            target._set(prop, value);
          } else {
            target[prop] = value;
          }
          return true;
        },
      });
    }

    _set(field, value) {
      const text = value === null || value === undefined ? '' : String(value);
      if (fieldType(this._table, field) === 'journal') this._journal[field] = text;
      else this._values[field] = text;
    }

    _load(row) {
      this._values = { ...row.values };
      this._prev = { ...row.values };
      this._variables = row.variables;
      this._journal = {};
      this._loaded = true;
    }

    get(a, b) {
      const rows = inst.db[this._table];
      let row = null;
      if (b === undefined) row = rows.get(String(a)) || null;
      else for (const r of rows.values()) if (String(r.values[a]) === String(b)) { row = r; break; }
      if (!row) return false;
      this._load(row);
      return true;
    }
    getValue(field) {
      if (field === 'sys_id') return this._values.sys_id || null;
      if (!fieldType(this._table, field)) return null;
      const v = this._values[field];
      return v === undefined || v === '' ? null : String(v);
    }
    setValue(field, value) { this._set(field, value); }
    getUniqueValue() { return this._values.sys_id || null; }
    getTableName() { return this._table; }
    getDisplayValue() { return String(this._values[schema[this._table].display] || ''); }
    isValidField(field) { return !!fieldType(this._table, field); }
    isValidRecord() { return this._loaded; }
    isNewRecord() { return !this._loaded; }
    initialize() { this._values = {}; this._prev = {}; this._journal = {}; this._variables = {}; this._loaded = false; }
    addQuery(field, op, value) {
      if (value === undefined) { value = op; op = '='; }
      if (op !== '=') throw new Error(`GlideRecord shim: operator ${op} not supported`);
      this._conditions.push([field, String(value)]);
    }
    setLimit(n) { this._limit = Number(n); }
    query() {
      this._results = [...inst.db[this._table].values()].filter((r) => this._conditions.every(([f, v]) => String(r.values[f] ?? '') === v)).slice(0, this._limit);
      this._index = -1;
    }
    hasNext() { return !!this._results && this._index + 1 < this._results.length; }
    next() {
      if (!this.hasNext()) return false;
      this._index += 1;
      this._load(this._results[this._index]);
      return true;
    }
    getRowCount() { return this._results ? this._results.length : 0; }
    insert() {
      const id = this._values.sys_id || newSysId();
      this._values.sys_id = id;
      const row = { values: { ...this._values }, variables: this._variables, journal: {}, updates: 0 };
      inst.db[this._table].set(id, row);
      this._appendJournal(row);
      this._load(row);
      return id;
    }
    update() {
      if (!this._loaded) return this.insert();
      const row = inst.db[this._table].get(this._values.sys_id);
      row.values = { ...this._values };
      row.updates += 1;
      this._appendJournal(row);
      this._prev = { ...this._values };
      return this._values.sys_id;
    }
    _appendJournal(row) {
      for (const [field, text] of Object.entries(this._journal)) {
        if (text === '') continue;
        (row.journal[field] = row.journal[field] || []).push({ value: text, by: inst.user });
      }
      this._journal = {};
    }
  }
  const GlideRecord = function (table) { return new GlideRecordShim(table); };
  inst.GlideRecord = GlideRecord;

  // ---- RESTMessageV2 -------------------------------------------------------------------------
  class RESTResponseV2 {
    constructor(status, headers, body, error) { Object.assign(this, { _status: status, _headers: headers, _body: body, _error: error }); }
    getStatusCode() { return this._status; }
    getBody() { return this._body; }
    haveError() { return this._status === 0 || this._status >= 400; }
    getErrorMessage() { return this._error || (this._status >= 400 ? `HTTP ${this._status}` : null); }
    getErrorCode() { return this._error ? 1 : 0; }
    getHeader(name) { return this._headers[String(name).toLowerCase()] ?? null; }
    getHeaders() { return { ...this._headers }; }
  }
  /** The answer of executeAsync(): nothing can be read from it before waitForResponse(). */
  class RESTResponseAsync {
    constructor(exchange, run) { this._exchange = exchange; this._run = run; this._response = null; }
    waitForResponse(seconds) {
      if (!(Number(seconds) > 0)) throw new Error('waitForResponse: seconds must be positive');
      this._exchange.wait_seconds = Number(seconds);
      this._response = this._run();
    }
    _ready() {
      if (!this._response) throw new Error('RESTResponseV2 of executeAsync(): call waitForResponse(seconds) first');
      return this._response;
    }
    getStatusCode() { return this._ready().getStatusCode(); }
    getBody() { return this._ready().getBody(); }
    haveError() { return this._ready().haveError(); }
    getErrorMessage() { return this._ready().getErrorMessage(); }
    getErrorCode() { return this._ready().getErrorCode(); }
    getHeader(name) { return this._ready().getHeader(name); }
    getHeaders() { return this._ready().getHeaders(); }
  }
  class RESTMessageV2 {
    constructor(name, method) {
      if (name !== undefined || method !== undefined) throw new Error('RESTMessageV2 shim: only the no-argument form is used');
      this._headers = {};
      this._body = null;
      this._method = null;
      this._endpoint = null;
      this._timeout = null;
      this._mid = null;
    }
    setEndpoint(url) { this._endpoint = String(url); }
    setHttpMethod(method) { this._method = String(method).toUpperCase(); }
    setRequestHeader(name, value) { this._headers[String(name)] = String(value); }
    setRequestBody(body) { this._body = String(body); }
    setHttpTimeout(ms) { this._timeout = Number(ms); }
    setMIDServer(name) { this._mid = String(name); }
    setEccParameter() {}
    getRequestBody() { return this._body; }
    getEndpoint() { return this._endpoint; }
    _exchange(async) {
      if (!this._endpoint || !this._method) throw new Error('RESTMessageV2: endpoint and method are required');
      const exchange = { method: this._method, url: this._endpoint, headers: { ...this._headers }, body: this._body, timeout_ms: this._timeout, mid_server: this._mid, async };
      inst.http.push(exchange);
      return exchange;
    }
    _send(exchange) {
      const out = execFileSync(process.execPath, [HELPER, '--stdin'], { input: JSON.stringify(exchange), encoding: 'utf8', timeout: (this._timeout || 60000) + 5000 });
      const answer = JSON.parse(out);
      exchange.response = answer;
      if (answer.error) throw new Error(`Request failed: ${answer.error}`);
      return new RESTResponseV2(answer.status, answer.headers, answer.body, null);
    }
    execute() {
      if (this._mid) throw new Error('RESTMessageV2 shim: a message through a MID server is asynchronous: use executeAsync() and waitForResponse()');
      return this._send(this._exchange(false));
    }
    executeAsync() {
      const exchange = this._exchange(true);
      return new RESTResponseAsync(exchange, () => this._send(exchange));
    }
  }

  // ---- gs and the rest of the global scope -------------------------------------------------
  const log = (level) => (msg) => { inst.logs.push({ level, msg: String(msg) }); };
  const gs = {
    getProperty: (name, dflt) => (Object.prototype.hasOwnProperty.call(inst.properties, name) ? inst.properties[name] : (dflt === undefined ? null : dflt)),
    info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug'),
    log: log('info'), logWarning: log('warn'), logError: log('error'),
    getUserName: () => inst.user,
    getUserID: () => `user-${inst.user}`,
    hasRole: (role) => inst.roles.includes('admin') || inst.roles.includes(role),
    nil: (v) => v === null || v === undefined || String(v) === '',
    base64Encode: (s) => Buffer.from(String(s), 'utf8').toString('base64'),
    addInfoMessage: (m) => inst.messages.push({ type: 'info', msg: String(m) }),
    addErrorMessage: (m) => inst.messages.push({ type: 'error', msg: String(m) }),
  };
  class GlideDateTime { getNumericValue() { return inst.clock(); } }
  const GlideStringUtil = { base64Encode: (s) => Buffer.from(String(s), 'utf8').toString('base64') };
  class GlideCertificateEncryption {
    generateMac(keyBase64, algorithm, data) {
      if (algorithm !== 'HmacSHA256') throw new Error(`generateMac shim: ${algorithm} not supported`);
      return createHmac('sha256', Buffer.from(String(keyBase64), 'base64')).update(String(data), 'utf8').digest('base64');
    }
  }

  const server = vm.createContext({
    gs, GlideRecord, GlideDateTime, GlideStringUtil, GlideCertificateEncryption,
    sn_ws: { RESTMessageV2 },
    current: null, previous: null, action: null,
  });
  vm.runInContext(`
    var global = this;
    var Class = { create: function () { return function () { this.initialize.apply(this, arguments); }; } };
    Object.extendsObject = function (parent, props) {
      var proto = {};
      for (var k in parent.prototype) proto[k] = parent.prototype[k];
      for (var p in props) proto[p] = props[p];
      return proto;
    };
    var AbstractAjaxProcessor = Class.create();
    AbstractAjaxProcessor.prototype = {
      initialize: function (request, responseXML, gc) { this.request = request; this.responseXML = responseXML; this.gc = gc; },
      getParameter: function (name) { return this.request.getParameter(name); },
      getName: function () { return this.getParameter('sysparm_name'); },
      type: 'AbstractAjaxProcessor'
    };
  `, server);
  inst.server = server;

  const records = (table) => manifest.records.filter((r) => r.table === table);
  for (const r of records('sys_script_include')) {
    vm.runInContext(readScript(r.script), server, { filename: r.script });
  }

  /** Evaluates an expression or runs a script in the server context with these globals. */
  inst.runServer = (code, globals = {}, filename = 'inline') => {
    Object.assign(server, { current: null, previous: null, action: null }, globals);
    return vm.runInContext(code, server, { filename });
  };

  // ---- records ---------------------------------------------------------------------------
  inst.insert = (table, values, { variables = {} } = {}) => {
    const gr = new GlideRecord(table);
    for (const [k, v] of Object.entries(values)) gr.setValue(k, v);
    Object.assign(gr._variables, variables);
    return gr.insert();
  };
  inst.row = (table, sysId) => inst.db[table].get(sysId);
  inst.load = (table, sysId) => {
    const gr = new GlideRecord(table);
    if (!gr.get(sysId)) throw new Error(`no ${table} ${sysId}`);
    return gr;
  };

  /**
   * Saves changes to a record as a user would, then runs the business rules of that table whose
   * condition holds (async rules: `previous` is null inside the script). Returns their names.
   */
  inst.update = (table, sysId, changes, { user } = {}) => {
    const saved = inst.user;
    if (user) inst.user = user;
    try {
      const gr = inst.load(table, sysId);
      for (const [k, v] of Object.entries(changes)) gr.setValue(k, v);
      const before = { ...gr._prev };
      gr.update();
      const current = inst.load(table, sysId);
      current._prev = before;
      const previous = new GlideRecord(table);
      previous._load({ values: before, variables: current._variables });
      const fired = [];
      const rules = records('sys_script').filter((r) => r.fields.collection === table && r.fields.action_update === 'true');
      for (const rule of rules) {
        const cond = rule.fields.condition;
        if (cond && !inst.runServer(cond, { current, previous }, `${rule.key} condition`)) continue;
        fired.push(rule.fields.name);
        const fresh = inst.load(table, sysId); // an async rule reads the saved record
        fresh._prev = before;
        inst.runServer(readScript(rule.script), { current: fresh, previous: rule.fields.when === 'async' ? null : previous }, rule.script);
      }
      return fired;
    } finally {
      inst.user = saved;
    }
  };

  /** Runs a UI action on a record: condition first; returns false when it is not shown. */
  inst.uiAction = (key, table, sysId) => {
    const rule = manifest.records.find((r) => r.key === key);
    const current = inst.load(table, sysId);
    if (rule.fields.condition && !inst.runServer(rule.fields.condition, { current }, `${key} condition`)) return false;
    let redirect = null;
    inst.runServer(readScript(rule.script), { current, action: { setRedirectURL: (gr) => { redirect = gr; } } }, rule.script);
    return { redirect };
  };

  // ---- GlideAjax: the client's way into client-callable Script Includes -----------------
  /** Would the platform let the current session call this client-callable include? */
  inst.ajaxAllowed = (name) => {
    const request = { getParameter: () => null };
    server.__request = request;
    const isPublic = vm.runInContext(`(function () { var p = new ${name}(__request); return typeof p.isPublic === 'function' ? p.isPublic() : null; })()`, server);
    if (!inst.user) {
      // a guest (public page): only an include that says it is public
      return isPublic === true;
    }
    const acls = records('sys_security_acl').filter((a) => a.fields.active !== 'false' && textOf(a.fields.type) === 'client_callable_script_include' && a.fields.name === name);
    return acls.length === 0 || acls.some((acl) => {
      if (acl.fields.admin_overrides === 'true' && inst.roles.includes('admin')) return true;
      const roles = records('sys_security_acl_role').filter((l) => l.fields.sys_security_acl === `@${acl.key}`).map((l) => l.fields.sys_user_role.display_value);
      return roles.some((role) => inst.roles.includes(role));
    });
  };

  inst.callAjax = (name, params) => {
    const include = records('sys_script_include').find((r) => r.fields.name === name);
    if (!include) throw new Error(`GlideAjax: no Script Include ${name}`);
    if (include.fields.client_callable !== 'true') throw new Error(`GlideAjax: ${name} is not client callable`);
    const method = params.sysparm_name;
    inst.ajax.push({ name, params: { ...params } });
    if (!inst.ajaxAllowed(name)) {
      // the platform answers an empty response and logs the refusal
      inst.logs.push({ level: 'warn', msg: `Access to Script Include ${name} blocked for ${inst.user || 'guest'}` });
      return null;
    }
    const request = { getParameter: (p) => (Object.prototype.hasOwnProperty.call(params, p) ? params[p] : null) };
    server.__request = request;
    const answer = vm.runInContext(
      `(function () { var p = new ${name}(__request); var m = ${JSON.stringify(method)};
         if (typeof m !== 'string' || m.charAt(0) === '_' || m === 'initialize' || typeof p[m] !== 'function') return null;
         return p[m](); })()`,
      server,
    );
    return answer === null || answer === undefined ? null : String(answer);
  };

  // ---- the catalog form ---------------------------------------------------------------------
  /**
   * Opens the catalog form of the "Gatehouse VM" variable set: its variables with their
   * defaults, its onChange scripts bound to their variables, then its onLoad scripts.
   */
  inst.openCatalogForm = () => {
    const variables = records('item_option_new');
    const form = new FormShim(variables);
    const pending = [];
    const failures = [];
    class GlideAjax {
      constructor(name) { this._name = name; this._params = {}; }
      addParam(k, v) { this._params[String(k)] = String(v); }
      getXMLAnswer(callback) {
        pending.push(new Promise((resolve) => {
          setImmediate(() => {
            try {
              callback(inst.callAjax(this._name, this._params));
            } catch (e) {
              failures.push(e);
            }
            resolve();
          });
        }));
      }
      getXMLWait() { throw new Error('GlideAjax.getXMLWait is synchronous: not allowed in catalog client scripts'); }
    }
    const load = (r) => {
      const ctx = vm.createContext({ g_form: form, GlideAjax });
      vm.runInContext(readScript(r.script), ctx, { filename: r.script });
      return ctx;
    };
    const scripts = records('catalog_script_client').filter((r) => r.fields.active !== 'false');
    for (const r of scripts.filter((s) => s.fields.type === 'onChange')) {
      const target = variables.find((v) => `IO:@${v.key}` === r.fields.cat_variable);
      if (!target) throw new Error(`${r.key}: cat_variable points to no variable`);
      const ctx = load(r);
      form._onChange(target.fields.name, (oldValue, newValue, isLoading) => ctx.onChange(null, oldValue, newValue, isLoading, false));
    }
    const onSubmit = scripts.filter((s) => s.fields.type === 'onSubmit').map((r) => load(r));
    applyUiPolicies(form, 'applies_catalog');
    for (const r of scripts.filter((s) => s.fields.type === 'onLoad')) load(r).onLoad();
    form.settle = async () => {
      while (pending.length) await pending.shift();
      if (failures.length) throw failures[0];
    };
    form.submit = () => onSubmit.every((ctx) => ctx.onSubmit() !== false);
    return form;
  };

  /**
   * Runs the catalog UI policies of the variable set that apply to this view ("applies_catalog",
   * "applies_req_item" or "applies_sc_task") and load with the form. Only unconditional policies
   * are modelled (an empty catalog_conditions); anything else is refused, not guessed.
   */
  function applyUiPolicies(form, appliesField) {
    const policies = records('catalog_ui_policy')
      .filter((p) => p.fields.active !== 'false' && p.fields.variable_set === '@variable_set' && p.fields[appliesField] === 'true' && p.fields.on_load === 'true')
      .sort((a, b) => Number(a.fields.order) - Number(b.fields.order));
    for (const policy of policies) {
      if (policy.fields.catalog_conditions) throw new Error(`${policy.key}: the shim models unconditional catalog UI policies only`);
      const actions = records('catalog_ui_policy_action')
        .filter((a) => a.fields.ui_policy === `@${policy.key}`)
        .sort((a, b) => Number(a.fields.order) - Number(b.fields.order));
      for (const action of actions) {
        const target = records('item_option_new').find((v) => `IO:@${v.key}` === action.fields.catalog_variable);
        if (!target) throw new Error(`${action.key}: catalog_variable points to no variable`);
        const name = target.fields.name;
        const flag = (v) => (v === 'true' ? true : v === 'false' ? false : null);
        if (flag(action.fields.mandatory) !== null) form.setMandatory(name, flag(action.fields.mandatory));
        if (flag(action.fields.visible) !== null) form.setVisible(name, flag(action.fields.visible));
        if (flag(action.fields.disabled) !== null) form.setReadOnly(name, flag(action.fields.disabled));
      }
    }
  }

  /**
   * The variable editor of a requested item (table sc_req_item) or of one of its catalog tasks
   * (sc_task): the variable set's variables with the item's values, after the UI policies of that
   * view. No client script runs there (theirs apply to the catalog view only).
   */
  inst.openVariableEditor = (table, values) => {
    const applies = { sc_req_item: 'applies_req_item', sc_task: 'applies_sc_task' }[table];
    if (!applies) throw new Error(`openVariableEditor: ${table} has no variable editor in the shim`);
    const form = new FormShim(records('item_option_new'));
    for (const [name, value] of Object.entries(values || {})) form._field(name).value = String(value);
    applyUiPolicies(form, applies);
    return form;
  };

  /** Every log line, for the check that no secret ever reaches the log. */
  inst.logText = () => inst.logs.map((l) => `${l.level}: ${l.msg}`).join('\n');
  return inst;
}

/** g_form of a catalog form: values, choices and field messages of the variables. */
export class FormShim {
  constructor(variables) {
    this.fields = {};
    this.handlers = {};
    this.formMessages = [];
    for (const v of variables) {
      const choice = v.fields.type === '5';
      this.fields[v.fields.name] = {
        value: v.fields.default_value || '',
        options: choice && v.fields.include_none === 'true' ? [{ value: '', label: '-- None --' }] : [],
        messages: [],
        choice,
        label: v.fields.question_text,
        mandatory: v.fields.mandatory === 'true',
        readOnly: v.fields.read_only === 'true',
        visible: true,
      };
    }
  }
  _field(name) {
    const f = this.fields[name];
    if (!f) throw new Error(`g_form: no variable ${name} on this form`);
    return f;
  }
  _onChange(name, fn) { (this.handlers[name] = this.handlers[name] || []).push(fn); }
  getValue(name) { return this._field(name).value; }
  setValue(name, value) {
    const f = this._field(name);
    const old = f.value;
    f.value = value === null || value === undefined ? '' : String(value);
    if (old !== f.value) for (const fn of this.handlers[name] || []) fn(old, f.value, false);
  }
  clearOptions(name) { this._field(name).options = []; }
  addOption(name, value, label, index) {
    const options = this._field(name).options;
    const option = { value: String(value), label: String(label) };
    if (index === undefined) options.push(option);
    else options.splice(index, 0, option);
  }
  removeOption(name, value) {
    const f = this._field(name);
    f.options = f.options.filter((o) => o.value !== String(value));
  }
  showFieldMsg(name, message, type) { this._field(name).messages.push({ message: String(message), type: String(type || 'info') }); }
  hideFieldMsg(name, clearAll) {
    const f = this._field(name);
    f.messages = clearAll ? [] : f.messages.slice(0, -1);
  }
  setMandatory(name, on) { this._field(name).mandatory = !!on; }
  isMandatory(name) { return this._field(name).mandatory; }
  /** Like the platform: a mandatory variable without a value cannot be made read-only or hidden. */
  setReadOnly(name, on) {
    const f = this._field(name);
    if (on && f.mandatory && f.value === '') return;
    f.readOnly = !!on;
  }
  isReadOnly(name) { return this._field(name).readOnly; }
  setVisible(name, on) {
    const f = this._field(name);
    if (!on && f.mandatory && f.value === '') return;
    f.visible = !!on;
  }
  setDisplay(name, on) { this.setVisible(name, on); }
  isVisible(name) { return this._field(name).visible; }
  getLabelOf(name) { return this._field(name).label; }
  addErrorMessage(m) { this.formMessages.push({ type: 'error', message: String(m) }); }
  addInfoMessage(m) { this.formMessages.push({ type: 'info', message: String(m) }); }
  clearMessages() { this.formMessages = []; }
  /** The choices of a variable without the empty "-- None --" one. */
  choices(name) { return this._field(name).options.filter((o) => o.value !== ''); }
  errors(name) { return this._field(name).messages.filter((m) => m.type === 'error').map((m) => m.message); }
}
