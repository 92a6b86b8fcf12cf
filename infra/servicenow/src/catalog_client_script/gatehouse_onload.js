/*
 * Catalog Client Script "Gatehouse: load clouds" (variable set "Gatehouse VM"), type onLoad.
 * Fills the choices of gatehouse_cloud from Gatehouse (GatehouseAjax.getClouds) and empties the
 * image, flavor and network choices until a cloud is chosen. With a single cloud it is chosen
 * at once, which runs the onChange script and fills the other three.
 */
function onLoad() {
    var CLOUD = 'gatehouse_cloud';
    var DEPENDENT = ['gatehouse_image', 'gatehouse_flavor', 'gatehouse_network'];
    var i;
    for (i = 0; i < DEPENDENT.length; i++) {
        g_form.clearOptions(DEPENDENT[i]);
        g_form.addOption(DEPENDENT[i], '', '-- Choose a cloud first --');
    }
    g_form.hideFieldMsg(CLOUD, true);

    var ga = new GlideAjax('GatehouseAjax');
    ga.addParam('sysparm_name', 'getClouds');
    ga.getXMLAnswer(function (answer) {
        var data = null;
        try {
            data = JSON.parse(answer);
        } catch (e) {
            data = null;
        }
        if (!data || data.error || !data.clouds) {
            g_form.showFieldMsg(CLOUD, (data && data.error) || 'The list of clouds could not be loaded. Reload the page to try again.', 'error');
            return;
        }
        var before = g_form.getValue(CLOUD);
        var kept = false;
        g_form.clearOptions(CLOUD);
        g_form.addOption(CLOUD, '', '-- None --');
        for (var j = 0; j < data.clouds.length; j++) {
            g_form.addOption(CLOUD, data.clouds[j].name, data.clouds[j].label);
            if (data.clouds[j].name === before) {
                kept = true;
            }
        }
        if (data.clouds.length === 0) {
            g_form.showFieldMsg(CLOUD, 'Gatehouse offers no cloud at the moment.', 'error');
        } else if (data.clouds.length === 1) {
            g_form.setValue(CLOUD, data.clouds[0].name);
        } else if (kept) {
            g_form.setValue(CLOUD, before);
        }
    });
}
