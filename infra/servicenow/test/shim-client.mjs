// The client side of the shim: GlideAjax calls into client-callable Script Includes (after the
// platform's access checks), the catalog form with its client scripts and UI policies, the
// variable editors, and their g_form (FormShim). Kept apart from shim.mjs, which adds it to an
// instance.

import vm from 'node:vm';

import { textOf } from '../build-update-set.mjs';

/**
 * Adds ajaxAllowed, callAjax, openCatalogForm and openVariableEditor to inst. server is its
 * global-scope context, records(table) the manifest's records of a table; readScript is passed
 * in rather than imported so that shim.mjs and this file do not import each other.
 */
export function addClientSide(inst, { server, records, readScript }) {
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
