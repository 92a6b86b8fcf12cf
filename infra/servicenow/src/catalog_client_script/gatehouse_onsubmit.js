/*
 * Catalog Client Script "Gatehouse: check before submit" (variable set "Gatehouse VM"), type
 * onSubmit. Checks what Gatehouse would refuse anyway, so that the requester hears it now and
 * not in a work note after the approval: the server name is an RFC 1123 label (lowercase
 * letters, digits and '-', 1 to 63, not starting or ending with '-') and the count a whole
 * number of at least 1. Gatehouse still checks everything (and the highest count) itself.
 */
function onSubmit() {
    var ok = true;
    var NAME = 'gatehouse_server_name';
    var COUNT = 'gatehouse_count';
    g_form.hideFieldMsg(NAME, true);
    g_form.hideFieldMsg(COUNT, true);

    var name = String(g_form.getValue(NAME) || '').replace(/^\s+|\s+$/g, '').toLowerCase();
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) {
        g_form.showFieldMsg(NAME, 'Use 1 to 63 letters, digits or "-", not starting or ending with "-" (for example web-01).', 'error');
        ok = false;
    }
    var count = String(g_form.getValue(COUNT) || '1').replace(/^\s+|\s+$/g, '');
    if (!/^[0-9]{1,4}$/.test(count) || parseInt(count, 10) < 1) {
        g_form.showFieldMsg(COUNT, 'Enter a whole number of at least 1.', 'error');
        ok = false;
    }
    return ok;
}
