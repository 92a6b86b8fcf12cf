use tracing_subscriber::EnvFilter;

/// The Lambda runtime logs whole events (with approval paths and bodies) at trace and debug level:
/// whatever `RUST_LOG` says, its crates log at info at most.
const CAPPED: [&str; 2] = ["lambda_runtime", "lambda_http"];

/// `RUST_LOG` with the Lambda runtime's crates capped at info.
pub fn filter_directives(rust_log: Option<&str>) -> String {
    let user = rust_log.unwrap_or("info");
    let kept = user
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !CAPPED.iter().any(|c| d.starts_with(c)))
        .collect::<Vec<_>>();
    let mut directives =
        if kept.is_empty() { vec!["info".to_string()] } else { kept.iter().map(|d| d.to_string()).collect() };
    directives.extend(CAPPED.iter().map(|c| format!("{c}=info")));
    directives.join(",")
}

/// JSON lines on Lambda (CloudWatch reads them), human-readable text locally. `RUST_LOG` filters;
/// the default is `info`.
pub fn init(json: bool) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = EnvFilter::try_new(filter_directives(rust_log.as_deref())).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests starting several servers) is harmless: keep the first subscriber.
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(false).without_time().try_init()
    } else {
        builder.compact().try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lambda_runtime_never_logs_below_info() {
        assert_eq!(filter_directives(None), "info,lambda_runtime=info,lambda_http=info");
        assert_eq!(
            filter_directives(Some("trace,lambda_runtime=trace, lambda_http::request=debug,store=debug")),
            "trace,store=debug,lambda_runtime=info,lambda_http=info"
        );
        assert_eq!(filter_directives(Some("lambda_runtime=trace")), "info,lambda_runtime=info,lambda_http=info");
    }
}
