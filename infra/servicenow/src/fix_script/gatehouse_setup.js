/*
 * Fix Script "Gatehouse: create system properties". Run it once after committing the update set
 * (System Definition > Fix Scripts > this record > Run Fix Script), and again after a later
 * import: it is safe to repeat.
 *
 * 1. Creates the x_gatehouse.* properties that do not exist yet, and never overwrites a value.
 *    Every one is Private (is_private: kept out of update sets, so a value set on one instance
 *    never travels to another) with Read roles and Write roles "admin" (only admins see or
 *    change it in sys_properties), also on properties that already exist. Server scripts read
 *    them with gs.getProperty. The token and the secret are password2 (stored encrypted).
 *    Fields of the System Property form:
 *    https://www.servicenow.com/docs/r/platform-administration/t_AddAPropertyUsingSysPropsList.html
 * 2. Says whether the field sc_req_item.u_gatehouse_request_id exists (the update set brings it).
 * 3. Points the ACL "GatehouseAjax" (client-callable Script Include) at this instance's role
 *    snc_internal, found by name, in case the import could not match the role of the update set.
 */
(function () {
    var ADMIN = 'admin';
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
    var i;
    for (i = 0; i < properties.length; i++) {
        var p = properties[i];
        var gr = new GlideRecord('sys_properties');
        gr.addQuery('name', p.name);
        gr.query();
        if (gr.next()) {
            gr.setValue('is_private', 'true');
            gr.setValue('read_roles', ADMIN);
            gr.setValue('write_roles', ADMIN);
            gr.update();
            if (p.type === 'password2' && gr.getValue('type') !== 'password2') {
                gs.warn('Gatehouse: property ' + p.name + ' is of type ' + gr.getValue('type') +
                    ', not password2: delete it, run this fix script again and set its value anew');
            } else {
                gs.info('Gatehouse: property ' + p.name + ' exists; value left as it is, made private');
            }
            continue;
        }
        gr.initialize();
        gr.setValue('name', p.name);
        gr.setValue('type', p.type);
        gr.setValue('value', p.value);
        gr.setValue('description', p.description);
        gr.setValue('is_private', 'true');
        gr.setValue('read_roles', ADMIN);
        gr.setValue('write_roles', ADMIN);
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
        gs.warn('Gatehouse: the field sc_req_item.u_gatehouse_request_id is missing: commit the update set (it brings the field)');
    }

    var role = new GlideRecord('sys_user_role');
    role.addQuery('name', 'snc_internal');
    role.query();
    if (!role.next()) {
        gs.warn('Gatehouse: there is no role snc_internal (Explicit Roles plugin com.glide.explicit_roles not active): ' +
            'give the ACL GatehouseAjax a role every requester has, or only admins can use the catalog form');
        return;
    }
    var acl = new GlideRecord('sys_security_acl');
    acl.addQuery('name', 'GatehouseAjax');
    acl.addQuery('type', 'client_callable_script_include');
    acl.query();
    if (!acl.next()) {
        gs.warn('Gatehouse: the ACL GatehouseAjax is missing: commit the update set (it brings the ACL)');
        return;
    }
    var link = new GlideRecord('sys_security_acl_role');
    link.addQuery('sys_security_acl', acl.getUniqueValue());
    link.query();
    var links = 0;
    var kept = [];
    while (link.next()) {
        links++;
        var linked = new GlideRecord('sys_user_role');
        if (linked.get(link.getValue('sys_user_role'))) {
            kept.push(String(linked.getValue('name')));
        } else {
            // the role reference of the update set did not resolve on this instance
            link.setValue('sys_user_role', role.getUniqueValue());
            link.update();
            kept.push('snc_internal');
            gs.info('Gatehouse: the ACL GatehouseAjax now requires this instance\'s role snc_internal');
        }
    }
    if (!links) {
        link.initialize();
        link.setValue('sys_security_acl', acl.getUniqueValue());
        link.setValue('sys_user_role', role.getUniqueValue());
        link.insert();
        kept.push('snc_internal');
    }
    // roles an admin chose instead are left as they are
    gs.info('Gatehouse: the ACL GatehouseAjax requires the role(s) ' + kept.join(', '));
})();
