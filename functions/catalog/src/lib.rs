//! The `catalog` function: the clouds of clouds.yaml and, per cloud, the images, flavors and
//! networks the ServiceNow form offers. The same router runs on Lambda and inside `gatehouse serve`.

/// The Lambda start-up (secrets, DynamoDB, SES), run by functions/bootstrap and this crate's `main.rs`.
#[cfg(feature = "lambda")]
pub mod lambda;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use domain::catalog::{Catalog, CloudInfo, CloudOptions};
use domain::config::{ApiTokens, Scope};
use http_api::{Access, ApiError, Mounted, Routes};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Serialize)]
struct Clouds {
    clouds: Vec<CloudInfo>,
}

/// The catalog and, per cloud, its options answer as sent: a cloud of 10,000 images answers 1 MB
/// of JSON, which costs far more to build than to send, so it is built once per cached catalog.
struct CatalogApi {
    catalog: Arc<Catalog>,
    rendered: Mutex<HashMap<String, (Arc<CloudOptions>, Bytes)>>,
}

impl CatalogApi {
    fn rendered(&self, options: &Arc<CloudOptions>) -> Result<Bytes, ApiError> {
        let mut cache = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        // The entry holds its options alive, so the pointer stands for that one fetch.
        if let Some((cached, body)) = cache.get(&options.cloud)
            && Arc::ptr_eq(cached, options)
        {
            return Ok(body.clone());
        }
        let body = Bytes::from(
            serde_json::to_vec(options.as_ref())
                .map_err(|e| ApiError(domain::Error::internal("catalog: encoding the options answer", e)))?,
        );
        cache.insert(options.cloud.clone(), (options.clone(), body.clone()));
        Ok(body)
    }
}

async fn clouds(State(api): State<Arc<CatalogApi>>) -> Json<Clouds> {
    Json(Clouds { clouds: api.catalog.clouds() })
}

async fn options(State(api): State<Arc<CatalogApi>>, Path(cloud): Path<String>) -> Result<Response, ApiError> {
    let options = api.catalog.options(&cloud).await?;
    let body = api.rendered(&options)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn list(
    State(api): State<Arc<CatalogApi>>,
    Path((cloud, kind)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let kind = match kind.as_str() {
        "images" | "flavors" | "networks" => kind,
        _ => return Err(ApiError(domain::Error::NotFound("route".into()))),
    };
    let o = api.catalog.options(&cloud).await?;
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
        .with_state(Arc::new(CatalogApi { catalog, rendered: Mutex::new(HashMap::new()) }))
}
