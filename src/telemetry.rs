//! Logging on standard error, filtered by `RUST_LOG`: lines for people at a terminal, or with
//! `ATELIER_LOG_FORMAT=json` one JSON object a line for a log store.
//!
//! A JSON line carries `timestamp`, `level`, `target` and `message`, the event's own fields,
//! and the fields of every span it happened in, flattened onto the line (the innermost span
//! wins a clash, the event's own fields win over all), plus `span`, the innermost span's
//! name. So a `job` span opened with `job_id` and `user_id` puts both on every line logged
//! while the job runs, and a log store can gather one job's lines with one query.

use std::fmt;
use std::io;

use atelier_shared::config::LogFormat;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// serenity's REST calls run in spans `#[instrument]`ed at INFO with all their arguments
/// (`Http::request`, `Request::build`, the rate limiter's `perform`), so with those spans on,
/// every Discord call formats its whole request into them with `Debug`, uploads included:
/// megabytes of `[137, 80, 78, …]` per image, most of an image job's own time. They stay off
/// unless `RUST_LOG` names serenity itself; serenity logs nothing in them above debug.
const SERENITY_HTTP_SPANS_OFF: &str = "serenity::http=warn";

/// Starts logging at `default_level` unless `RUST_LOG` says otherwise.
pub fn init(default_level: &str, format: LogFormat) {
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref(), default_level);
    // A second initialisation (tests starting several apps) is harmless and ignored. This
    // also forwards the `log` records of dependencies that use it.
    let _ = subscriber(format, filter, io::stderr).try_init();
}

/// The filter from `RUST_LOG` (or `default_level` when it is unset or unreadable), with
/// serenity's REST spans off unless `RUST_LOG` mentions serenity.
fn filter(rust_log: Option<&str>, default_level: &str) -> EnvFilter {
    let directives = match rust_log.filter(|directives| EnvFilter::try_new(directives).is_ok()) {
        Some(directives) if directives.contains("serenity") => return EnvFilter::new(directives),
        Some(directives) => directives,
        None => default_level,
    };
    EnvFilter::new(format!("{directives},{SERENITY_HTTP_SPANS_OFF}"))
}

/// The subscriber for `format`, writing to `writer`: what [`init`] installs, and what the
/// tests install around a closure.
pub fn subscriber<W>(format: LogFormat, filter: EnvFilter, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.with_target(false).finish()),
        // Span fields are kept as JSON (JsonFields), so each line can merge them in.
        LogFormat::Json => Box::new(builder.fmt_fields(JsonFields::new()).event_format(FlatJson).finish()),
    }
}

/// One JSON object a line, with the span fields flattened onto it (see the module's docs).
struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    N: for<'writer> FormatFields<'writer> + 'static,
{
    fn format_event(&self, context: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut line = Map::new();
        let mut timestamp = String::new();
        if SystemTime.format_time(&mut Writer::new(&mut timestamp)).is_ok() {
            line.insert("timestamp".into(), Value::String(timestamp));
        }
        let metadata = event.metadata();
        line.insert("level".into(), Value::String(metadata.level().as_str().into()));
        line.insert("target".into(), Value::String(metadata.target().into()));
        if let Some(scope) = context.event_scope() {
            let mut innermost = None;
            for span in scope.from_root() {
                let extensions = span.extensions();
                // The fields were written by JsonFields as one JSON object; text from any
                // other field formatter is skipped rather than guessed at.
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&fields.fields)
                {
                    line.extend(fields);
                }
                innermost = Some(span.name());
            }
            if let Some(name) = innermost {
                line.insert("span".into(), Value::String(name.into()));
            }
        }
        event.record(&mut FieldsInto(&mut line));
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Writes an event's fields into a JSON object, keeping numbers and booleans as such.
struct FieldsInto<'line>(&'line mut Map<String, Value>);

impl Visit for FieldsInto<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::String(value.into()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), Value::String(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests;
