/*
 * Business Rule "Gatehouse: tell Gatehouse a change's approval moved" on change_request.
 * When: async, on update.
 * Condition: current.approval.changes() &&
 *            String(current.getValue('correlation_id') || '').indexOf('gitlab:') === 0
 *
 * Only changes that Gatehouse opened for a pipeline (correlation_id gitlab:{project}:{sha}:{env})
 * are sent. POST /v1/webhooks/servicenow with {"sys_id","number","approval","state"}, signed with
 * X-Gatehouse-Signature (HMAC-SHA256, secret in x_gatehouse.webhook_secret) or, without a secret,
 * with the bearer token. The webhook only speeds the pipeline up: `gatehouse ci verify` also polls,
 * so a failed call is logged and not retried.
 */
(function executeRule(current, previous /* null in an async rule */) {
    new GatehouseIntegration().notifyChange(current);
})(current, previous);
