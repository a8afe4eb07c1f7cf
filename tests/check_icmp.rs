//! `icmp_ping` against the loopback addresses, IPv4, IPv6 and by name, with its metrics.
//! (Loss is tested in the module, which can bind its socket to `lo`.)

pub mod common {
    pub mod checks;
    pub mod prom;
}

use common::checks::{SERVICE, failure, runner};

fn metric(text: &str, name: &str, host: &str) -> f64 {
    common::prom::value(
        &common::prom::parse(text),
        name,
        &[("host", host), ("service", SERVICE)],
    )
    .unwrap_or_else(|| panic!("no {name} for host {host} in:\n{text}"))
}

async fn passes(host: &str) {
    let yaml = format!(
        "name: ping\nkind: icmp_ping\nspec:\n  static: {{host: \"{host}\"}}\n  tries: 3\n  interval: 50ms\n  timeout: 1s\n"
    );
    let (r, m) = runner(&yaml);
    let o = r.run().await;
    assert!(o.result.is_ok(), "ping {host} must pass: {o:?}");
    let text = m.render();
    assert_eq!(
        metric(&text, "anycastd_check_packets_sent_total", host),
        3.0
    );
    assert_eq!(
        metric(&text, "anycastd_check_packets_received_total", host),
        3.0
    );
    assert_eq!(metric(&text, "anycastd_check_loss_percent", host), 0.0);
    assert_eq!(
        metric(
            &text,
            "anycastd_check_packets_received_duplicates_total",
            host
        ),
        0.0
    );
    let (min, avg, max) = (
        metric(&text, "anycastd_check_min_rtt_seconds", host),
        metric(&text, "anycastd_check_avg_rtt_seconds", host),
        metric(&text, "anycastd_check_max_rtt_seconds", host),
    );
    assert!(
        min > 0.0 && min <= avg && avg <= max && max < 1.0,
        "RTTs in seconds: {min} {avg} {max}"
    );
    metric(&text, "anycastd_check_std_dev_rtt_seconds", host);

    // A second run adds to the totals.
    assert!(r.run().await.result.is_ok());
    let text = m.render();
    assert_eq!(
        metric(&text, "anycastd_check_packets_sent_total", host),
        6.0
    );
}

#[tokio::test]
async fn ipv4_loopback_passes() {
    passes("127.0.0.1").await;
}

#[tokio::test]
async fn ipv6_loopback_passes() {
    passes("::1").await;
}

#[tokio::test]
async fn host_name_passes() {
    passes("localhost").await;
}

#[tokio::test]
async fn unknown_host_name_fails_with_the_name() {
    let (r, m) = runner(
        "name: ping\nkind: icmp_ping\nspec:\n  static: {host: no-such-host.invalid}\n  tries: 2\n  timeout: 500ms\n",
    );
    let o = r.run().await;
    let msg = failure(&o);
    assert!(msg.contains("no-such-host.invalid"), "{msg}");
    let text = m.render();
    assert_eq!(
        metric(&text, "anycastd_check_loss_percent", "no-such-host.invalid"),
        100.0
    );
    assert_eq!(
        metric(
            &text,
            "anycastd_check_packets_sent_total",
            "no-such-host.invalid"
        ),
        0.0
    );
}
