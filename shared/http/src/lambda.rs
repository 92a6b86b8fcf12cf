use axum::Router;

/// Serves an axum router on AWS Lambda behind API Gateway (HTTP API, payload v2).
pub async fn run(router: Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(router).await
}
