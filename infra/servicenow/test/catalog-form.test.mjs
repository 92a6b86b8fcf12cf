// The catalog client scripts and GatehouseAjax, on the shimmed form, against the running Gatehouse.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { TOKEN, api, assertNoSecretsLogged, closedPort, instance } from './helpers.mjs';

const pick = (items) => items.map((i) => ({ value: i.id, label: i.label }));

describe('catalog form', () => {
  test('onLoad fills the clouds; the only cloud is chosen and one getOptions call fills image, flavor and network', async () => {
    const inst = instance();
    const form = inst.openCatalogForm();
    await form.settle();

    const clouds = (await api('GET', '/v1/clouds')).body.clouds;
    const options = (await api('GET', '/v1/clouds/demo/options')).body;
    assert.deepEqual(form.choices('gatehouse_cloud').map((o) => o.value), clouds.map((c) => c.name));
    assert.equal(form.choices('gatehouse_cloud')[0].label, 'demo (RegionOne)');
    assert.equal(form.getValue('gatehouse_cloud'), 'demo', 'a single cloud is chosen at once');
    assert.deepEqual(form.choices('gatehouse_image'), pick(options.images));
    assert.deepEqual(form.choices('gatehouse_flavor'), pick(options.flavors));
    assert.deepEqual(form.choices('gatehouse_network'), pick(options.networks));
    assert.ok(form.choices('gatehouse_flavor').length >= 3);
    for (const f of ['gatehouse_cloud', 'gatehouse_image', 'gatehouse_flavor', 'gatehouse_network']) {
      assert.deepEqual(form.errors(f), [], `no error on ${f}`);
    }

    // exactly one AJAX call per step, and what went over the wire
    assert.deepEqual(inst.ajax.map((a) => a.params), [
      { sysparm_name: 'getClouds' },
      { sysparm_name: 'getOptions', sysparm_cloud: 'demo' },
    ]);
    assert.deepEqual(inst.http.map((h) => `${h.method} ${h.url.replace(/^https?:\/\/[^/]+/, '')}`), [
      'GET /v1/clouds',
      'GET /v1/clouds/demo/options',
    ]);
    for (const h of inst.http) {
      assert.equal(h.headers.Authorization, `Bearer ${TOKEN}`);
      assert.equal(h.headers.Accept, 'application/json');
      assert.equal(h.timeout_ms, 5000);
      assert.equal(h.body, null);
      assert.equal(h.response.status, 200);
    }
    assertNoSecretsLogged(inst);
  });

  test('clearing the cloud empties the other three; an unknown cloud shows a field message', async () => {
    const inst = instance();
    const form = inst.openCatalogForm();
    await form.settle();

    const calls = inst.ajax.length;
    form.setValue('gatehouse_cloud', '');
    await form.settle();
    for (const f of ['gatehouse_image', 'gatehouse_flavor', 'gatehouse_network']) {
      assert.deepEqual(form.choices(f), [], `${f} is empty`);
    }
    assert.equal(inst.ajax.length, calls, 'no call for an empty cloud');

    form.setValue('gatehouse_cloud', 'nowhere');
    await form.settle();
    assert.equal(inst.http.at(-1).response.status, 404);
    assert.deepEqual(form.errors('gatehouse_cloud'), ['The choices of cloud nowhere is not known to Gatehouse.']);
    for (const f of ['gatehouse_image', 'gatehouse_flavor', 'gatehouse_network']) {
      assert.deepEqual(form.choices(f), [], `${f} offers nothing`);
    }

    form.setValue('gatehouse_cloud', 'demo');
    await form.settle();
    assert.deepEqual(form.errors('gatehouse_cloud'), [], 'the message goes once the cloud loads');
    assert.ok(form.choices('gatehouse_image').length > 0);
  });

  test('an answer that arrives after the cloud changed again is dropped', async () => {
    const inst = instance();
    const form = inst.openCatalogForm();
    await form.settle();
    form.setValue('gatehouse_cloud', '');
    form.setValue('gatehouse_cloud', 'demo');
    form.setValue('gatehouse_cloud', ''); // before the demo answer comes back
    await form.settle();
    assert.deepEqual(form.choices('gatehouse_image'), []);
  });

  test('Gatehouse unreachable: the cloud field says so, and the log carries neither the token nor a stack', async () => {
    const port = await closedPort();
    const inst = instance({ 'x_gatehouse.base_url': `http://127.0.0.1:${port}` });
    const form = inst.openCatalogForm();
    await form.settle();
    assert.deepEqual(form.errors('gatehouse_cloud'), ['The list of clouds could not be loaded: Gatehouse is not reachable. Try again in a minute.']);
    assert.deepEqual(form.choices('gatehouse_cloud'), []);
    assert.match(inst.logText(), /^error: Gatehouse: GET \/v1\/clouds failed: Gatehouse could not be reached/m);
    assertNoSecretsLogged(inst);
  });

  test('a wrong token: 401 logged as a warning, a message for the requester', async () => {
    const inst = instance({ 'x_gatehouse.api_token': 'not-the-token-0123456789' });
    const form = inst.openCatalogForm();
    await form.settle();
    assert.equal(inst.http[0].response.status, 401);
    assert.deepEqual(form.errors('gatehouse_cloud'), ['The list of clouds could not be loaded (Gatehouse answered 401). Try again in a minute.']);
    assert.match(inst.logText(), /^warn: Gatehouse: GET \/v1\/clouds failed: Gatehouse answered HTTP 401/m);
    assertNoSecretsLogged(inst, 'not-the-token-0123456789');
  });

  test('no base URL configured: nothing is sent and the log says which property', async () => {
    const inst = instance({ 'x_gatehouse.base_url': '' });
    const form = inst.openCatalogForm();
    await form.settle();
    assert.equal(inst.http.length, 0);
    assert.match(inst.logText(), /x_gatehouse\.base_url is not an http\(s\) URL/);
    assert.equal(form.errors('gatehouse_cloud').length, 1);
  });

  test('onSubmit stores the server name trimmed and lower-cased and the count as a plain number', async () => {
    const inst = instance();
    const form = inst.openCatalogForm();
    await form.settle();
    for (const [name, count, storedName, storedCount] of [
      [' Web-01 ', ' 03', 'web-01', '3'],
      ['web-01', '', 'web-01', '1'],
      ['DB-7', '2', 'db-7', '2'],
    ]) {
      form.setValue('gatehouse_server_name', name);
      form.setValue('gatehouse_count', count);
      assert.equal(form.submit(), true);
      assert.equal(form.getValue('gatehouse_server_name'), storedName, 'what the item stores, and what the intake rule sends');
      assert.equal(form.getValue('gatehouse_count'), storedCount);
    }
    form.setValue('gatehouse_server_name', 'Web_01');
    assert.equal(form.submit(), false);
    assert.equal(form.getValue('gatehouse_server_name'), 'Web_01', 'a refused value is left for the requester to correct');
  });

  test('onSubmit checks the server name and the count', async () => {
    const inst = instance();
    const form = inst.openCatalogForm();
    await form.settle();
    const cases = [
      ['web-01', '1', true],
      [' Web-01 ', '3', true],
      ['web_01', '1', false],
      ['-web', '1', false],
      ['a'.repeat(64), '1', false],
      ['', '1', false],
      ['web-01', '0', false],
      ['web-01', 'two', false],
      ['web-01', '', true],
    ];
    for (const [name, count, ok] of cases) {
      form.setValue('gatehouse_server_name', name);
      form.setValue('gatehouse_count', count);
      assert.equal(form.submit(), ok, `server name ${JSON.stringify(name)}, count ${JSON.stringify(count)}`);
      const messages = [...form.errors('gatehouse_server_name'), ...form.errors('gatehouse_count')];
      assert.equal(messages.length === 0, ok, messages.join(' / '));
    }
  });

  test('onSubmit: the lease is optional, a whole number of days, stored without spaces or leading zeros', async () => {
    const inst = instance();
    const form = inst.openCatalogForm();
    await form.settle();
    form.setValue('gatehouse_server_name', 'web-01');
    for (const [lease, ok, stored] of [['', true, ''], [' 030 ', true, '30'], ['  ', true, ''], ['7', true, '7'], ['0', false, '0'], ['2w', false, '2w'], ['-3', false, '-3']]) {
      form.setValue('gatehouse_lease_days', lease);
      assert.equal(form.submit(), ok, `lease ${JSON.stringify(lease)}`);
      assert.equal(form.errors('gatehouse_lease_days').length === 0, ok);
      assert.equal(form.getValue('gatehouse_lease_days'), ok ? stored : lease, 'what the item stores, and what the intake rule sends');
    }
  });

  test('a requester (snc_internal) fills the form; the ACL GatehouseAjax keeps out users without the role, and guests', async () => {
    const requester = instance({}, { user: 'ada', roles: ['snc_internal'] });
    const form = requester.openCatalogForm();
    await form.settle();
    assert.equal(form.getValue('gatehouse_cloud'), 'demo');
    assert.ok(form.choices('gatehouse_image').length > 0);

    for (const [user, roles] of [['eve.external', ['snc_external']], ['nobody', []], [null, []]]) {
      const inst = instance({}, { user, roles });
      const blocked = inst.openCatalogForm();
      await blocked.settle();
      assert.equal(inst.http.length, 0, `${user || 'a guest'}: no call reaches Gatehouse`);
      assert.deepEqual(blocked.choices('gatehouse_cloud'), []);
      assert.deepEqual(blocked.errors('gatehouse_cloud'), ['The list of clouds could not be loaded. Reload the page to try again.']);
      assert.match(inst.logText(), new RegExp(`^warn: Access to Script Include GatehouseAjax blocked for ${user || 'guest'}$`, 'm'));
    }
  });

  test('GatehouseAjax is not public: isPublic() is false', () => {
    const inst = instance();
    assert.equal(inst.runServer('new GatehouseAjax({getParameter: function () { return null; }}).isPublic()'), false);
    // a guest would get in only with isPublic() true: the shim's gate is the platform's
    inst.user = null;
    assert.equal(inst.ajaxAllowed('GatehouseAjax'), false);
  });

  test('through a MID server every call is executeAsync() + waitForResponse(seconds); straight calls execute()', async () => {
    const inst = instance({ 'x_gatehouse.mid_server': 'mid-east' });
    const form = inst.openCatalogForm();
    await form.settle();
    assert.equal(form.getValue('gatehouse_cloud'), 'demo');
    assert.ok(form.choices('gatehouse_network').length > 0);
    assert.equal(inst.http.length, 2);
    for (const h of inst.http) {
      assert.equal(h.mid_server, 'mid-east');
      assert.equal(h.async, true);
      assert.equal(h.wait_seconds, 5 + 10, 'the HTTP timeout (5 s) and 10 s for the ECC queue');
      assert.equal(h.response.status, 200);
    }

    const direct = instance();
    await direct.openCatalogForm().settle();
    assert.equal(direct.http.length, 2);
    for (const h of direct.http) {
      assert.equal(h.mid_server, null);
      assert.equal(h.async, false);
      assert.equal(h.wait_seconds, undefined);
    }
  });

  test('through a MID server, no answer is a transport error under the field, not an exception', async () => {
    const port = await closedPort();
    const inst = instance({ 'x_gatehouse.base_url': `http://127.0.0.1:${port}`, 'x_gatehouse.mid_server': 'mid-east' });
    const form = inst.openCatalogForm();
    await form.settle();
    assert.equal(inst.http[0].async, true);
    assert.deepEqual(form.errors('gatehouse_cloud'), ['The list of clouds could not be loaded: Gatehouse is not reachable. Try again in a minute.']);
    assertNoSecretsLogged(inst);
  });

  test('UI policy: on the requested item and its tasks the approved variables (lease included) are read-only and visible; the order form is not', async () => {
    const inst = instance();
    const names = ['gatehouse_cloud', 'gatehouse_image', 'gatehouse_flavor', 'gatehouse_network', 'gatehouse_server_name', 'gatehouse_count', 'gatehouse_lease_days'];
    const values = {
      gatehouse_cloud: 'demo', gatehouse_image: 'img', gatehouse_flavor: 'flv', gatehouse_network: 'net',
      gatehouse_server_name: 'web-01', gatehouse_count: '2', gatehouse_lease_days: '30', gatehouse_justification: 'why',
    };
    for (const table of ['sc_req_item', 'sc_task']) {
      const editor = inst.openVariableEditor(table, values);
      for (const name of names) {
        assert.equal(editor.isReadOnly(name), true, `${table}: ${name} is read-only`);
        assert.equal(editor.isVisible(name), true, `${table}: ${name} is shown`);
        assert.ok(editor.getLabelOf(name), `${table}: ${name} keeps its label`);
      }
      assert.equal(editor.isReadOnly('gatehouse_justification'), false);
    }
    const form = inst.openCatalogForm();
    await form.settle();
    for (const name of names) assert.equal(form.isReadOnly(name), false, `the requester fills ${name}`);
  });

  test('GatehouseAjax: a malformed cloud is refused without a call; only public methods of a client-callable include answer', () => {
    const inst = instance();
    const bad = JSON.parse(inst.callAjax('GatehouseAjax', { sysparm_name: 'getOptions', sysparm_cloud: '../v1/requests' }));
    assert.deepEqual(bad, { error: 'Choose a cloud first.' });
    assert.equal(inst.http.length, 0);
    assert.equal(inst.callAjax('GatehouseAjax', { sysparm_name: '_error' }), null);
    assert.throws(() => inst.callAjax('GatehouseClient', { sysparm_name: 'listClouds' }), /not client callable/);
    const ok = JSON.parse(inst.callAjax('GatehouseAjax', { sysparm_name: 'getOptions', sysparm_cloud: 'demo' }));
    assert.equal(ok.cloud, 'demo');
    assert.deepEqual(Object.keys(ok.images[0]), ['id', 'label']);
  });
});
