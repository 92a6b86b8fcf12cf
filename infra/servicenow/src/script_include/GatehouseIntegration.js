/*
 * GatehouseIntegration: what the business rules and the UI action do, kept in one Script Include
 * so that each rule is a one-liner and every path can be tested.
 *
 *   submit(ritm)        approved RITM -> POST /v1/requests; records the request id in
 *                       u_gatehouse_request_id and writes a work note (or says why it failed)
 *   cancel(ritm)        closed-without-completion RITM -> POST /v1/requests/{id}/cancel; work note
 *   notifyChange(chg)   change_request whose approval moved -> POST /v1/webhooks/servicenow
 *   buildIntake(ritm)   the intake body of DESIGN.md, from the RITM and its gatehouse_* variables
 *
 * A RITM belongs to Gatehouse when its catalog item uses the variable set "Gatehouse VM" (a row
 * of io_set_item, the table that joins catalog items and variable sets, for the item and the
 * set's sys_id, which the update set fixes). Sending the same RITM again is safe: Gatehouse
 * answers 200 with the first request for the same sys_id and the same body, and 409 if the body
 * changed.
 *
 * Gatehouse reads the item back from ServiceNow by sys_id and refuses (422) a body whose
 * requester (requested_for), opened_by or variables differ from the item's. So the body carries
 * them exactly as stored: no trimming, no lower-casing (the catalog form's onSubmit script
 * stores the server name already trimmed and lower-cased).
 */
var GatehouseIntegration = Class.create();

GatehouseIntegration.FIELD = 'u_gatehouse_request_id';
/* sys_id of the variable set "Gatehouse VM" (item_option_new_set) in the update set */
GatehouseIntegration.VARIABLE_SET = '31dded3b71e24fc2f8d1eaf7bd319c28';

GatehouseIntegration.prototype = {
    initialize: function (client) {
        this.client = client || new GatehouseClient();
    },

    /* Does the item's catalog item use the variable set "Gatehouse VM"? */
    isGatehouseItem: function (ritm) {
        var item = String(ritm.getValue('cat_item') || '');
        if (!item) {
            return false;
        }
        var link = new GlideRecord('io_set_item');
        link.addQuery('sc_cat_item', item);
        link.addQuery('variable_set', GatehouseIntegration.VARIABLE_SET);
        link.setLimit(1);
        link.query();
        return link.hasNext();
    },

    requestId: function (ritm) {
        if (!ritm.isValidField(GatehouseIntegration.FIELD)) {
            return '';
        }
        return String(ritm.getValue(GatehouseIntegration.FIELD) || '');
    },

    /*
     * The intake body (DESIGN.md "Intake body"). Deterministic: the same RITM gives the same body.
     * requester and opened_by are the item's users; cloud, image, flavor, network, server_name,
     * count and lease_days are the variables as stored (count and lease_days as numbers when they
     * are clean integers; lease_days only when the item has one).
     */
    buildIntake: function (ritm) {
        var v = ritm.variables;
        var body = {
            source: {
                system: 'servicenow',
                number: String(ritm.getValue('number')),
                sys_id: String(ritm.getUniqueValue())
            },
            requester: this.person(ritm.requested_for)
        };
        var openedBy = this.person(ritm.opened_by);
        if (openedBy) {
            body.opened_by = openedBy;
        }
        body.cloud = this._var(v, 'gatehouse_cloud');
        body.image = this._var(v, 'gatehouse_image');
        body.flavor = this._var(v, 'gatehouse_flavor');
        body.network = this._var(v, 'gatehouse_network');
        body.server_name = this._var(v, 'gatehouse_server_name');
        body.count = this._count(this._var(v, 'gatehouse_count'));
        /* The lease (DESIGN.md "Leases"): optional; left out when empty (Gatehouse's default applies) */
        var leaseDays = this._var(v, 'gatehouse_lease_days');
        if (leaseDays) {
            body.lease_days = this._count(leaseDays);
        }
        var justification = this._var(v, 'gatehouse_justification');
        if (justification) {
            body.justification = justification;
        }
        var metadata = {};
        if (!ritm.request.nil()) {
            metadata.request = String(ritm.request.number);
        }
        if (!ritm.cat_item.nil()) {
            metadata.catalog_item = String(ritm.cat_item.name);
        }
        body.metadata = metadata;
        return body;
    },

    /* {email, name, user_name} of a sys_user reference, as stored; null when it is empty */
    person: function (user) {
        if (!user || user.nil()) {
            return null;
        }
        var out = {email: String(user.email || ''), name: String(user.name || '')};
        var userName = String(user.user_name || '');
        if (userName) {
            out.user_name = userName;
        }
        return out;
    },

    submit: function (ritm) {
        if (!this.isGatehouseItem(ritm)) {
            return {sent: false, reason: 'not a Gatehouse item'};
        }
        var known = this.requestId(ritm);
        if (known) {
            return {sent: false, reason: 'already sent', id: known};
        }
        var number = String(ritm.getValue('number'));
        var intake = this.buildIntake(ritm);
        var note;
        if (!intake.requester || !intake.requester.email) {
            // Gatehouse takes the requester from requested_for and mails them: nothing to send
            note = 'Not sent to Gatehouse: the item\'s "Requested for" is empty or has no e-mail address. ' +
                'Set it (with an e-mail address) and use "Send to Gatehouse".';
            ritm.work_notes = note;
            ritm.update();
            return {sent: false, reason: 'no requester', note: note};
        }
        var result = this.client.createRequest(intake);
        if (result.ok && result.data && result.data.id) {
            var id = String(result.data.id);
            if (ritm.isValidField(GatehouseIntegration.FIELD)) {
                ritm.setValue(GatehouseIntegration.FIELD, id);
            }
            note = (result.status === 200 ? 'Gatehouse already had this request: ' : 'Sent to Gatehouse: ') +
                'request ' + id + this._chosen(id) + ', ' + String(result.data.status || 'pending_approval') +
                '. A platform approver decides before ' + String(result.data.expires_at || 'the approval expires') + '.';
        } else if (result.status === 422) {
            note = 'Gatehouse refused this request: ' + this._fieldText(result) +
                ' The variables are read-only on the item: order again with corrected values, or have an admin' +
                ' correct them and use "Send to Gatehouse".';
        } else if (result.status === 409) {
            note = 'Gatehouse already holds a different request for ' + number +
                ' (the variables changed after it was first sent); nothing was sent again.';
        } else {
            note = 'Gatehouse could not take this request (' + result.error + '). ' +
                'Use "Send to Gatehouse" on this item to try again.';
        }
        ritm.work_notes = note;
        ritm.update();
        return {sent: result.ok, id: result.ok ? String(result.data.id) : null, result: result, note: note};
    },

    cancel: function (ritm) {
        var id = this.requestId(ritm);
        if (!id) {
            return {cancelled: false, reason: 'no Gatehouse request'};
        }
        var number = String(ritm.getValue('number'));
        var reason = number + ' was closed in ServiceNow (' + String(ritm.state.getDisplayValue()) + ') by ' + gs.getUserName();
        var result = this.client.cancelRequest(id, reason, 'servicenow:' + gs.getUserName());
        var note;
        if (result.ok) {
            note = 'Gatehouse request ' + id + ' cancelled; its approval links no longer work.';
        } else if (result.status === 409) {
            note = 'Gatehouse request ' + id + ' was not cancelled: it is no longer waiting for approval (' +
                this._detail(result) + '). Ask the platform team if the servers must go.';
        } else if (result.status === 404) {
            note = 'Gatehouse does not know request ' + id + '; nothing to cancel.';
        } else {
            note = 'Gatehouse request ' + id + ' could not be cancelled (' + result.error + '). ' +
                'Its approval links stay valid until they expire; ask the platform team to cancel it.';
        }
        ritm.work_notes = note;
        ritm.update();
        return {cancelled: result.ok, result: result, note: note};
    },

    notifyChange: function (change) {
        var result = this.client.notifyChange({
            sys_id: change.getUniqueValue(),
            number: change.getValue('number'),
            approval: change.getValue('approval'),
            state: change.getValue('state')
        });
        if (result.ok) {
            gs.info(GatehouseClient.PREFIX + 'told Gatehouse that ' + change.getValue('number') + ' is ' + change.getValue('approval'));
        }
        return result;
    },

    /* " (image X, flavor Y, network Z)" by name, since the variables hold ids; "" if unknown */
    _chosen: function (id) {
        var shown = this.client.getRequest(id);
        if (!shown.ok || !shown.data) {
            return '';
        }
        var d = shown.data;
        var name = function (chosen) {
            return chosen && chosen.name ? String(chosen.name) : '?';
        };
        return ' (image ' + name(d.image) + ', flavor ' + name(d.flavor) + ', network ' + name(d.network) + ')';
    },

    /* A variable's stored value, untouched ('' when the item lacks it) */
    _var: function (variables, name) {
        var el = variables ? variables[name] : undefined;
        if (el === undefined || el === null) {
            return '';
        }
        return String(el);
    },

    /*
     * A clean integer goes as a number (what it means: "2" stored is 2 sent); anything else,
     * empty included, as the text stored, so that Gatehouse names the field.
     */
    _count: function (text) {
        return /^[1-9][0-9]{0,3}$/.test(text) ? parseInt(text, 10) : text;
    },

    _fieldText: function (result) {
        if (!result.errors || !result.errors.length) {
            return this._detail(result) + '.';
        }
        var parts = [];
        for (var i = 0; i < result.errors.length; i++) {
            parts.push(result.errors[i].field + ': ' + result.errors[i].message);
        }
        return parts.join('; ') + '.';
    },

    _detail: function (result) {
        if (result.data && result.data.detail) {
            return String(result.data.detail);
        }
        return String(result.error);
    },

    type: 'GatehouseIntegration'
};
