//! `ntp` against Debian's chronyd on loopback (synchronised at stratum 8, then made
//! unsynchronised for real with `chronyc local off`, and back), and against a steerable
//! server of our own for the failures chrony will not produce: Kiss-o'-Death, stratum 16, a
//! clock far off, a spoofed origin, garbage, a reply from another port, silence, a flood.

pub mod common {
    pub mod checks;
    pub mod lab;
    pub mod ntp;
    pub mod prom;
}

use std::time::Duration;

use common::checks::{alive_tasks, assert_within_worst_case, failure, runner, wait_until};
use common::ntp::{Chrony, Mode, Steerable};

fn yaml(server: &str, extra: &str) -> String {
    format!("kind: ntp\nname: clock\nspec:\n  server: \"{server}\"\n  timeout: 500ms\n{extra}")
}

/// The check's own series `name`, labels {service, check}.
fn gauge(m: &anycastd::metrics::Metrics, name: &str) -> Option<f64> {
    common::prom::value(
        &common::prom::parse(&m.render()),
        name,
        &[("service", "svc"), ("check", "clock")],
    )
}

#[tokio::test]
async fn chrony_passes_then_fails_unsynchronised_and_passes_again() {
    let chrony = Chrony::start();
    let (r, m) = runner(&yaml(&chrony.addr.to_string(), ""));
    let o = r.run().await;
    assert_eq!(o.result, Ok(()), "chronyd's log:\n{}", chrony.log());
    assert_eq!(gauge(&m, "anycastd_check_ntp_stratum"), Some(8.0));
    let offset = gauge(&m, "anycastd_check_ntp_offset_seconds").expect("an offset");
    // Its clock is this host's: the offset is the asymmetry of a loopback round trip.
    assert!(offset.abs() < 0.05, "offset {offset}");
    eprintln!(
        "offset to chronyd on loopback: {offset:e} s, took {:?}",
        o.duration
    );

    chrony.unsynchronise();
    let o = r.run().await;
    assert_eq!(
        failure(&o),
        format!(
            "ntp {}: not synchronised (leap indicator 3: the server says its clock is not set)",
            chrony.addr
        )
    );
    // What chronyd answers unsynchronised: stratum 0, and no kiss code.
    assert_eq!(gauge(&m, "anycastd_check_ntp_stratum"), Some(0.0));

    chrony.resynchronise();
    assert_eq!(r.run().await.result, Ok(()));
    assert_eq!(gauge(&m, "anycastd_check_ntp_stratum"), Some(8.0));
}

#[tokio::test]
async fn chrony_above_max_stratum_fails() {
    let chrony = Chrony::start();
    let (r, _) = runner(&yaml(&chrony.addr.to_string(), "  max_stratum: 4\n"));
    assert_eq!(
        failure(&r.run().await),
        format!("ntp {}: stratum 8, above max_stratum 4", chrony.addr)
    );
    // By name: localhost resolves (through /etc/hosts) to chronyd's address.
    let (r, _) = runner(&yaml(&format!("localhost:{}", chrony.addr.port()), ""));
    assert_eq!(r.run().await.result, Ok(()));
}

/// What the check says of each bad answer that comes at once.
#[tokio::test]
async fn bad_answers_fail_at_once_and_say_why() {
    let srv = Steerable::start(Mode::Good);
    let (r, m) = runner(&yaml(&srv.addr.to_string(), "  max_offset: 2s\n"));
    assert_eq!(r.run().await.result, Ok(()));
    assert_eq!(gauge(&m, "anycastd_check_ntp_stratum"), Some(1.0));
    let head = format!("ntp {}: ", srv.addr);
    for (mode, want) in [
        (
            Mode::Kiss(b"RATE"),
            "Kiss-o'-Death RATE: the server asks to be queried less often (rate exceeded)",
        ),
        (
            Mode::Kiss(b"DENY"),
            "Kiss-o'-Death DENY: the server refuses to serve this host (access denied)",
        ),
        (
            Mode::Leap3,
            "not synchronised (leap indicator 3: the server says its clock is not set)",
        ),
        (
            Mode::Stratum(16),
            "stratum 16: the server is not synchronised",
        ),
    ] {
        srv.set(mode);
        let o = r.run().await;
        assert_eq!(failure(&o), format!("{head}{want}"), "{mode:?}");
        // A valid reply is judged when it comes: no waiting for the timeout.
        assert!(o.duration < Duration::from_millis(400), "{mode:?}: {o:?}");
    }
    // Clocks off, to the millisecond that a loaded machine's delays may move.
    for (offset, shown, side) in [
        (30.0, ["30s ", "29s9"], "ahead of"),
        (-2.5, ["2s5", "2s49"], "behind"),
    ] {
        srv.set(Mode::Offset(offset));
        let o = r.run().await;
        let msg = failure(&o);
        assert!(
            shown
                .iter()
                .any(|s| msg.starts_with(&format!("{head}its clock is {s}")))
                && msg.ends_with(&format!(" {side} this host's, more than max_offset 2s")),
            "{msg}"
        );
    }
    assert_eq!(gauge(&m, "anycastd_check_ntp_stratum"), Some(1.0));
    let offset = gauge(&m, "anycastd_check_ntp_offset_seconds").expect("an offset");
    assert!(
        (offset + 2.5).abs() < 0.05,
        "the last offset was -2.5 s: {offset}"
    );
    srv.set(Mode::Offset(1.5));
    assert_eq!(
        r.run().await.result,
        Ok(()),
        "1.5 s is within max_offset 2s"
    );
}

/// What is no reply at all is dropped, and the attempt fails at its timeout saying what
/// it dropped: garbage, a reply from another port, a spoofed origin, silence.
#[tokio::test]
async fn what_is_not_a_reply_is_dropped_and_named_at_the_timeout() {
    let srv = Steerable::start(Mode::Silent);
    let (r, _) = runner(&yaml(
        &srv.addr.to_string(),
        "  tries: 2\n  interval: 50ms\n",
    ));
    for (mode, want) in [
        (
            Mode::Silent,
            "no valid reply within 500ms (nothing came back: is an NTP server listening there?)"
                .to_string(),
        ),
        (
            Mode::Garbage,
            "no valid reply within 500ms (dropped: 1 shorter than an NTP packet (48 bytes); 1 not in server mode)"
                .to_string(),
        ),
        (
            Mode::SpoofedOrigin,
            "no valid reply within 500ms (dropped: 1 whose origin timestamp is not this request's (spoofed, or late))"
                .to_string(),
        ),
        (Mode::OtherPort, "from another address or port".to_string()),
    ] {
        srv.set(mode);
        let before = srv.requests();
        let o = r.run().await;
        let msg = failure(&o);
        assert!(
            msg.starts_with(&format!("ntp {}: ", srv.addr)) && msg.contains(&want),
            "{mode:?}: {msg}"
        );
        assert!(msg.ends_with("(all 2 attempts failed)"), "{msg}");
        assert_eq!(o.attempts, 2);
        assert_eq!(srv.requests() - before, 2, "one request per attempt");
        assert_within_worst_case(&r, &o);
        // Dropping is not failing early: each attempt waited for a valid reply.
        assert!(o.duration >= Duration::from_millis(2 * 450), "{mode:?}: {o:?}");
    }
}

/// A spoofed Kiss-o'-Death before the real reply changes nothing: the check passes.
#[tokio::test]
async fn a_spoofed_reply_does_not_decide() {
    let srv = Steerable::start(Mode::SpoofedThenGood);
    let (r, _) = runner(&yaml(&srv.addr.to_string(), ""));
    assert_eq!(r.run().await.result, Ok(()));
}

/// A flood of 20,000 bogus replies per request: each attempt still ends at its timeout,
/// with the count, and leaves no task behind.
#[tokio::test]
async fn a_flood_fails_within_the_timeout_and_leaves_nothing() {
    let srv = Steerable::start(Mode::Flood(20_000));
    let baseline = alive_tasks();
    let (r, _) = runner(&yaml(&srv.addr.to_string(), "  tries: 2\n  interval: 0s\n"));
    let o = r.run().await;
    let msg = failure(&o);
    assert!(
        msg.contains("whose origin timestamp is not this request's"),
        "{msg}"
    );
    assert_within_worst_case(&r, &o);
    assert!(
        wait_until(Duration::from_secs(2), || alive_tasks() <= baseline).await,
        "{} tasks alive, {baseline} before",
        alive_tasks()
    );
}

#[tokio::test]
async fn nothing_listening_fails_within_the_timeout() {
    let port = common::lab::free_udp_port();
    let (r, _) = runner(&yaml(&format!("127.0.0.1:{port}"), ""));
    let o = r.run().await;
    assert_eq!(
        failure(&o),
        format!(
            "ntp 127.0.0.1:{port}: no valid reply within 500ms (nothing came back: is an NTP server listening there?)"
        )
    );
    assert_within_worst_case(&r, &o);
}
