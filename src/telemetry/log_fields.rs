//! How span and event fields look in log lines: as tracing-subscriber
//! writes them, minus the `otel.*` fields, which only tell OpenTelemetry
//! how to name and kind a span and would make every log line longer.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::{
    field::{MakeVisitor, VisitFmt, VisitOutput},
    fmt::format::{DefaultVisitor, Writer},
};

/// The field formatter of the log lines.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LogFields;

impl<'a> MakeVisitor<Writer<'a>> for LogFields {
    type Visitor = WithoutOtelFields<DefaultVisitor<'a>>;

    fn make_visitor(&self, target: Writer<'a>) -> Self::Visitor {
        WithoutOtelFields(DefaultVisitor::new(target, true))
    }
}

/// Passes every field but the `otel.*` ones on to the inner visitor.
#[derive(Debug)]
pub(crate) struct WithoutOtelFields<V>(V);

impl<V: Visit> WithoutOtelFields<V> {
    fn keeps(field: &Field) -> bool {
        !field.name().starts_with("otel.")
    }
}

impl<V: Visit> Visit for WithoutOtelFields<V> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if Self::keeps(field) {
            self.0.record_str(field, value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if Self::keeps(field) {
            self.0.record_error(field, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if Self::keeps(field) {
            self.0.record_debug(field, value);
        }
    }
}

impl<V: VisitOutput<fmt::Result>> VisitOutput<fmt::Result> for WithoutOtelFields<V> {
    fn finish(self) -> fmt::Result {
        self.0.finish()
    }
}

impl<V: VisitFmt> VisitFmt for WithoutOtelFields<V> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        self.0.writer()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn log_lines_leave_out_the_otel_fields() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(LogFields)
            .with_writer(buffer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "grpc.server",
                otel.name = "catalog.v1.CatalogService/GetProduct",
                otel.kind = "server",
                rpc.method = "catalog.v1.CatalogService/GetProduct",
            );
            let _entered = span.enter();
            tracing::info!(otel.status_code = "error", code = 14, "answered");
        });
        let line = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(
            line.contains(r#"grpc.server{rpc.method="catalog.v1.CatalogService/GetProduct"}"#),
            "{line}"
        );
        assert!(line.contains("answered code=14"), "{line}");
        assert!(!line.contains("otel."), "{line}");
    }
}
