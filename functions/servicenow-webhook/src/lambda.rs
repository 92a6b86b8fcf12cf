//! The Lambda start-up of `servicenow-webhook` (`Handler: servicenow-webhook`): the gate needs
//! ServiceNow and GitLab, so template.yaml deploys this function only when both are configured.

pub async fn run() -> Result<(), lambda_http::Error> {
    http_api::telemetry::init(true);
    let config = lambda_support::config().await?;
    let records = lambda_support::store(&config).await?;
    let gate = runtime::change_gate(&config, records)?
        .ok_or("the webhook needs GATEHOUSE_SERVICENOW_URL and GATEHOUSE_GITLAB_URL")?;
    let router = crate::router(gate, config.api_tokens, config.webhook_secret);
    http_api::lambda::run(router.router).await
}
