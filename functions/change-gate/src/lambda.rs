//! The Lambda start-up of `change-gate` (`Handler: change-gate`): the gate needs ServiceNow and
//! GitLab, so template.yaml deploys this function only when both are configured.

pub async fn run() -> Result<(), lambda_http::Error> {
    http_api::telemetry::init(true);
    let config = lambda_support::config().await?;
    let records = lambda_support::store(&config).await?;
    let gate = runtime::change_gate(&config, records)?
        .ok_or("the change gate needs GATEHOUSE_SERVICENOW_URL and GATEHOUSE_GITLAB_URL")?;
    http_api::lambda::run(
        crate::router(gate, config.api_tokens.clone(), config.gitlab.as_ref().and_then(|g| g.webhook_secret.clone()))
            .router,
    )
    .await
}
