//! CloudWatch Embedded Metric Format: a JSON log line that CloudWatch turns into metrics,
//! so functions publish metrics without an API call.

use serde_json::{Map, Value, json};

/// The namespace every function's metrics go to.
pub const NAMESPACE: &str = "SessionService";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

/// One EMF document: metrics under the `Function` dimension, plus plain properties that
/// are logged with them but not turned into metrics.
#[derive(Debug, Clone)]
pub struct Emf {
    function: String,
    metrics: Vec<(String, f64, Unit)>,
    properties: Map<String, Value>,
}

impl Emf {
    pub fn new(function: &str) -> Self {
        Self {
            function: function.to_owned(),
            metrics: Vec::new(),
            properties: Map::new(),
        }
    }

    pub fn metric(mut self, name: &str, value: f64, unit: Unit) -> Self {
        self.metrics.push((name.to_owned(), value, unit));
        self
    }

    /// Count metrics, in order.
    pub fn counts(self, counts: &[(&str, u64)]) -> Self {
        counts.iter().fold(self, |emf, (name, n)| {
            emf.metric(name, *n as f64, Unit::Count)
        })
    }

    pub fn property(mut self, name: &str, value: Value) -> Self {
        self.properties.insert(name.to_owned(), value);
        self
    }

    /// The single-line JSON document, stamped with `timestamp_ms`.
    pub fn to_line(&self, timestamp_ms: i64) -> String {
        let mut doc = self.properties.clone();
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Function"]],
                    "Metrics": self.metrics.iter()
                        .map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()}))
                        .collect::<Vec<_>>(),
                }],
            }),
        );
        doc.insert("Function".into(), json!(self.function));
        for (name, value, _) in &self.metrics {
            doc.insert(name.clone(), json!(value));
        }
        Value::Object(doc).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_declare_every_metric_and_carry_its_value() {
        let line = Emf::new("session-cleanup")
            .metric("deleted", 3.0, Unit::Count)
            .metric("duration_ms", 12.5, Unit::Milliseconds)
            .property("complete", json!(true))
            .to_line(1_700_000_000_000);
        let doc: Value = serde_json::from_str(&line).unwrap();
        assert!(!line.contains('\n'));
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], json!(NAMESPACE));
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(
            directive["Metrics"][1],
            json!({"Name": "duration_ms", "Unit": "Milliseconds"})
        );
        assert_eq!(doc["_aws"]["Timestamp"], json!(1_700_000_000_000_i64));
        assert_eq!(doc["Function"], json!("session-cleanup"));
        assert_eq!(doc["deleted"], json!(3.0));
        assert_eq!(doc["complete"], json!(true));
    }
}
