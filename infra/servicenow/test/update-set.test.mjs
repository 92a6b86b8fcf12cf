// The committed update set is what the generator makes from the script files, and it holds them intact.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import vm from 'node:vm';

import { HERE, OUTPUT, build, loadManifest, sourceFiles, sysIdOf, textOf, updateNameOf } from '../build-update-set.mjs';
import { instance } from './helpers.mjs';

const unescapeXml = (s) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');

/** Child elements of an XML fragment with no CDATA, comments or processing instructions inside. */
function children(xml) {
  const out = [];
  const re = /<([A-Za-z_][\w.-]*)((?:\s+[\w.-]+="[^"<]*")*)\s*(\/>|>([^<]*)<\/\1>)/g;
  let m;
  while ((m = re.exec(xml))) out.push({ name: m[1], attrs: m[2], text: m[4] === undefined ? '' : unescapeXml(m[4]) });
  return out;
}

/** Attributes of an element's attribute text, as an object. */
const attrsOf = (text) => Object.fromEntries([...String(text).matchAll(/([\w.-]+)="([^"]*)"/g)].map((m) => [m[1], unescapeXml(m[2])]));

/** Every sys_update_xml of the committed update set: {name, type, table, payload}. */
function updates() {
  const xml = readFileSync(OUTPUT, 'utf8');
  return [...xml.matchAll(/<sys_update_xml action="INSERT_OR_UPDATE">([\s\S]*?)<\/sys_update_xml>/g)].map((m) => {
    const c = children(m[1]);
    const get = (n) => c.find((x) => x.name === n).text;
    return { name: get('name'), type: get('type'), table: get('table'), payload: get('payload') };
  });
}

/** The record a payload holds: its fields by name ({text, attrs}), and the element's own attributes. */
function payloadRecord(payload, table) {
  const open = new RegExp(`<${table} action="INSERT_OR_UPDATE"([^>]*)>`).exec(payload);
  assert.ok(open, `payload holds a ${table} record`);
  const start = open.index + open[0].length;
  const end = payload.indexOf(`</${table}>`, start);
  const fields = {};
  for (const c of children(payload.slice(start, end))) fields[c.name] = { text: c.text, attrs: attrsOf(c.attrs) };
  return { fields, attrs: attrsOf(open[1]) };
}

const recordOf = (key) => loadManifest().records.find((r) => r.key === key);
const updateOf = (key) => {
  const u = updates().find((x) => x.name === updateNameOf(recordOf(key)));
  assert.ok(u, `${key} is in the update set`);
  return { ...u, record: payloadRecord(u.payload, recordOf(key).table) };
};

/** Well-formedness, the way a strict parser sees it: balanced tags, known entities only. */
function assertWellFormed(xml, what) {
  const body = xml.replace(/^<\?xml[^>]*\?>/, '').replace(/<!--[\s\S]*?-->/g, '');
  assert.ok(!/&(?!(amp|lt|gt|quot|apos);)/.test(body), `${what}: a bare &`);
  const stack = [];
  const re = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w.-]+="[^"<]*")*)\s*(\/?)>|<|>/g;
  let m;
  while ((m = re.exec(body))) {
    if (!m[2]) assert.fail(`${what}: a bare ${m[0]} at ${m.index}`);
    if (m[4]) continue;
    if (m[1]) assert.equal(stack.pop(), m[2], `${what}: </${m[2]}> closes something else`);
    else stack.push(m[2]);
  }
  assert.deepEqual(stack, [], `${what}: unclosed elements`);
}

describe('update set', () => {
  test('gatehouse-update-set.xml is what build-update-set.mjs makes from manifest.json and src/', () => {
    assert.equal(readFileSync(OUTPUT, 'utf8'), build(), 'out of date: run node infra/servicenow/build-update-set.mjs');
  });

  test('every script file is in the update set, byte for byte, in a well-formed payload', () => {
    const xml = readFileSync(OUTPUT, 'utf8');
    assertWellFormed(xml, 'update set');
    const manifest = loadManifest();
    const updates = [...xml.matchAll(/<sys_update_xml action="INSERT_OR_UPDATE">([\s\S]*?)<\/sys_update_xml>/g)].map((m) => children(m[1]));
    assert.equal(updates.length, manifest.records.length);
    const setId = /<sys_remote_update_set[^>]*>[\s\S]*?<sys_id>([0-9a-f]{32})<\/sys_id>/.exec(xml)[1];
    const scripts = new Set();
    for (const record of manifest.records) {
      const update = updates.find((u) => u.find((c) => c.name === 'name').text === updateNameOf(record));
      assert.ok(update, `${record.key} has a sys_update_xml`);
      assert.equal(update.find((c) => c.name === 'remote_update_set').text, setId);
      assert.equal(update.find((c) => c.name === 'type').text, record.type);
      const payload = update.find((c) => c.name === 'payload').text;
      assertWellFormed(payload, `${record.key} payload`);
      const inner = payloadRecord(payload, record.table);
      const fields = Object.fromEntries(Object.entries(inner.fields).map(([k, v]) => [k, v.text]));
      assert.equal(fields.sys_id, sysIdOf(record.key));
      assert.equal(fields.sys_update_name, updateNameOf(record));
      for (const [name, value] of Object.entries(record.fields)) {
        if (value !== null && typeof value === 'object') {
          assert.equal(fields[name], value.value, `${record.key}.${name}`);
          for (const [attr, text] of Object.entries(value)) if (attr !== 'value') assert.equal(inner.fields[name].attrs[attr], text, `${record.key}.${name} @${attr}`);
        } else if (!String(value).includes('@')) {
          assert.equal(fields[name], value, `${record.key}.${name}`);
        }
      }
      if (record.script) {
        assert.equal(fields.script, readFileSync(join(HERE, record.script), 'utf8'), `${record.key}: script intact`);
        scripts.add(record.script);
      }
    }
    assert.deepEqual([...scripts].sort(), sourceFiles(), 'every file in src/ is in the update set');
  });

  test('references point at records of the same update set', () => {
    const manifest = loadManifest();
    const xml = readFileSync(OUTPUT, 'utf8');
    const variableSet = sysIdOf('variable_set');
    const cloud = sysIdOf('var_cloud');
    const withSet = manifest.records.filter((r) => r.fields.variable_set);
    assert.ok(withSet.length >= 10);
    for (const r of withSet) assert.equal(r.fields.variable_set, '@variable_set');
    const payloads = [...xml.matchAll(/<payload>([^<]*)<\/payload>/g)].map((m) => unescapeXml(m[1]));
    assert.equal(payloads.filter((p) => p.includes(`<variable_set display_value="Gatehouse VM">${variableSet}</variable_set>`)).length, withSet.length);
    assert.equal(payloads.filter((p) => p.includes(`<cat_variable>IO:${cloud}</cat_variable>`)).length, 1);
  });

  test('the scripts are ES5 (global-scope server scripts and browsers) and parse', () => {
    for (const file of sourceFiles()) {
      const code = readFileSync(join(HERE, file), 'utf8');
      assert.doesNotThrow(() => new vm.Script(code, { filename: file }), file);
      const stripped = code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '').replace(/'(?:[^'\\\n]|\\.)*'/g, "''");
      for (const [what, re] of [['=>', /=>/], ['template literal', /`/], ['let', /\blet\s/], ['const', /\bconst\s/], ['class', /\bclass\s/], ['spread', /\.\.\./], ['for..of', /\bfor\s*\([^)]*\bof\b/]]) {
        assert.ok(!re.test(stripped), `${file}: ${what} is not ES5`);
      }
    }
  });

  test('GatehouseAjax is client callable, not public, and behind an ACL requiring snc_internal', () => {
    const include = updateOf('si_ajax').record.fields;
    assert.equal(include.client_callable.text, 'true');
    assert.match(include.script.text, /isPublic: function \(\) \{\s*return false;\s*\}/);

    const acl = updateOf('acl_ajax');
    assert.equal(acl.type, 'Access Control');
    assert.equal(acl.name, `sys_security_acl_${sysIdOf('acl_ajax')}`);
    const f = acl.record.fields;
    assert.equal(f.name.text, 'GatehouseAjax');
    assert.equal(f.type.text, 'client_callable_script_include');
    assert.equal(f.operation.text, 'execute');
    assert.equal(f.active.text, 'true');
    assert.equal(f.admin_overrides.text, 'true');
    assert.equal(f.advanced.text, 'false');

    const role = updateOf('acl_ajax_role');
    assert.equal(role.name, `sys_security_acl_role_${sysIdOf('acl_ajax_role')}`);
    const r = role.record.fields;
    assert.equal(r.sys_security_acl.text, sysIdOf('acl_ajax'), 'the role record points at the ACL of this update set');
    assert.equal(r.sys_security_acl.attrs.display_value, 'GatehouseAjax');
    assert.match(r.sys_user_role.text, /^[0-9a-f]{32}$/);
    assert.deepEqual(r.sys_user_role.attrs, { display_value: 'snc_internal', name: 'snc_internal' }, 'matched by name on import');
  });

  test('the field u_gatehouse_request_id ships: sys_dictionary (String, 64) and its label', () => {
    const dict = updateOf('dict_request_id');
    assert.equal(dict.name, 'sys_dictionary_sc_req_item_u_gatehouse_request_id');
    assert.equal(dict.type, 'Dictionary');
    assert.equal(dict.table, 'sc_req_item');
    assert.match(dict.payload, /^<\?xml version="1\.0" encoding="UTF-8"\?><record_update><sys_dictionary action="INSERT_OR_UPDATE" element="u_gatehouse_request_id" table="sc_req_item">/);
    const d = dict.record.fields;
    assert.equal(d.name.text, 'sc_req_item');
    assert.equal(d.element.text, 'u_gatehouse_request_id');
    assert.equal(d.internal_type.text, 'string');
    assert.equal(d.internal_type.attrs.display_value, 'String');
    assert.equal(d.max_length.text, '64');
    assert.equal(d.column_label.text, 'Gatehouse request');
    assert.equal(d.active.text, 'true');
    assert.equal(d.sys_update_name.text, dict.name);

    const doc = updateOf('doc_request_id');
    assert.equal(doc.name, 'sys_documentation_sc_req_item_u_gatehouse_request_id_en');
    assert.equal(doc.type, 'Field Label');
    assert.match(doc.payload, /<record_update><sys_documentation element="u_gatehouse_request_id" label="Gatehouse request" language="en" table="sc_req_item"><sys_documentation action="INSERT_OR_UPDATE">/);
    assert.match(doc.payload, /<\/sys_documentation><\/sys_documentation><\/record_update>$/);
    const l = doc.record.fields;
    assert.equal(l.label.text, 'Gatehouse request');
    assert.equal(l.language.text, 'en');
    assert.equal(l.name.text, 'sc_req_item');
    assert.equal(l.element.text, 'u_gatehouse_request_id');
  });

  test('the catalog UI policy keeps the approved variables read-only and visible on the item and its tasks', () => {
    const policy = updateOf('ui_policy_readonly');
    assert.equal(policy.type, 'Catalog UI Policy');
    const p = policy.record.fields;
    assert.equal(p.applies_to.text, 'set');
    assert.equal(p.variable_set.text, sysIdOf('variable_set'));
    assert.equal(p.variable_set.attrs.display_value, 'Gatehouse VM');
    assert.equal(p.applies_catalog.text, 'false');
    assert.equal(p.applies_req_item.text, 'true');
    assert.equal(p.applies_sc_task.text, 'true');
    assert.equal(p.on_load.text, 'true');
    assert.equal(p.catalog_conditions.text, '');
    assert.equal(p.active.text, 'true');

    const manifest = loadManifest();
    const variables = new Map(manifest.records.filter((r) => r.table === 'item_option_new').map((r) => [sysIdOf(r.key), r.fields.name]));
    const actions = manifest.records.filter((r) => r.table === 'catalog_ui_policy_action').map((r) => updateOf(r.key).record.fields);
    for (const a of actions) {
      assert.equal(a.ui_policy.text, sysIdOf('ui_policy_readonly'));
      assert.equal(a.visible.text, 'true');
      assert.equal(a.disabled.text, 'true', 'read only');
      assert.equal(a.mandatory.text, 'ignore');
    }
    const targets = actions.map((a) => variables.get(a.catalog_variable.text.replace(/^IO:/, ''))).sort();
    assert.deepEqual(targets, ['gatehouse_cloud', 'gatehouse_count', 'gatehouse_flavor', 'gatehouse_image', 'gatehouse_lease_days', 'gatehouse_network', 'gatehouse_server_name']);
  });

  test('the intake rule fires only for items using the variable set, and only when approval changes to approved', () => {
    const rule = updateOf('br_approved').record.fields;
    assert.match(rule.condition.text, /^current\.approval\.changesTo\('approved'\) && new GatehouseIntegration\(\)\.isGatehouseItem\(current\)$/);
    assert.equal(rule.when.text, 'async');
    const include = readFileSync(join(HERE, 'src/script_include/GatehouseIntegration.js'), 'utf8');
    assert.ok(include.includes(`GatehouseIntegration.VARIABLE_SET = '${sysIdOf('variable_set')}';`), 'the variable set sys_id of the update set');
    assert.match(include, /new GlideRecord\('io_set_item'\)/);
    assert.match(updateOf('ui_resend').record.fields.condition.text, /isGatehouseItem\(current\)/);
  });

  test('the fix script creates the missing properties private and admin-only, keeps values, and checks the field', () => {
    const inst = instance();
    const manifest = loadManifest();
    const fix = manifest.records.find((r) => r.table === 'sys_script_fix');
    inst.insert('sys_properties', { name: 'x_gatehouse.base_url', type: 'string', value: 'https://kept.example.com', is_private: 'false' });
    inst.runServer(readFileSync(join(HERE, fix.script), 'utf8'));
    const props = [...inst.db.sys_properties.values()].map((r) => r.values);
    assert.deepEqual(props.map((p) => p.name).sort(), [
      'x_gatehouse.api_token', 'x_gatehouse.base_url', 'x_gatehouse.integration_user',
      'x_gatehouse.mid_server', 'x_gatehouse.timeout_ms', 'x_gatehouse.webhook_secret',
    ]);
    for (const p of props) {
      assert.equal(p.is_private, 'true', `${p.name} is private (kept out of update sets)`);
      assert.equal(p.read_roles, 'admin', `${p.name}: only admins read it`);
      assert.equal(p.write_roles, 'admin', `${p.name}: only admins change it`);
    }
    assert.equal(props.find((p) => p.name === 'x_gatehouse.base_url').value, 'https://kept.example.com');
    assert.equal(props.find((p) => p.name === 'x_gatehouse.api_token').type, 'password2');
    assert.equal(props.find((p) => p.name === 'x_gatehouse.webhook_secret').type, 'password2');
    assert.match(inst.logText(), /the field sc_req_item\.u_gatehouse_request_id is missing/);

    inst.insert('sys_dictionary', { name: 'sc_req_item', element: 'u_gatehouse_request_id', internal_type: 'string' });
    inst.logs.length = 0;
    inst.runServer(readFileSync(join(HERE, fix.script), 'utf8'));
    assert.equal(inst.db.sys_properties.size, 6, 'a second run creates nothing');
    assert.match(inst.logText(), /field sc_req_item\.u_gatehouse_request_id exists/);
  });

  test('the fix script warns about a secret property that is not password2', () => {
    const inst = instance();
    const fix = loadManifest().records.find((r) => r.table === 'sys_script_fix');
    inst.insert('sys_properties', { name: 'x_gatehouse.api_token', type: 'string', value: 'plain' });
    inst.runServer(readFileSync(join(HERE, fix.script), 'utf8'));
    assert.match(inst.logText(), /^warn: Gatehouse: property x_gatehouse\.api_token is of type string, not password2/m);
    const token = [...inst.db.sys_properties.values()].find((r) => r.values.name === 'x_gatehouse.api_token').values;
    assert.equal(token.value, 'plain', 'the value is left alone');
    assert.equal(token.is_private, 'true');
  });

  test('the fix script points the GatehouseAjax ACL at this instance\'s snc_internal, or warns without one', () => {
    const fixScript = readFileSync(join(HERE, loadManifest().records.find((r) => r.table === 'sys_script_fix').script), 'utf8');

    const none = instance();
    none.runServer(fixScript);
    assert.match(none.logText(), /^warn: Gatehouse: there is no role snc_internal/m);

    // the import kept the update set's role sys_id, which this instance does not have
    const inst = instance();
    const role = inst.insert('sys_user_role', { name: 'snc_internal' });
    const acl = inst.insert('sys_security_acl', { sys_id: sysIdOf('acl_ajax'), name: 'GatehouseAjax', type: 'client_callable_script_include', operation: 'execute' });
    const shipped = recordOf('acl_ajax_role').fields.sys_user_role.value;
    const link = inst.insert('sys_security_acl_role', { sys_security_acl: acl, sys_user_role: shipped });
    inst.runServer(fixScript);
    assert.equal(inst.row('sys_security_acl_role', link).values.sys_user_role, role);
    assert.match(inst.logText(), /the ACL GatehouseAjax requires the role\(s\) snc_internal/);

    // a role an admin chose instead is left as it is
    const other = instance();
    other.insert('sys_user_role', { name: 'snc_internal' });
    const itil = other.insert('sys_user_role', { name: 'itil' });
    const acl2 = other.insert('sys_security_acl', { name: 'GatehouseAjax', type: 'client_callable_script_include', operation: 'execute' });
    const link2 = other.insert('sys_security_acl_role', { sys_security_acl: acl2, sys_user_role: itil });
    other.runServer(fixScript);
    assert.equal(other.row('sys_security_acl_role', link2).values.sys_user_role, itil);
    assert.equal(other.db.sys_security_acl_role.size, 1);
    assert.match(other.logText(), /requires the role\(s\) itil$/m);
  });
});
