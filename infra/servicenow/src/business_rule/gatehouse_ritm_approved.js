/*
 * Business Rule "Gatehouse: send approved request item" on sc_req_item.
 * When: async (after the update is saved, in the background), on update.
 * Condition: current.approval.changesTo('approved') && new GatehouseIntegration().isGatehouseItem(current)
 *
 * Only items whose catalog item uses the variable set "Gatehouse VM" (io_set_item) are sent.
 * Posts the intake body to Gatehouse, records the Gatehouse request id in u_gatehouse_request_id
 * and writes a work note. From then on Gatehouse owns the item: it writes work notes, sets the
 * stage and closes it; the item's flow must wait for that rather than close the item itself. Async, so that the approver's click never waits on the HTTP call; it does
 * not need `previous` (not available in async rules): the condition is evaluated when the record
 * is saved. A replay (same RITM again) is answered 200 with the same request by Gatehouse.
 */
(function executeRule(current, previous /* null in an async rule */) {
    new GatehouseIntegration().submit(current);
})(current, previous);
