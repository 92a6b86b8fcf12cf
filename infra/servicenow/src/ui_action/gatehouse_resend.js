/*
 * UI Action "Send to Gatehouse" on sc_req_item (form button, server side).
 * Condition: current.approval == 'approved' && current.active == true &&
 *            gs.nil(current.getValue('u_gatehouse_request_id')) && gs.hasRole('itil') &&
 *            new GatehouseIntegration().isGatehouseItem(current)
 *
 * Sends an approved item again after Gatehouse was unreachable or refused it (after the
 * variables were corrected). Safe to press twice: Gatehouse answers a replay with the same request.
 */
(function () {
    var outcome = new GatehouseIntegration().submit(current);
    if (outcome.sent) {
        gs.addInfoMessage('Sent to Gatehouse: request ' + outcome.id);
    } else {
        gs.addErrorMessage(outcome.note || ('Not sent: ' + outcome.reason));
    }
    action.setRedirectURL(current);
})();
