use tracing_subscriber::EnvFilter;

/// The Lambda runtime logs whole events (with approval paths and bodies) at trace and debug level:
/// whatever `RUST_LOG` says, its crates log at info at most.
const CAPPED: [&str; 2] = ["lambda_runtime", "lambda_http"];

/// The level Lambda's advanced logging controls ask for (`AWS_LAMBDA_LOG_LEVEL`: TRACE, DEBUG,
/// INFO, WARN, ERROR or FATAL; tracing has no FATAL, so that is ERROR). Like the AWS runtimes'
/// loggers, it takes precedence over `RUST_LOG`
/// (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html).
fn lambda_level(value: &str) -> Option<&'static str> {
    match value.trim().to_ascii_uppercase().as_str() {
        "TRACE" => Some("trace"),
        "DEBUG" => Some("debug"),
        "INFO" => Some("info"),
        "WARN" => Some("warn"),
        "ERROR" | "FATAL" => Some("error"),
        _ => None,
    }
}

/// `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else info; the Lambda runtime's crates capped at info.
pub fn filter_directives(rust_log: Option<&str>, aws_lambda_log_level: Option<&str>) -> String {
    let user = aws_lambda_log_level.and_then(lambda_level).or(rust_log).unwrap_or("info");
    let kept = user
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !CAPPED.iter().any(|c| d.starts_with(c)))
        .collect::<Vec<_>>();
    let mut directives =
        if kept.is_empty() { vec!["info".to_string()] } else { kept.iter().map(|d| d.to_string()).collect() };
    // Below info the runtime's crates stay at info; above it they follow the level asked for.
    let cap = capped_level(&directives[0]);
    directives.extend(CAPPED.iter().map(|c| format!("{c}={cap}")));
    directives.join(",")
}

fn capped_level(first: &str) -> &'static str {
    match first {
        "warn" => "warn",
        "error" => "error",
        "off" => "off",
        _ => "info",
    }
}

/// JSON lines on Lambda (CloudWatch reads them; each has a `level`, which Lambda's log-level
/// filtering reads) with metrics as EMF lines, human-readable text locally. `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` filters; the
/// default is `info`.
pub fn init(lambda: bool) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let lambda_level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok();
    let directives = filter_directives(rust_log.as_deref(), lambda_level.as_deref());
    let filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if lambda {
        // On Lambda the figures go out as CloudWatch EMF lines, beside the logs.
        crate::metrics::install_emf();
    }
    // A second init (tests starting several servers) is harmless: keep the first subscriber.
    let _ = if lambda {
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
        assert_eq!(filter_directives(None, None), "info,lambda_runtime=info,lambda_http=info");
        assert_eq!(
            filter_directives(Some("trace,lambda_runtime=trace, lambda_http::request=debug,store=debug"), None),
            "trace,store=debug,lambda_runtime=info,lambda_http=info"
        );
        assert_eq!(filter_directives(Some("lambda_runtime=trace"), None), "info,lambda_runtime=info,lambda_http=info");
        assert_eq!(filter_directives(None, Some("DEBUG")), "debug,lambda_runtime=info,lambda_http=info");
    }

    #[test]
    fn lambdas_log_level_control_takes_precedence_over_rust_log() {
        assert_eq!(filter_directives(Some("debug"), Some("WARN")), "warn,lambda_runtime=warn,lambda_http=warn");
        assert_eq!(filter_directives(Some("debug"), Some("FATAL")), "error,lambda_runtime=error,lambda_http=error");
        // A value Lambda does not set is ignored.
        assert_eq!(filter_directives(Some("debug"), Some("loud")), "debug,lambda_runtime=info,lambda_http=info");
    }
}
