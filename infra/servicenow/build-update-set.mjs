#!/usr/bin/env node
// Builds gatehouse-update-set.xml (a ServiceNow update set, "Import Update Set from XML") from
// manifest.json and the script files in src/, so that the two never diverge.
//
//   node build-update-set.mjs           write gatehouse-update-set.xml
//   node build-update-set.mjs --check   exit 1 if gatehouse-update-set.xml is not what it would write
//   node build-update-set.mjs --stamp   set manifest.json's recorded_at to now (UTC), then write
//
// The output is deterministic: sys_ids are derived from each record's key, and every date is the
// manifest's recorded_at. Bump it (--stamp) when a script changes: ServiceNow's preview compares
// dates, and a re-import older than the instance's own copy shows up as a collision.
// No dependencies: Node 20's standard library only.

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const OUTPUT = join(HERE, 'gatehouse-update-set.xml');
export const MANIFEST = join(HERE, 'manifest.json');

const md5 = (text) => createHash('md5').update(text, 'utf8').digest('hex');

/** sys_id of a record: 32 hex digits, stable for its key. */
export const sysIdOf = (key) => md5(`gatehouse:${key}`);

/** XML text escaping (element content and attribute values). */
export function escapeXml(text) {
  return String(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

// Fields every record of a table carries, before the manifest's own fields.
const TABLE_DEFAULTS = {
  item_option_new_set: { active: 'true' },
  item_option_new: {
    active: 'true', cat_item: '', default_value: '', include_none: 'false', mandatory: 'false',
    read_only: 'false', tooltip: '', visible_guide: 'true', visible_standalone: 'true',
    visible_summary: 'true',
  },
  sys_script_include: {
    access: 'package_private', active: 'true', caller_access: '', client_callable: 'false',
    mobile_callable: 'false', sandbox_callable: 'false',
  },
  catalog_script_client: {
    active: 'true', applies_catalog: 'true', applies_req_item: 'false', applies_sc_task: 'false',
    applies_target_record: 'false', cat_item: '', cat_variable: '', isolate_script: 'true',
    order: '100', ui_type: '10', va_supported: 'false',
  },
  sys_script: {
    abort_action: 'false', access: 'package_private', action_delete: 'false', action_insert: 'false',
    action_query: 'false', action_update: 'false', active: 'true', add_message: 'false',
    advanced: 'true', change_fields: 'false', client_callable: 'false', execute_function: 'false',
    filter_condition: '', is_rest: 'false', message: '', order: '100', priority: '100',
    role_conditions: '', template: '',
  },
  sys_ui_action: {
    active: 'true', client: 'false', form_action: 'true', form_button: 'true',
    form_context_menu: 'false', form_link: 'false', isolate_script: 'true', list_action: 'false',
    list_banner_button: 'false', list_button: 'false', list_choice: 'false',
    list_context_menu: 'false', list_link: 'false', order: '100', show_insert: 'false',
    show_multiple_update: 'false', show_query: 'false', show_update: 'true',
    ui11_compatible: 'true', ui16_compatible: 'true',
  },
  sys_script_fix: { before: 'false', record_for_rollback: 'true', unloadable: 'false' },
  // Catalog UI policy on a variable set; the field names are the ones of the Catalog UI Policy
  // form (https://www.servicenow.com/docs/r/australia/servicenow-platform/service-catalog/t_CreatUIPolicyForSvcCalgIt.html).
  catalog_ui_policy: {
    active: 'true', applies_catalog: 'false', applies_req_item: 'false', applies_sc_task: 'false',
    applies_target_record: 'false', applies_to: 'set', catalog_conditions: '', catalog_item: '',
    global: 'true', inherit: 'false', isolate_script: 'true', on_load: 'true', order: '100',
    reverse_if_false: 'true', run_scripts: 'false', script_false: '', script_true: '', ui_type: '10',
    va_supported: 'false', variable_set: '',
  },
  // mandatory / visible / disabled (= read only): 'true', 'false' or 'ignore' (Leave alone).
  catalog_ui_policy_action: { cleared: 'false', disabled: 'ignore', mandatory: 'ignore', order: '100', visible: 'ignore' },
  sys_security_acl: { active: 'true', admin_overrides: 'true', advanced: 'false', condition: '', decision_type: 'allow', script: '' },
  sys_security_acl_role: {},
  sys_dictionary: {
    active: 'true', array: 'false', attributes: '', audit: 'false', default_value: '', display: 'false',
    mandatory: 'false', primary: 'false', read_only: 'false', reference: '', spell_check: 'false',
    text_index: 'false', unique: 'false', virtual: 'false',
  },
  sys_documentation: { help: '', hint: '', url: '', url_target: '' },
};

// Reference fields to other records of this update set: "@key" (or "IO:@key") in the manifest,
// written with the display_value of the record they point to.
const REFERENCES = new Set(['variable_set', 'cat_item', 'ui_policy', 'sys_security_acl']);

// Tables whose records ServiceNow names by what they describe rather than by sys_id, with the
// attributes their payload's element carries (sys_dictionary_<table>_<element>,
// sys_documentation_<table>_<element>_<language>).
const NAMED_UPDATES = {
  sys_dictionary: (f) => ({ name: `sys_dictionary_${f.name}_${f.element}`, attrs: { element: f.element, table: f.name } }),
  sys_documentation: (f) => ({
    name: `sys_documentation_${f.name}_${f.element}_${f.language}`,
    attrs: { element: f.element, label: f.label, language: f.language, table: f.name },
  }),
};

/** The sys_update_xml name of a manifest record (and its payload's sys_update_name). */
export function updateNameOf(record) {
  const named = NAMED_UPDATES[record.table];
  return named ? named(record.fields).name : `${record.table}_${sysIdOf(record.key)}`;
}

/** A manifest field value: a string, or {value, display_value, name} for a reference by name. */
export const textOf = (value) => (value !== null && typeof value === 'object' ? String(value.value) : String(value));

export function loadManifest() {
  return JSON.parse(readFileSync(MANIFEST, 'utf8'));
}

/** Every .js under src/, relative to HERE (to check that each one is in the manifest). */
export function sourceFiles() {
  const out = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.js')) out.push(relative(HERE, path).split('\\').join('/'));
    }
  };
  walk(join(HERE, 'src'));
  return out;
}

function resolveRecords(manifest) {
  const byKey = new Map();
  for (const r of manifest.records) {
    if (byKey.has(r.key)) throw new Error(`manifest: duplicate key ${r.key}`);
    if (!TABLE_DEFAULTS[r.table]) throw new Error(`manifest: ${r.key}: unknown table ${r.table}`);
    byKey.set(r.key, r);
  }
  const listed = new Set();
  const records = manifest.records.map((r) => {
    const fields = { ...TABLE_DEFAULTS[r.table], ...r.fields };
    if (r.script) {
      fields.script = readFileSync(join(HERE, r.script), 'utf8');
      listed.add(r.script);
    }
    const refs = {};
    for (const [name, value] of Object.entries(fields)) {
      if (typeof value !== 'string') continue;
      const m = /^(IO:)?@([a-z_]+)$/.exec(value);
      if (!m) continue;
      const target = byKey.get(m[2]);
      if (!target) throw new Error(`manifest: ${r.key}.${name}: no record ${m[2]}`);
      fields[name] = (m[1] || '') + sysIdOf(target.key);
      if (REFERENCES.has(name)) refs[name] = target.sys_name || textOf(target.fields[target.display]);
    }
    const display = r.sys_name || (r.fields[r.display] !== undefined ? textOf(r.fields[r.display]) : '');
    if (!display) throw new Error(`manifest: ${r.key}: no display field ${r.display}`);
    const named = NAMED_UPDATES[r.table] ? NAMED_UPDATES[r.table](fields) : null;
    return { ...r, sysId: sysIdOf(r.key), fields, refs, displayValue: display, updateName: updateNameOf(r), elementAttrs: named ? named.attrs : null };
  });
  const missing = sourceFiles().filter((f) => !listed.has(f));
  if (missing.length) throw new Error(`manifest: script files not in manifest.json: ${missing.join(', ')}`);
  return records;
}

/** The record's own XML: what ServiceNow keeps in sys_update_xml.payload. */
function recordXml(record, meta) {
  const updateName = record.updateName;
  const fields = {
    ...record.fields,
    sys_class_name: record.table,
    sys_created_by: meta.recorded_by,
    sys_created_on: meta.recorded_at,
    sys_id: record.sysId,
    sys_mod_count: '0',
    sys_name: record.displayValue,
    sys_package: null, // written below with its attributes
    sys_policy: '',
    sys_scope: null,
    sys_update_name: updateName,
    sys_updated_by: meta.recorded_by,
    sys_updated_on: meta.recorded_at,
  };
  const lines = [];
  for (const name of Object.keys(fields).sort()) {
    const value = fields[name];
    if (name === 'sys_package') {
      lines.push('<sys_package display_value="Global" source="global">global</sys_package>');
    } else if (name === 'sys_scope') {
      lines.push('<sys_scope display_value="Global">global</sys_scope>');
    } else if (name === 'filter_condition' || name === 'role_conditions') {
      lines.push(value === '' ? `<${name}/>` : `<${name} table="${escapeXml(fields.collection || '')}">${escapeXml(value)}</${name}>`);
    } else if (record.refs[name] !== undefined) {
      lines.push(`<${name} display_value="${escapeXml(record.refs[name])}">${escapeXml(value)}</${name}>`);
    } else if (value !== null && typeof value === 'object') {
      // a reference by name, e.g. <sys_user_role display_value="snc_internal" name="snc_internal">
      const attrs = Object.keys(value).filter((k) => k !== 'value').sort().map((k) => ` ${k}="${escapeXml(value[k])}"`).join('');
      lines.push(`<${name}${attrs}>${escapeXml(value.value)}</${name}>`);
    } else if (value === '') {
      lines.push(`<${name}/>`);
    } else {
      lines.push(`<${name}>${escapeXml(value)}</${name}>`);
    }
  }
  const head = '<?xml version="1.0" encoding="UTF-8"?>';
  const body = lines.join('');
  if (record.elementAttrs) {
    const attrs = Object.entries(record.elementAttrs).map(([k, v]) => ` ${k}="${escapeXml(v)}"`).join('');
    if (record.table === 'sys_documentation') {
      // a field's labels are grouped under one element per (table, element, language)
      return `${head}<record_update><sys_documentation${attrs}><sys_documentation action="INSERT_OR_UPDATE">${body}</sys_documentation></sys_documentation></record_update>`;
    }
    return `${head}<record_update><${record.table} action="INSERT_OR_UPDATE"${attrs}>${body}</${record.table}></record_update>`;
  }
  return `${head}<record_update table="${record.table}"><${record.table} action="INSERT_OR_UPDATE">${body}</${record.table}></record_update>`;
}

/** The table a sys_update_xml names (what the update set list shows under Table). */
function updateTable(r) {
  if (r.table === 'sys_script') return r.fields.collection;
  if (r.table === 'sys_ui_action') return r.fields.table;
  if (r.table === 'sys_dictionary' || r.table === 'sys_documentation') return r.fields.name;
  return '';
}

/** The whole update set as XML text. */
export function build(manifest = loadManifest()) {
  const meta = manifest.update_set;
  if (!/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(meta.recorded_at)) {
    throw new Error('manifest: update_set.recorded_at must look like 2026-11-22 00:00:00 (UTC)');
  }
  const records = resolveRecords(manifest);
  const payloads = records.map((r) => recordXml(r, meta));
  // A new version is a new remote update set: its sys_id follows the content.
  const version = md5(payloads.join('\n')).slice(0, 7);
  const setId = md5(`gatehouse-update-set:${version}`);
  const setName = `${meta.name} (${version})`;
  const out = [];
  out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push(`<!-- Generated by infra/servicenow/build-update-set.mjs from manifest.json and src/. Do not edit. -->`);
  out.push(`<unload unload_date="${meta.recorded_at}">`);
  out.push('<sys_remote_update_set action="INSERT_OR_UPDATE">');
  const setFields = {
    application: ['global', 'Global'],
    application_name: 'Global',
    application_scope: 'global',
    application_version: '',
    collisions: '',
    commit_date: '',
    deleted: '',
    description: meta.description,
    inserted: '',
    name: setName,
    origin_sys_id: '',
    parent: ['', ''],
    release_date: '',
    remote_base_update_set: ['', ''],
    remote_parent_id: '',
    remote_sys_id: setId,
    state: 'loaded',
    summary: '',
    sys_class_name: 'sys_remote_update_set',
    sys_created_by: meta.recorded_by,
    sys_created_on: meta.recorded_at,
    sys_id: setId,
    sys_mod_count: '0',
    sys_updated_by: meta.recorded_by,
    sys_updated_on: meta.recorded_at,
    update_set: ['', ''],
    update_source: ['', ''],
    updated: '',
  };
  for (const [name, value] of Object.entries(setFields)) out.push(element(name, value));
  out.push('</sys_remote_update_set>');
  records.forEach((r, i) => {
    const payload = payloads[i];
    out.push('<sys_update_xml action="INSERT_OR_UPDATE">');
    const fields = {
      action: 'INSERT_OR_UPDATE',
      application: ['global', 'Global'],
      category: 'customer',
      comments: '',
      name: r.updateName,
      payload,
      remote_update_set: [setId, setName],
      replace_on_upgrade: 'false',
      sys_created_by: meta.recorded_by,
      sys_created_on: meta.recorded_at,
      sys_id: md5(`gatehouse-update:${version}:${r.key}`),
      sys_mod_count: '0',
      sys_recorded_at: meta.recorded_at,
      sys_updated_by: meta.recorded_by,
      sys_updated_on: meta.recorded_at,
      table: updateTable(r),
      target_name: r.displayValue,
      type: r.type,
      update_domain: 'global',
      update_guid: md5(`guid:${payload}`),
      update_guid_history: '',
      update_set: ['', ''],
      view: '',
    };
    for (const [name, value] of Object.entries(fields)) out.push(element(name, value));
    out.push('</sys_update_xml>');
  });
  out.push('</unload>');
  return out.join('\n') + '\n';
}

function element(name, value) {
  if (Array.isArray(value)) {
    const [v, display] = value;
    return v === '' ? `<${name} display_value="${escapeXml(display)}"/>` : `<${name} display_value="${escapeXml(display)}">${escapeXml(v)}</${name}>`;
  }
  return value === '' ? `<${name}/>` : `<${name}>${escapeXml(value)}</${name}>`;
}

function main(args) {
  if (args.includes('--stamp')) {
    const manifest = loadManifest();
    manifest.update_set.recorded_at = new Date().toISOString().slice(0, 19).replace('T', ' ');
    writeFileSync(MANIFEST, JSON.stringify(manifest, null, 2) + '\n');
  }
  const xml = build();
  if (args.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(OUTPUT, 'utf8');
    } catch {
      current = '';
    }
    if (current !== xml) {
      console.error('gatehouse-update-set.xml is out of date: run node infra/servicenow/build-update-set.mjs');
      process.exit(1);
    }
    console.log('gatehouse-update-set.xml is up to date');
    return;
  }
  writeFileSync(OUTPUT, xml);
  console.log(`wrote ${relative(process.cwd(), OUTPUT) || OUTPUT}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2));
}
