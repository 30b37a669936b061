use std::io::Write;
use std::sync::{Arc, Mutex};

use super::*;

/// Log lines written into memory, to read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().map_err(|_| io::Error::other("poisoned"))?.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'writer> MakeWriter<'writer> for Captured {
    type Writer = Captured;

    fn make_writer(&'writer self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().expect("the captured lines").clone();
        String::from_utf8(bytes)
            .expect("UTF-8 lines")
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}")))
            .collect()
    }
}

#[test]
fn a_json_line_inside_a_job_span_carries_the_jobs_fields() {
    let captured = Captured::default();
    let subscriber = subscriber(LogFormat::Json, EnvFilter::new("info"), captured.clone());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("before the job");
        let job = tracing::info_span!("job", job_id = "01JOB", user_id = "web:alice");
        let _in_job = job.enter();
        let step = tracing::info_span!("step", stage = "generating", job_id = "overridden by nobody");
        let _in_step = step.enter();
        tracing::warn!(model = "core", images = 2_u64, done = true, "the model answered for {}", "core");
        tracing::debug!("filtered out at info");
    });
    let lines = captured.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");

    let outside = &lines[0];
    assert_eq!(outside["message"], "before the job");
    assert_eq!(outside["level"], "INFO");
    assert_eq!(outside["target"], module_path!());
    assert!(outside.get("job_id").is_none(), "{outside}");
    assert!(outside["timestamp"].as_str().is_some_and(|time| time.contains('T')), "{outside}");

    let inside = &lines[1];
    assert_eq!(inside["message"], "the model answered for core");
    assert_eq!(inside["level"], "WARN");
    assert_eq!(inside["user_id"], "web:alice", "{inside}");
    assert_eq!(inside["stage"], "generating");
    // The innermost span wins a clash of names.
    assert_eq!(inside["job_id"], "overridden by nobody");
    assert_eq!(inside["span"], "step");
    assert_eq!(inside["model"], "core");
    assert_eq!(inside["images"], 2);
    assert_eq!(inside["done"], true);
}

#[test]
fn a_job_span_puts_its_ids_on_every_line_of_the_job() {
    let captured = Captured::default();
    let subscriber = subscriber(LogFormat::Json, EnvFilter::new("info"), captured.clone());
    tracing::subscriber::with_default(subscriber, || {
        let job = tracing::info_span!("job", job_id = "01JOB", user_id = "discord:42");
        job.in_scope(|| {
            tracing::info!("admitted");
            tracing::error!(error = "the store is down", "could not keep the image");
        });
    });
    let lines = captured.lines();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert_eq!(line["job_id"], "01JOB", "{line}");
        assert_eq!(line["user_id"], "discord:42", "{line}");
        assert_eq!(line["span"], "job");
    }
}

#[test]
fn text_lines_are_for_people() {
    let captured = Captured::default();
    let subscriber = subscriber(LogFormat::Text, EnvFilter::new("info"), captured.clone());
    tracing::subscriber::with_default(subscriber, || tracing::info!(model = "core", "the model answered"));
    let text = String::from_utf8(captured.0.lock().expect("the captured lines").clone()).expect("UTF-8");
    assert!(text.contains("the model answered"), "{text}");
    assert!(serde_json::from_str::<Value>(text.trim()).is_err(), "{text}");
}

#[test]
fn serenitys_rest_spans_are_off_unless_rust_log_names_serenity() {
    for (rust_log, default_level) in [(None, "info"), (Some("info"), "warn"), (Some("debug,hyper=warn"), "info")] {
        let directives = filter(rust_log, default_level).to_string();
        assert!(directives.contains("serenity::http=warn"), "{rust_log:?}: {directives}");
    }
    assert!(filter(None, "info").to_string().contains("info"));
    let chosen = filter(Some("info,serenity=debug"), "info").to_string();
    assert!(!chosen.contains("serenity::http=warn"), "{chosen}");
    // An unreadable RUST_LOG falls back to the default level, as before.
    let fallback = filter(Some("debug,[=bad"), "error").to_string();
    assert!(fallback.contains("error") && !fallback.contains("debug"), "{fallback}");
}
