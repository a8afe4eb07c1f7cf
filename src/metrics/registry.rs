//! [`Metrics`]: the registry a daemon records into (no global recorder: several daemons may
//! run in one test process), rendered as Prometheus text for `/metrics`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use metrics::{Counter, Gauge, Key, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use super::names;

/// A label value, escaped for the text format.
pub fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics registry. Cheap to clone; all clones share the same series.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Series rendered at scrape time in the text format (the `process_*` ones).
    collectors: Mutex<Vec<Collector>>,
    /// Run before each scrape: they set series from the state they follow.
    refreshers: Mutex<Vec<Refresher>>,
    /// Label values whose series are no longer rendered (`service="web"` of a service a
    /// reload removed): the recorder cannot forget a series.
    hidden: Mutex<BTreeSet<String>>,
}

/// Renders some series in the text format, at scrape time.
pub type Collector = Box<dyn Fn() -> String + Send + Sync>;

/// Sets some series from the state it follows, at scrape time (through the registry's
/// gauges, like any other series).
pub type Refresher = Box<dyn Fn(&Metrics) + Send + Sync>;

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        for (name, help) in names::HELP {
            recorder.describe_gauge((*name).into(), unit_of(name), (*help).into());
        }
        let m = Metrics {
            inner: Arc::new(Inner {
                recorder,
                handle,
                collectors: Mutex::new(Vec::new()),
                refreshers: Mutex::new(Vec::new()),
                hidden: Mutex::new(BTreeSet::new()),
            }),
        };
        m.gauge(
            names::BUILD_INFO,
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("revision", env!("ANYCASTD_REVISION")),
                ("rustc", env!("ANYCASTD_RUSTC")),
            ],
        )
        .set(1.0);
        m.add_collector(Box::new(super::process::render));
        m
    }

    /// Describes a metric registered elsewhere (by a check kind, say).
    pub fn describe(&self, name: &'static str, help: &'static str) {
        self.inner
            .recorder
            .describe_gauge(name.into(), unit_of(name), help.into());
    }

    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        self.inner
            .recorder
            .register_gauge(&key(name, labels), &metadata())
    }

    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        self.inner
            .recorder
            .register_counter(&key(name, labels), &metadata())
    }

    /// Adds series that are rendered at every scrape (and so vanish when their source
    /// stops listing them).
    pub fn add_collector(&self, c: Collector) {
        if let Ok(mut cs) = self.inner.collectors.lock() {
            cs.push(c);
        }
    }

    /// Runs `r` before every scrape, so that the series it sets say what its state says
    /// at that moment.
    pub fn refresh_with(&self, r: Refresher) {
        if let Ok(mut rs) = self.inner.refreshers.lock() {
            rs.push(r);
        }
    }

    /// Stops rendering the series labelled `label="value"` (they belong to something that
    /// is gone), until [`Metrics::show`].
    pub fn hide(&self, label: &str, value: &str) {
        if let Ok(mut h) = self.inner.hidden.lock() {
            h.insert(format!("{label}=\"{value}\""));
        }
    }

    /// Renders the series labelled `label="value"` again.
    pub fn show(&self, label: &str, value: &str) {
        if let Ok(mut h) = self.inner.hidden.lock() {
            h.remove(&format!("{label}=\"{value}\""));
        }
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        if let Ok(rs) = self.inner.refreshers.lock() {
            for r in rs.iter() {
                r(self);
            }
        }
        let mut text = self.inner.handle.render();
        if let Ok(hidden) = self.inner.hidden.lock()
            && !hidden.is_empty()
        {
            text = text
                .lines()
                .filter(|l| {
                    l.starts_with('#')
                        || !hidden
                            .iter()
                            .any(|h| l.contains(&format!("{{{h}")) || l.contains(&format!(",{h}")))
                })
                .map(|l| format!("{l}\n"))
                .collect();
        }
        if let Ok(cs) = self.inner.collectors.lock() {
            for c in cs.iter() {
                text.push_str(&c());
            }
        }
        text
    }
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::new(*k, v.to_string()))
        .collect();
    Key::from_parts(name, labels)
}

fn metadata() -> Metadata<'static> {
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
}

fn unit_of(name: &str) -> Option<Unit> {
    name.ends_with("_seconds").then_some(Unit::Seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_rendered_with_labels_and_help() {
        let m = Metrics::new();
        m.gauge(names::SERVICE_UP, &[("service", "dns")]).set(1.0);
        let text = m.render();
        assert!(text.contains("# HELP anycastd_service_up"), "{text}");
        assert!(
            text.contains("anycastd_service_up{service=\"dns\"} 1"),
            "{text}"
        );
        assert!(text.contains("anycastd_build_info{version=\""), "{text}");
    }

    #[test]
    fn hidden_label_values_are_not_rendered() {
        let m = Metrics::new();
        m.gauge(names::SERVICE_UP, &[("service", "web")]).set(1.0);
        m.gauge(names::SERVICE_UP, &[("service", "web2")]).set(1.0);
        m.gauge(names::CHECK_UP, &[("service", "web"), ("check", "c")])
            .set(1.0);
        m.hide("service", "web");
        let text = m.render();
        assert!(!text.contains("service=\"web\""), "{text}");
        assert!(text.contains("service=\"web2\""), "{text}");
        m.show("service", "web");
        assert!(
            m.render()
                .contains("anycastd_check_up{service=\"web\",check=\"c\"} 1")
        );
    }

    #[test]
    fn clones_share_series() {
        let m = Metrics::new();
        let g = m
            .clone()
            .gauge(names::CHECK_UP, &[("service", "a"), ("check", "b")]);
        g.set(1.0);
        assert!(
            m.render()
                .contains("anycastd_check_up{service=\"a\",check=\"b\"} 1")
        );
    }
}
