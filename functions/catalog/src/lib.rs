//! The `catalog` function: the clouds of clouds.yaml and, per cloud, the images, flavors and
//! networks the ServiceNow form offers. The same router runs on Lambda and inside `gatehouse serve`.

/// The Lambda start-up (secrets, DynamoDB, SES), run by functions/bootstrap and this crate's `main.rs`.
#[cfg(feature = "lambda")]
pub mod lambda;

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use domain::catalog::{Catalog, CloudInfo};
use domain::config::{ApiTokens, Scope};
use http_api::{Access, ApiError, Mounted, Routes};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Serialize)]
struct Clouds {
    clouds: Vec<CloudInfo>,
}

async fn clouds(State(catalog): State<Arc<Catalog>>) -> Json<Clouds> {
    Json(Clouds { clouds: catalog.clouds() })
}

async fn options(State(catalog): State<Arc<Catalog>>, Path(cloud): Path<String>) -> Result<Json<Value>, ApiError> {
    let o = catalog.options(&cloud).await?;
    Ok(Json(json!({"cloud": o.cloud, "images": o.images, "flavors": o.flavors, "networks": o.networks})))
}

async fn list(
    State(catalog): State<Arc<Catalog>>,
    Path((cloud, kind)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let kind = match kind.as_str() {
        "images" | "flavors" | "networks" => kind,
        _ => return Err(ApiError(domain::Error::NotFound("route".into()))),
    };
    let o = catalog.options(&cloud).await?;
    let items = match kind.as_str() {
        "images" => json!(o.images),
        "flavors" => json!(o.flavors),
        _ => json!(o.networks),
    };
    Ok(Json(json!({"cloud": o.cloud, "items": items})))
}

/// The catalog routes, for ServiceNow's form.
pub fn router(catalog: Arc<Catalog>, tokens: ApiTokens) -> Mounted {
    let servicenow = Access::Scope(Scope::ServiceNow);
    Routes::new(tokens)
        .add(Method::GET, "/v1/clouds", servicenow, clouds)
        .add(Method::GET, "/v1/clouds/{cloud}/options", servicenow, options)
        .add(Method::GET, "/v1/clouds/{cloud}/{kind}", servicenow, list)
        .with_state(catalog)
}
