/*
 * Catalog Client Script "Gatehouse: check before submit" (variable set "Gatehouse VM"), type
 * onSubmit. Checks what Gatehouse would refuse anyway, so that the requester hears it now and
 * not in a work note after the approval: the server name is an RFC 1123 label (lowercase
 * letters, digits and '-', 1 to 63, not starting or ending with '-') and the count a whole
 * number of at least 1, and the lease (if any) a whole number of days of at least 1. Gatehouse
 * still checks everything (the highest count and the longest lease too) itself.
 *
 * It also stores them in their one canonical form (server name trimmed and lower-cased, count
 * and lease without spaces or leading zeros, an empty count as 1): the intake rule sends the
 * variables exactly as stored, and Gatehouse compares them with the item it reads back from
 * ServiceNow, so no transformation may happen between the two.
 */
function onSubmit() {
    var ok = true;
    var NAME = 'gatehouse_server_name';
    var COUNT = 'gatehouse_count';
    var LEASE = 'gatehouse_lease_days';
    g_form.hideFieldMsg(NAME, true);
    g_form.hideFieldMsg(COUNT, true);
    g_form.hideFieldMsg(LEASE, true);

    var entered = String(g_form.getValue(NAME) || '');
    var name = entered.replace(/^\s+|\s+$/g, '').toLowerCase();
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) {
        g_form.showFieldMsg(NAME, 'Use 1 to 63 letters, digits or "-", not starting or ending with "-" (for example web-01).', 'error');
        ok = false;
    } else if (name !== entered) {
        g_form.setValue(NAME, name);
    }
    var enteredCount = String(g_form.getValue(COUNT) || '');
    var count = enteredCount.replace(/^\s+|\s+$/g, '') || '1';
    if (!/^[0-9]{1,4}$/.test(count) || parseInt(count, 10) < 1) {
        g_form.showFieldMsg(COUNT, 'Enter a whole number of at least 1.', 'error');
        ok = false;
    } else if (String(parseInt(count, 10)) !== enteredCount) {
        g_form.setValue(COUNT, String(parseInt(count, 10)));
    }
    /* The lease is optional (empty: Gatehouse's default); Gatehouse checks its maximum itself. */
    var enteredLease = String(g_form.getValue(LEASE) || '');
    var lease = enteredLease.replace(/^\s+|\s+$/g, '');
    if (lease && (!/^[0-9]{1,4}$/.test(lease) || parseInt(lease, 10) < 1)) {
        g_form.showFieldMsg(LEASE, 'Enter a whole number of days (at least 1), or leave it empty.', 'error');
        ok = false;
    } else if ((lease ? String(parseInt(lease, 10)) : '') !== enteredLease) {
        g_form.setValue(LEASE, lease ? String(parseInt(lease, 10)) : '');
    }
    return ok;
}
