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
//
// The parts live in separate files: shim-glide.mjs (SCHEMA, GlideRecord, gs and the other Glide
// globals), shim-rest.mjs (sn_ws.RESTMessageV2) and shim-client.mjs (GlideAjax, the catalog form,
// the variable editors, FormShim). This file builds an instance from them and stays the entry
// point the tests import.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import vm from 'node:vm';

import { HERE as SN_DIR, loadManifest } from '../build-update-set.mjs';
import { addClientSide } from './shim-client.mjs';
import { SCHEMA, glideGlobalsOf, glideRecordOf } from './shim-glide.mjs';
import { restMessageOf } from './shim-rest.mjs';

export { FormShim } from './shim-client.mjs';

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

  const GlideRecord = glideRecordOf(inst, schema);
  inst.GlideRecord = GlideRecord;
  const RESTMessageV2 = restMessageOf(inst);
  const { gs, GlideDateTime, GlideStringUtil, GlideCertificateEncryption } = glideGlobalsOf(inst);

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

  addClientSide(inst, { server, records, readScript });

  /** Every log line, for the check that no secret ever reaches the log. */
  inst.logText = () => inst.logs.map((l) => `${l.level}: ${l.msg}`).join('\n');
  return inst;
}
