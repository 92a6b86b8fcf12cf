/*
 * GatehouseAjax: client-callable (GlideAjax) processor behind the catalog form's dropdowns.
 *
 *   sysparm_name=getClouds                      -> {"clouds":[{"name","label"}]}
 *   sysparm_name=getOptions, sysparm_cloud=NAME  -> {"cloud","images":[{"id","label"}],
 *                                                   "flavors":[{"id","label"}],"networks":[{"id","label"}]}
 *
 * Both answer a JSON string; on failure {"error": "<message for the requester>"}. The message
 * never carries Gatehouse's URL or token; the details are in the system log (GatehouseClient).
 *
 * Who may call it: never a guest (isPublic() answers false, which takes precedence over the
 * property glide.script.ccsi.ispublic:
 * https://www.servicenow.com/docs/r/washingtondc/platform-security/instance-security-hardening-settings/sc-privacy-on-client-callable-script-includes.html),
 * and only users that pass the ACL "GatehouseAjax" (type client_callable_script_include,
 * operation execute, role snc_internal) that ships in the same update set.
 */
var GatehouseAjax = Class.create();
GatehouseAjax.prototype = Object.extendsObject(global.AbstractAjaxProcessor, {

    getClouds: function () {
        var result = new GatehouseClient().listClouds();
        if (!result.ok || !result.data || !result.data.clouds) {
            return this._error(result, 'The list of clouds');
        }
        var clouds = [];
        for (var i = 0; i < result.data.clouds.length; i++) {
            var c = result.data.clouds[i];
            var label = String(c.display_name || c.name);
            if (c.region) {
                label += ' (' + c.region + ')';
            }
            clouds.push({name: String(c.name), label: label});
        }
        return JSON.stringify({clouds: clouds});
    },

    getOptions: function () {
        var cloud = String(this.getParameter('sysparm_cloud') || '');
        if (!GatehouseClient.isCloudName(cloud)) {
            return JSON.stringify({error: 'Choose a cloud first.'});
        }
        var result = new GatehouseClient().getOptions(cloud);
        if (!result.ok || !result.data) {
            return this._error(result, 'The choices of cloud ' + cloud);
        }
        var d = result.data;
        return JSON.stringify({
            cloud: String(d.cloud || cloud),
            images: this._items(d.images),
            flavors: this._items(d.flavors),
            networks: this._items(d.networks)
        });
    },

    /* Not reachable from public (unauthenticated) pages, whatever glide.script.ccsi.ispublic says. */
    isPublic: function () {
        return false;
    },

    _items: function (list) {
        var out = [];
        for (var i = 0; list && i < list.length; i++) {
            out.push({id: String(list[i].id), label: String(list[i].label || list[i].name || list[i].id)});
        }
        return out;
    },

    _error: function (result, what) {
        var message;
        if (result.status === 404) {
            message = what + ' is not known to Gatehouse.';
        } else if (result.status === 0) {
            message = what + ' could not be loaded: Gatehouse is not reachable. Try again in a minute.';
        } else {
            message = what + ' could not be loaded (Gatehouse answered ' + result.status + '). Try again in a minute.';
        }
        return JSON.stringify({error: message});
    },

    type: 'GatehouseAjax'
});
