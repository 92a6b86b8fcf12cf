// The Glide* API surface of the shim's server-side global scope: the tables the shim knows
// (SCHEMA), GlideRecord with its GlideElements (dot-walking, variables, journal fields,
// changes()/changesTo()), and gs, GlideDateTime, GlideStringUtil, GlideCertificateEncryption.
// Kept apart from shim.mjs, which builds an instance and wires these into its global scope.

import { createHmac } from 'node:crypto';

export const SCHEMA = {
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

/** GlideRecord of one instance: reads and writes inst.db, against this schema. */
export function glideRecordOf(inst, schema) {
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
  return GlideRecord;
}

/** gs and the other Glide globals of one instance (properties, logs, user, roles, clock). */
export function glideGlobalsOf(inst) {
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

  return { gs, GlideDateTime, GlideStringUtil, GlideCertificateEncryption };
}
