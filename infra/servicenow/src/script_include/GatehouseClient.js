/*
 * GatehouseClient: the server-side client of the Gatehouse API (sn_ws.RESTMessageV2).
 *
 * Configuration, all System Properties (sys_properties):
 *   x_gatehouse.base_url        https://gatehouse.example.com (a trailing slash is ignored)
 *   x_gatehouse.api_token       Gatehouse API token, sent as "Authorization: Bearer"; type password2
 *   x_gatehouse.webhook_secret  secret for the change webhook's HMAC signature; type password2;
 *                               empty = the webhook is sent with the bearer token instead
 *   x_gatehouse.timeout_ms      timeout of one call in milliseconds (default 10000, at most 60000)
 *   x_gatehouse.mid_server      name of a MID server to send the calls through; empty = straight
 *                               from the instance (see the README: only for a Gatehouse the
 *                               instance cannot reach). Through a MID server a call is sent with
 *                               executeAsync() and awaited with waitForResponse(seconds): every
 *                               REST message sent through a MID server is asynchronous
 *                               (https://www.servicenow.com/docs/r/yokohama/api-reference/web-services/r_RESTMessageV2MIDServerExample.html).
 *                               Straight calls use execute().
 *
 * Every method answers a result object and never throws:
 *   {ok: true|false, status: HTTP status (0 when no answer came), data: parsed JSON body or null,
 *    error: a one-line message for people (null when ok), errors: [{field, message}] of a 422}
 * Failures are logged (gs.warn for 4xx, gs.error for the rest) with the method and path only:
 * neither the token nor the signature nor a request body is ever logged.
 */
var GatehouseClient = Class.create();

GatehouseClient.PREFIX = 'Gatehouse: ';
/* Seconds a call through a MID server may take beyond its HTTP timeout (the ECC queue round trip). */
GatehouseClient.MID_QUEUE_SECONDS = 10;
GatehouseClient.B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/* Hex of a base64 string (GlideCertificateEncryption answers base64; the header wants hex). */
GatehouseClient.base64ToHex = function (b64) {
    var s = String(b64).replace(/[^A-Za-z0-9+\/]/g, '');
    var hex = '';
    var acc = 0;
    var bits = 0;
    for (var i = 0; i < s.length; i++) {
        acc = (acc << 6) | GatehouseClient.B64.indexOf(s.charAt(i));
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            var b = (acc >> bits) & 0xff;
            acc = acc & ((1 << bits) - 1);
            hex += (b < 16 ? '0' : '') + b.toString(16);
        }
    }
    return hex;
};

GatehouseClient.prototype = {
    initialize: function (config) {
        config = config || {};
        var base = config.baseUrl !== undefined ? config.baseUrl : gs.getProperty('x_gatehouse.base_url', '');
        this.baseUrl = String(base || '').replace(/^\s+|\s+$/g, '').replace(/\/+$/, '');
        var token = config.token !== undefined ? config.token : gs.getProperty('x_gatehouse.api_token', '');
        this.token = String(token || '');
        var secret = config.webhookSecret !== undefined ? config.webhookSecret : gs.getProperty('x_gatehouse.webhook_secret', '');
        this.webhookSecret = String(secret || '');
        var timeout = parseInt(String(config.timeoutMs || gs.getProperty('x_gatehouse.timeout_ms', '10000')), 10);
        this.timeoutMs = (timeout > 0 && timeout <= 60000) ? timeout : 10000;
        var mid = config.midServer !== undefined ? config.midServer : gs.getProperty('x_gatehouse.mid_server', '');
        this.midServer = String(mid || '');
    },

    /* GET /v1/clouds: {clouds: [{name, display_name, region}]} */
    listClouds: function () {
        return this._call('GET', '/v1/clouds', null, true);
    },

    /* GET /v1/clouds/{cloud}/options: {cloud, images, flavors, networks} in one call */
    getOptions: function (cloud) {
        cloud = String(cloud || '');
        if (!GatehouseClient.isCloudName(cloud)) {
            return this._result(false, 0, null, 'not a cloud name: "' + cloud.substring(0, 64) + '"', []);
        }
        return this._call('GET', '/v1/clouds/' + encodeURIComponent(cloud) + '/options', null, true);
    },

    /* POST /v1/requests: 202 new, 200 replay of the same sys_id, 409 same sys_id with another body, 422 */
    createRequest: function (intake) {
        return this._call('POST', '/v1/requests', JSON.stringify(intake), true);
    },

    /* GET /v1/requests/{id} */
    getRequest: function (id) {
        if (!GatehouseClient.isRequestId(id)) {
            return this._result(false, 0, null, 'not a Gatehouse request id', []);
        }
        return this._call('GET', '/v1/requests/' + encodeURIComponent(String(id)), null, true);
    },

    /* POST /v1/requests/{id}/cancel with {reason, actor}: 200 cancelled (or already), 409 no longer pending */
    cancelRequest: function (id, reason, actor) {
        if (!GatehouseClient.isRequestId(id)) {
            return this._result(false, 0, null, 'not a Gatehouse request id', []);
        }
        var body = {};
        if (reason) {
            body.reason = String(reason).substring(0, 500);
        }
        if (actor) {
            body.actor = String(actor).substring(0, 500);
        }
        return this._call('POST', '/v1/requests/' + encodeURIComponent(String(id)) + '/cancel', JSON.stringify(body), true);
    },

    /*
     * POST /v1/webhooks/servicenow with {sys_id, number, approval, state}. Signed with
     * "X-Gatehouse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of t + '.' + body>" when
     * x_gatehouse.webhook_secret is set and the instance can compute the MAC; otherwise (or when
     * the MAC cannot be computed) it falls back to the bearer token.
     */
    notifyChange: function (change) {
        var body = JSON.stringify({
            sys_id: String(change.sys_id),
            number: String(change.number),
            approval: String(change.approval),
            state: String(change.state)
        });
        var headers = {};
        var bearer = true;
        if (this.webhookSecret) {
            var t = String(Math.floor(new GlideDateTime().getNumericValue() / 1000));
            var mac = this.hmacSha256Hex(this.webhookSecret, t + '.' + body);
            if (mac) {
                headers['X-Gatehouse-Signature'] = 't=' + t + ',v1=' + mac;
                bearer = false;
            } else {
                gs.warn(GatehouseClient.PREFIX + 'could not compute the webhook signature; sending the bearer token instead');
            }
        }
        return this._call('POST', '/v1/webhooks/servicenow', body, bearer, headers);
    },

    /*
     * Hex HMAC-SHA256 of data under secret, with GlideCertificateEncryption.generateMac (global
     * scope; its key argument is base64 and it answers base64). Null when the API is missing.
     */
    hmacSha256Hex: function (secret, data) {
        try {
            var key = (typeof GlideStringUtil !== 'undefined') ? GlideStringUtil.base64Encode(String(secret)) : gs.base64Encode(String(secret));
            var mac = new GlideCertificateEncryption().generateMac(String(key), 'HmacSHA256', String(data));
            var hex = mac ? GatehouseClient.base64ToHex(String(mac)) : '';
            return hex.length === 64 ? hex : null;
        } catch (e) {
            gs.warn(GatehouseClient.PREFIX + 'GlideCertificateEncryption.generateMac failed: ' + this._scrub(e && e.message ? e.message : String(e)));
            return null;
        }
    },

    /* How long waitForResponse waits for a call through the MID server, in seconds. */
    midWaitSeconds: function () {
        return Math.ceil(this.timeoutMs / 1000) + GatehouseClient.MID_QUEUE_SECONDS;
    },

    /* -- internals ------------------------------------------------------------------------ */

    _call: function (method, path, bodyText, bearer, headers) {
        var label = method + ' ' + path;
        if (!/^https?:\/\/[^\s\/?#]+/i.test(this.baseUrl)) {
            return this._fail(label, 0, 'the system property x_gatehouse.base_url is not an http(s) URL', null);
        }
        if (bearer && !this.token) {
            return this._fail(label, 0, 'the system property x_gatehouse.api_token is empty', null);
        }
        var status = 0;
        var text = '';
        var transportError = null;
        try {
            var rm = new sn_ws.RESTMessageV2();
            rm.setEndpoint(this.baseUrl + path);
            rm.setHttpMethod(method.toLowerCase());
            rm.setHttpTimeout(this.timeoutMs);
            rm.setRequestHeader('Accept', 'application/json');
            if (bearer) {
                rm.setRequestHeader('Authorization', 'Bearer ' + this.token);
            }
            if (headers) {
                for (var name in headers) {
                    if (headers.hasOwnProperty(name)) {
                        rm.setRequestHeader(name, headers[name]);
                    }
                }
            }
            if (bodyText !== null && bodyText !== undefined) {
                rm.setRequestHeader('Content-Type', 'application/json');
                rm.setRequestBody(bodyText);
            }
            var response;
            if (this.midServer) {
                rm.setMIDServer(this.midServer);
                response = rm.executeAsync();
                // throws when no answer came back through the ECC queue in time
                response.waitForResponse(this.midWaitSeconds());
            } else {
                response = rm.execute();
            }
            status = parseInt(String(response.getStatusCode()), 10) || 0;
            text = String(response.getBody() || '');
            if (!status) {
                transportError = String(response.getErrorMessage() || 'no answer');
            }
        } catch (e) {
            transportError = e && e.message ? String(e.message) : String(e);
        }
        if (transportError !== null) {
            return this._fail(label, 0, 'Gatehouse could not be reached: ' + transportError, null);
        }
        var data = null;
        if (text) {
            try {
                data = JSON.parse(text);
            } catch (parseError) {
                data = null;
            }
        }
        if (status >= 200 && status < 300) {
            if (data === null) {
                return this._fail(label, status, 'Gatehouse answered HTTP ' + status + ' without a JSON body', null);
            }
            return this._result(true, status, data, null, []);
        }
        return this._fail(label, status, this._problemText(status, data), data);
    },

    /* A one-line text of an RFC 9457 problem: "HTTP 422 The input breaks a rule (image: ...)" */
    _problemText: function (status, problem) {
        var text = 'Gatehouse answered HTTP ' + status;
        if (problem && typeof problem === 'object') {
            if (problem.title) {
                text += ' ' + String(problem.title);
            }
            var errors = GatehouseClient.fieldErrors(problem);
            if (errors.length) {
                var parts = [];
                for (var i = 0; i < errors.length; i++) {
                    parts.push(errors[i].field + ': ' + errors[i].message);
                }
                text += ' (' + parts.join('; ') + ')';
            } else if (problem.detail) {
                text += ' (' + String(problem.detail) + ')';
            }
        }
        return text.substring(0, 1000);
    },

    _fail: function (label, status, message, data) {
        message = this._scrub(message);
        var line = GatehouseClient.PREFIX + label + ' failed: ' + message;
        if (status >= 400 && status < 500) {
            gs.warn(line);
        } else {
            gs.error(line);
        }
        return this._result(false, status, data, message, GatehouseClient.fieldErrors(data));
    },

    _result: function (ok, status, data, error, errors) {
        return {ok: ok, status: status, data: data, error: error, errors: errors || []};
    },

    /* Belt and braces: no secret ever leaves in a message, whatever an upstream echoed. */
    _scrub: function (text) {
        text = String(text);
        var secrets = [this.token, this.webhookSecret];
        for (var i = 0; i < secrets.length; i++) {
            if (secrets[i] && secrets[i].length >= 4) {
                text = text.split(secrets[i]).join('[redacted]');
            }
        }
        return text;
    },

    type: 'GatehouseClient'
};

GatehouseClient.isCloudName = function (name) {
    return /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(String(name));
};

GatehouseClient.isRequestId = function (id) {
    return /^[0-9A-Za-z-]{1,64}$/.test(String(id));
};

GatehouseClient.fieldErrors = function (problem) {
    var out = [];
    if (problem && typeof problem === 'object' && problem.errors && problem.errors.length) {
        for (var i = 0; i < problem.errors.length && i < 20; i++) {
            var e = problem.errors[i] || {};
            out.push({field: String(e.field || ''), message: String(e.message || '')});
        }
    }
    return out;
};
