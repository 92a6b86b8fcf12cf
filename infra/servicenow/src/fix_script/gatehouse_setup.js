/*
 * Fix Script "Gatehouse: create system properties". Run it once after committing the update set
 * (System Definition > Fix Scripts > this record > Run Fix Script). It creates the properties
 * that do not exist yet, with empty values, and never overwrites one that does; then it says
 * whether the field u_gatehouse_request_id exists on sc_req_item.
 */
(function () {
    var properties = [
        {name: 'x_gatehouse.base_url', type: 'string', value: '',
            description: 'Gatehouse base URL, e.g. https://gatehouse.example.com'},
        {name: 'x_gatehouse.api_token', type: 'password2', value: '',
            description: 'Gatehouse API token (sent as a bearer token)'},
        {name: 'x_gatehouse.webhook_secret', type: 'password2', value: '',
            description: 'Secret of the change webhook signature (X-Gatehouse-Signature); empty = bearer token'},
        {name: 'x_gatehouse.timeout_ms', type: 'integer', value: '10000',
            description: 'Timeout of one Gatehouse call in milliseconds (at most 60000)'},
        {name: 'x_gatehouse.mid_server', type: 'string', value: '',
            description: 'MID server for the Gatehouse calls; empty = straight from the instance'},
        {name: 'x_gatehouse.integration_user', type: 'string', value: '',
            description: 'user_name of the account Gatehouse writes back with (its updates never cancel a request)'}
    ];
    for (var i = 0; i < properties.length; i++) {
        var p = properties[i];
        var gr = new GlideRecord('sys_properties');
        gr.addQuery('name', p.name);
        gr.query();
        if (gr.next()) {
            gs.info('Gatehouse: property ' + p.name + ' exists; left as it is');
            continue;
        }
        gr.initialize();
        gr.setValue('name', p.name);
        gr.setValue('type', p.type);
        gr.setValue('value', p.value);
        gr.setValue('description', p.description);
        gr.insert();
        gs.info('Gatehouse: property ' + p.name + ' created; set its value');
    }
    var field = new GlideRecord('sys_dictionary');
    field.addQuery('name', 'sc_req_item');
    field.addQuery('element', 'u_gatehouse_request_id');
    field.query();
    if (field.hasNext()) {
        gs.info('Gatehouse: field sc_req_item.u_gatehouse_request_id exists');
    } else {
        gs.warn('Gatehouse: create the field u_gatehouse_request_id (String, 64) on sc_req_item (see the README)');
    }
})();
