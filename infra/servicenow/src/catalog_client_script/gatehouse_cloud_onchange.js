/*
 * Catalog Client Script "Gatehouse: cloud changed" (variable set "Gatehouse VM"), type onChange
 * of gatehouse_cloud. One GatehouseAjax.getOptions call fills the choices of gatehouse_image,
 * gatehouse_flavor and gatehouse_network (value = Gatehouse id, label = Gatehouse label).
 */
function onChange(control, oldValue, newValue, isLoading) {
    var CLOUD = 'gatehouse_cloud';
    var LISTS = [
        {field: 'gatehouse_image', key: 'images', none: 'image'},
        {field: 'gatehouse_flavor', key: 'flavors', none: 'flavor'},
        {field: 'gatehouse_network', key: 'networks', none: 'network'}
    ];
    var i;
    if (isLoading) {
        return; /* the onLoad script fills the form */
    }
    g_form.hideFieldMsg(CLOUD, true);
    for (i = 0; i < LISTS.length; i++) {
        g_form.hideFieldMsg(LISTS[i].field, true);
        g_form.clearOptions(LISTS[i].field);
        g_form.addOption(LISTS[i].field, '', newValue ? '-- Loading... --' : '-- Choose a cloud first --');
    }
    if (!newValue) {
        return;
    }

    var ga = new GlideAjax('GatehouseAjax');
    ga.addParam('sysparm_name', 'getOptions');
    ga.addParam('sysparm_cloud', newValue);
    ga.getXMLAnswer(function (answer) {
        if (g_form.getValue(CLOUD) !== newValue) {
            return; /* the cloud changed again while this answer was on its way */
        }
        var data = null;
        try {
            data = JSON.parse(answer);
        } catch (e) {
            data = null;
        }
        if (!data || data.error) {
            g_form.showFieldMsg(CLOUD, (data && data.error) || 'The choices of this cloud could not be loaded. Choose it again to retry.', 'error');
            for (var k = 0; k < LISTS.length; k++) {
                g_form.clearOptions(LISTS[k].field);
                g_form.addOption(LISTS[k].field, '', '-- Not available --');
            }
            return;
        }
        for (var n = 0; n < LISTS.length; n++) {
            var list = LISTS[n];
            var items = data[list.key] || [];
            g_form.clearOptions(list.field);
            g_form.addOption(list.field, '', '-- None --');
            for (var m = 0; m < items.length; m++) {
                g_form.addOption(list.field, items[m].id, items[m].label);
            }
            if (items.length === 0) {
                g_form.showFieldMsg(list.field, 'This cloud offers no ' + list.none + ' at the moment.', 'error');
            }
        }
    });
}
