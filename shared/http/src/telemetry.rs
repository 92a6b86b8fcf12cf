use tracing_subscriber::EnvFilter;

/// JSON lines on Lambda (CloudWatch reads them), human-readable text locally. `RUST_LOG` filters;
/// the default is `info`.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests starting several servers) is harmless: keep the first subscriber.
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(false).without_time().try_init()
    } else {
        builder.compact().try_init()
    };
}
