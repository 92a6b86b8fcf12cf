// The committed update set is what the generator makes from the script files, and it holds them intact.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import vm from 'node:vm';

import { HERE, OUTPUT, build, loadManifest, sourceFiles, sysIdOf } from '../build-update-set.mjs';
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
      const update = updates.find((u) => u.find((c) => c.name === 'name').text === `${record.table}_${sysIdOf(record.key)}`);
      assert.ok(update, `${record.key} has a sys_update_xml`);
      assert.equal(update.find((c) => c.name === 'remote_update_set').text, setId);
      assert.equal(update.find((c) => c.name === 'type').text, record.type);
      const payload = update.find((c) => c.name === 'payload').text;
      assertWellFormed(payload, `${record.key} payload`);
      const inner = new RegExp(`<${record.table} action="INSERT_OR_UPDATE">([\\s\\S]*)</${record.table}>`).exec(payload);
      assert.ok(inner, `${record.key}: payload holds a ${record.table} record`);
      const fields = Object.fromEntries(children(inner[1]).map((c) => [c.name, c.text]));
      assert.equal(fields.sys_id, sysIdOf(record.key));
      assert.equal(fields.sys_update_name, `${record.table}_${sysIdOf(record.key)}`);
      for (const [name, value] of Object.entries(record.fields)) {
        if (!String(value).includes('@')) assert.equal(fields[name], value, `${record.key}.${name}`);
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

  test('the fix script creates the missing properties, keeps existing ones, and checks the field', () => {
    const inst = instance();
    const manifest = loadManifest();
    const fix = manifest.records.find((r) => r.table === 'sys_script_fix');
    inst.insert('sys_properties', { name: 'x_gatehouse.base_url', type: 'string', value: 'https://kept.example.com' });
    inst.runServer(readFileSync(join(HERE, fix.script), 'utf8'));
    const props = [...inst.db.sys_properties.values()].map((r) => r.values);
    assert.deepEqual(props.map((p) => p.name).sort(), [
      'x_gatehouse.api_token', 'x_gatehouse.base_url', 'x_gatehouse.integration_user',
      'x_gatehouse.mid_server', 'x_gatehouse.timeout_ms', 'x_gatehouse.webhook_secret',
    ]);
    assert.equal(props.find((p) => p.name === 'x_gatehouse.base_url').value, 'https://kept.example.com');
    assert.equal(props.find((p) => p.name === 'x_gatehouse.api_token').type, 'password2');
    assert.equal(props.find((p) => p.name === 'x_gatehouse.webhook_secret').type, 'password2');
    assert.match(inst.logText(), /create the field u_gatehouse_request_id/);

    inst.insert('sys_dictionary', { name: 'sc_req_item', element: 'u_gatehouse_request_id', internal_type: 'string' });
    inst.logs.length = 0;
    inst.runServer(readFileSync(join(HERE, fix.script), 'utf8'));
    assert.equal(inst.db.sys_properties.size, 6, 'a second run creates nothing');
    assert.match(inst.logText(), /field sc_req_item\.u_gatehouse_request_id exists/);
  });
});
