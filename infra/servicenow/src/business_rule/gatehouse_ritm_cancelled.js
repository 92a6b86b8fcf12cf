/*
 * Business Rule "Gatehouse: cancel when the request item is cancelled" on sc_req_item.
 * When: async, on update.
 * Condition: current.active.changesTo(false) && current.getValue('state') != '3' &&
 *            !gs.nil(current.getValue('u_gatehouse_request_id')) &&
 *            gs.getUserName() != gs.getProperty('x_gatehouse.integration_user', '')
 *
 * "Cancelled" means: the item became inactive without Closed Complete (3): Closed Incomplete (4),
 * which is what cancelling the parent request (REQ) gives its items, and Closed Skipped (7).
 * Updates made by Gatehouse's own integration user are left out: Gatehouse closes the item
 * itself at the end of a request (complete on success, incomplete when denied, expired or
 * failed) and must not be asked to cancel what it has just finished.
 * Gatehouse cancels only while the request is pending approval (200, also when already
 * cancelled); later it answers 409, which the work note reports.
 */
(function executeRule(current, previous /* null in an async rule */) {
    new GatehouseIntegration().cancel(current);
})(current, previous);
