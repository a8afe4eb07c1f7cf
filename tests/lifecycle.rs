//! Day-2 operation end to end (issue 12, SPEC 9 and 12): drains (command, file, across a
//! restart), the RFC 8326 graceful withdraw seen on the router's monitor stream, live
//! reload (added, changed, removed services; untouched routes get no UPDATE; invalid files
//! change nothing), signals, the control socket under abuse, and the daemon driven
//! in-process through its `Handle`.

pub mod common {
    pub mod config;
    pub mod e2e;
    pub mod gobgpd;
    pub mod lab;
    pub mod prom;
}

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::config::{ConfigBuilder, ServiceBuilder, service};
use common::e2e::{CHANGE, Lab, SESSION, http_check, http_service};
use common::gobgpd::RibEvent;
use common::lab::{Anycastd, HttpTarget, status, try_status, wait_until};
use common::prom;

/// GRACEFUL_SHUTDOWN, 65535:0.
const GSHUT: u64 = 0xFFFF_0000;

fn has_gshut(e: &RibEvent) -> bool {
    !e.withdrawal
        && e.attr(8)
            .and_then(|c| c["communities"].as_array())
            .is_some_and(|c| c.iter().any(|v| v.as_u64() == Some(GSHUT)))
}

/// Waits until the first service has finished `n` more rounds (200 ms each here): time for
/// something that should not happen to show.
fn wait_rounds(lab: &Lab, n: usize) {
    let mut seen = std::collections::BTreeSet::new();
    wait_until(&format!("{n} more rounds"), CHANGE, || {
        if let Some(r) = status(lab.metrics)["services"][0]["last_round"].as_str() {
            seen.insert(r.to_string());
        }
        seen.len() > n
    });
}

/// The lab's config with a drain linger.
fn config(lab: &Lab, linger: &str) -> ConfigBuilder {
    lab.config().announcer("drain_linger", linger)
}

fn ok(out: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

/// A service whose rise of 10 rounds of 200 ms takes 2 s: an undrain that waited for rise
/// again would show.
fn slow_rising(name: &str, url: &str) -> ServiceBuilder {
    http_service(name, url).set("rise", 10)
}

#[test]
fn drain_command_lingers_with_graceful_shutdown_then_undrain_returns_at_once() {
    let lab = Lab::new();
    let monitor = lab.router.monitor();
    let target = HttpTarget::start();
    let p = "192.0.2.110/32";
    let d = lab.start(&config(&lab, "2s").service(slow_rising("web", &target.url()).routes(&[p])));
    monitor.wait_for(p, "the announcement", SESSION, |e| !e.withdrawal);

    let asked = Instant::now();
    let text = ok(&d.cli(&["drain", "web"]));
    assert!(text.contains("drained web"), "{text}");
    let drained = monitor.wait_for(p, "GRACEFUL_SHUTDOWN", CHANGE, has_gshut);
    let withdrawn = monitor.wait_for(p, "the withdraw", CHANGE, |e| e.withdrawal);
    let to_community = drained.at.duration_since(asked);
    let linger = withdrawn.at.duration_since(drained.at);
    eprintln!(
        "drain command -> GRACEFUL_SHUTDOWN at the router: {:.1} ms; community -> withdraw: {:.2} s (drain_linger 2s)",
        to_community.as_secs_f64() * 1000.0,
        linger.as_secs_f64()
    );
    assert!(linger >= Duration::from_millis(1900), "{linger:?}");

    let s = status(lab.metrics);
    assert_eq!(s["services"][0]["state"], "drained", "{s:#}");
    assert_eq!(
        s["services"][0]["health"]["level"], "up",
        "checks keep running: {s:#}"
    );
    let by = s["services"][0]["drained_by"][0]
        .as_str()
        .unwrap_or_default();
    assert!(by.contains("anycastd drain"), "{s:#}");
    let table = String::from_utf8_lossy(&d.cli(&["status"]).stdout).to_string();
    assert!(table.contains("DRAINED"), "{table}");
    // Asked again, it says that nothing happened rather than describe a drain.
    let repeated = ok(&d.cli(&["drain", "web"]));
    assert!(
        repeated.contains("web: already drained by command; nothing changed"),
        "{repeated}"
    );
    assert_eq!(
        d.log().matches("drained by command").count(),
        1,
        "{}",
        d.log()
    );

    let undrained = Instant::now();
    ok(&d.cli(&["undrain", "web"]));
    let back = monitor.wait_for(p, "the announcement after undrain", CHANGE, |e| {
        !e.withdrawal && e.at > withdrawn.at
    });
    let again = back.at.duration_since(undrained);
    // Rise is 10 rounds of 200 ms: back well before that, because the checks say up.
    assert!(again < Duration::from_millis(1000), "{again:?}");
    assert!(!has_gshut(&back), "{back:?}");
    let repeated = ok(&d.cli(&["undrain", "web"]));
    assert!(
        repeated.contains("web: not drained by command; nothing changed"),
        "{repeated}"
    );
}

/// Issue 20.10: 1,000 drain and undrain commands in a row sent the router 1,394 UPDATEs,
/// each a best-path change. A drain still goes at once; an undrain waits until
/// `attribute_hold` (default 1 s) after the route's last change.
#[test]
fn drains_and_undrains_in_a_row_send_a_few_updates_and_end_up() {
    let lab = Lab::new();
    let monitor = lab.router.monitor();
    let target = HttpTarget::start();
    let p = "192.0.2.114/32";
    let d =
        lab.start(&config(&lab, "30s").service(http_service("web", &target.url()).routes(&[p])));
    monitor.wait_for(p, "the announcement", SESSION, |e| !e.withdrawal);
    let before = monitor.events(p).len();
    let log_from = d.log().len();

    let asked = Instant::now();
    ok(&d.cli(&["drain", "web"]));
    let drained = monitor.wait_for(p, "GRACEFUL_SHUTDOWN", CHANGE, has_gshut);
    let first = drained.at.duration_since(asked);
    // Never held: the drain reaches the router in milliseconds (tens of them, for the
    // command's own start).
    assert!(first < Duration::from_millis(500), "{first:?}");
    let start = Instant::now();
    const PAIRS: usize = 500;
    for _ in 0..PAIRS {
        ok(&d.cli(&["undrain", "web"]));
        ok(&d.cli(&["drain", "web"]));
    }
    ok(&d.cli(&["undrain", "web"]));
    let took = start.elapsed();
    // The last undrain: up at the router within the hold.
    wait_until("up after the last undrain", CHANGE, || {
        monitor
            .events(p)
            .last()
            .is_some_and(|e| !e.withdrawal && !has_gshut(e))
    });
    let updates = monitor.events(p).len() - before;
    let seconds = took.as_secs_f64();
    eprintln!(
        "{} drains and undrains in {seconds:.1} s: {updates} UPDATEs at the router",
        2 * PAIRS + 2
    );
    // Two changes per hold at most (down at once, back at its end), and the last two.
    let bound = 2 * (seconds.ceil() as usize + 1) + 2;
    assert!(
        updates <= bound,
        "{updates} UPDATEs in {seconds:.1} s (bound {bound})"
    );
    assert!(!has_gshut(monitor.events(p).last().expect("events")));
    // Each change was an update's: a reconcile (every second here) that came with one, or
    // with the end of a hold, applies it as an update, not as a repair of gobgpd.
    let log = d.log();
    let repairs: Vec<&str> = log[log_from..]
        .lines()
        .filter(|l| l.contains("reason=\"reconcile:"))
        .collect();
    assert!(repairs.is_empty(), "{repairs:#?}");
}

/// An undrain right after a drain waits for `attribute_hold` (5 s here), and `status` says
/// so: the route's reason, and when it goes back.
#[test]
fn an_undrain_within_the_hold_waits_for_it_and_status_says_until_when() {
    let lab = Lab::new();
    let monitor = lab.router.monitor();
    let target = HttpTarget::start();
    let p = "192.0.2.115/32";
    let d = lab.start(
        &config(&lab, "30s")
            .announcer("attribute_hold", "5s")
            .service(http_service("web", &target.url()).routes(&[p])),
    );
    monitor.wait_for(p, "the announcement", SESSION, |e| !e.withdrawal);
    ok(&d.cli(&["drain", "web"]));
    let drained = monitor.wait_for(p, "GRACEFUL_SHUTDOWN", CHANGE, has_gshut);
    // Published once gobgpd answered AddPath, which may be after the router saw it.
    wait_until("the status to say draining", CHANGE, || {
        status(lab.metrics)["prefixes"][0]["state"] == "draining"
    });
    ok(&d.cli(&["undrain", "web"]));
    let s = status(lab.metrics);
    let prefix = &s["prefixes"][0];
    assert_eq!(prefix["state"], "draining", "{s:#}");
    let why = prefix["cause"].as_str().unwrap_or_default();
    assert!(
        why.starts_with("service web is drained; up again at ")
            && why.ends_with(" (announcer.attribute_hold)"),
        "{why}"
    );
    assert!(
        d.cli(&["status"])
            .stdout
            .windows(8)
            .any(|w| w == b"up again"),
        "the status table says it too"
    );
    let back = monitor.wait_for(p, "up after the hold", CHANGE, |e| {
        !e.withdrawal && e.at > drained.at && !has_gshut(e)
    });
    let held = back.at.duration_since(drained.at);
    assert!(held >= Duration::from_millis(4900), "{held:?}");
}

/// `anycastd --config OTHER reload` reads OTHER only to find the control socket; the
/// daemon reloads its own file. The reply names that file, and the client says when it is
/// not the one it was given (it used to say nothing: the operator believed OTHER applied).
#[test]
fn a_reload_names_the_file_the_daemon_read_and_says_when_it_is_another() {
    let lab = Lab::new();
    let target = HttpTarget::start();
    let d = lab.start(&config(&lab, "1s").service(http_service("web", &target.url())));
    let own = std::fs::canonicalize(d.config_path()).expect("the daemon's config");
    wait_until("the daemon to answer", SESSION, || {
        try_status(lab.metrics).is_some_and(|s| s["gobgp"]["up"] == true)
    });
    let out = d.cli(&["reload"]);
    let text = ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(&format!("reloaded {}: ", own.display())),
        "{text}"
    );
    assert!(!text.contains("WARN"), "{text}");
    // Another file naming the same control socket.
    let other = own.with_file_name("other.yaml");
    std::fs::copy(&own, &other).expect("copy the config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anycastd"))
        .args(["--config", other.to_str().expect("utf-8"), "reload"])
        .output()
        .expect("run anycastd reload");
    let text = ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "the daemon reloaded its own config file {}, not {} (read here only to find the control socket)",
            own.display(),
            other.display()
        )),
        "{text}"
    );
    // A link to the daemon's own file is the same file.
    let link = own.with_file_name("link.yaml");
    std::os::unix::fs::symlink(&own, &link).expect("symlink");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anycastd"))
        .args(["--config", link.to_str().expect("utf-8"), "reload"])
        .output()
        .expect("run anycastd reload");
    let text = ok(&out);
    assert!(!text.contains("WARN"), "{text}");
}

#[test]
fn a_drain_file_drains_while_it_exists() {
    let lab = Lab::new();
    let monitor = lab.router.monitor();
    let target = HttpTarget::start();
    let p = "192.0.2.111/32";
    let file = lab.dir.path().join("maintenance");
    let d = lab.start(
        &config(&lab, "1s").service(
            http_service("web", &target.url())
                .routes(&[p])
                .set("drain_file", file.display()),
        ),
    );
    monitor.wait_for(p, "the announcement", SESSION, |e| !e.withdrawal);
    std::fs::write(&file, "").expect("touch the drain file");
    let touched = Instant::now();
    let drained = monitor.wait_for(p, "GRACEFUL_SHUTDOWN", CHANGE, has_gshut);
    // Drain files are looked at twice a second: about 250 ms on average, 500 ms at worst,
    // plus the UPDATE. The bound is loose for a loaded CI machine; the figure is printed.
    let seen = drained.at.duration_since(touched);
    eprintln!(
        "drain file -> GRACEFUL_SHUTDOWN at the router: {:.0} ms",
        seen.as_secs_f64() * 1000.0
    );
    assert!(seen < Duration::from_secs(3), "{seen:?}");
    let withdrawn = monitor.wait_for(p, "the withdraw", CHANGE, |e| e.withdrawal);
    let by = status(lab.metrics)["services"][0]["drained_by"][0].clone();
    assert!(
        by.as_str().unwrap_or_default().contains("maintenance"),
        "{by}"
    );
    std::fs::remove_file(&file).expect("remove the drain file");
    monitor.wait_for(p, "the announcement after the file went", CHANGE, |e| {
        !e.withdrawal && e.at > withdrawn.at
    });
    // Issue 23.7: the line names the services the file drains.
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("drain file appeared"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.ends_with(&format!(
            "drain file appeared: draining file={} services=\"web\"",
            file.display()
        )),
        "{line}"
    );
}

#[test]
fn a_drain_survives_a_restart() {
    let lab = Lab::new();
    let target = HttpTarget::start();
    let p = "192.0.2.112/32";
    let cfg = config(&lab, "1s")
        .service(http_service("web", &target.url()).routes(&[p]))
        .service(http_service("dns", &target.url()).routes(&["192.0.2.118/32"]));
    let mut d = lab.start(&cfg);
    lab.wait(p, true, SESSION);
    let drained_at = std::time::SystemTime::now();
    ok(&d.cli(&["drain", "web"]));
    lab.wait(p, false, CHANGE);
    let status_code = d.signal_and_wait("TERM", Duration::from_secs(10));
    assert_eq!(status_code.code(), Some(0));

    let monitor = lab.router.monitor();
    // At the default level (WARN).
    let d = Anycastd::start_with_env(
        lab.dir.path(),
        &cfg.to_string(),
        lab.metrics,
        &[("LOG_LEVEL", "WARN")],
    );
    // Up by its checks and the session back, yet drained: never announced.
    wait_until(
        "the restarted daemon drained, its checks up and the session established",
        SESSION,
        || {
            let Some(s) = try_status(lab.metrics) else {
                return false;
            };
            s["services"][0]["state"] == "drained"
                && s["services"][0]["health"]["level"] == "up"
                && s["peers"][0]["session_state"] == "ESTABLISHED"
        },
    );
    wait_rounds(&lab, 3);
    assert!(monitor.events(p).is_empty(), "{:#?}", monitor.events(p));
    assert!(!lab.router.rib_prefixes().contains(p));
    // Issue 23.4: said at start, once, for the drained service only, with what drained it
    // and when.
    let log = d.log();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("service is drained"))
        .collect();
    assert_eq!(said.len(), 1, "{log}");
    let (head, at) = said[0]
        .split_once(
            " WARN service is drained: its routes are not announced until it is undrained service=\"web\" drained_by=\"`anycastd drain` at ",
        )
        .unwrap_or_else(|| panic!("{}", said[0]));
    let at = at.strip_suffix("\"").expect("quoted");
    let at = humantime::parse_rfc3339(at).expect("an RFC 3339 time");
    let logged = humantime::parse_rfc3339_weak(head.trim().trim_end_matches('Z')).expect("a time");
    // The drain's time (to the second), before the line that says it.
    assert!(
        at + Duration::from_secs(1) >= drained_at && at <= logged,
        "{}",
        said[0]
    );
    ok(&d.cli(&["undrain", "web"]));
    lab.wait(p, true, CHANGE);
}

/// Issue 20: a corrupt `drained.json` started the daemon undrained, announcing what an
/// operator had drained, with one ERROR line and nothing in `/status` or the metrics. It
/// fails closed now: every service drained, said everywhere, until `undrain --all`.
#[test]
fn an_unreadable_drain_state_drains_everything_until_undrain_all() {
    let lab = Lab::new();
    let target = HttpTarget::start();
    let p = "192.0.2.113/32";
    let state = lab.dir.path().join("state");
    std::fs::create_dir_all(&state).expect("mkdir state");
    // Half a file, as a crash of an older writer or a full disk leaves it.
    std::fs::write(state.join("drained.json"), "{\"all\": 17").expect("truncated file");
    let cfg = config(&lab, "1s").service(http_service("web", &target.url()).routes(&[p]));
    let monitor = lab.router.monitor();
    let d = lab.start(&cfg);
    wait_until(
        "the service up by its checks, drained, and the session established",
        SESSION,
        || {
            let Some(s) = try_status(lab.metrics) else {
                return false;
            };
            s["services"][0]["state"] == "drained"
                && s["services"][0]["health"]["level"] == "up"
                && s["peers"][0]["session_state"] == "ESTABLISHED"
        },
    );
    wait_rounds(&lab, 3);
    assert!(monitor.events(p).is_empty(), "{:#?}", monitor.events(p));
    let s = status(lab.metrics);
    let by = s["services"][0]["drained_by"][0]
        .as_str()
        .unwrap_or_default();
    assert!(by.contains("unreadable drain state"), "{s:#}");
    assert!(by.contains("undrain --all"), "{s:#}");
    assert_eq!(d.sample("anycastd_drain_state_ok", &[]), Some(0.0));
    assert!(d.log().contains("fail closed"), "{}", d.log());
    // Undraining one service does not clear it; --all does, and writes a good file.
    let one = d.cli(&["undrain", "web"]);
    assert!(
        String::from_utf8_lossy(&one.stdout).contains("still drained by unreadable"),
        "{one:?}"
    );
    ok(&d.cli(&["undrain", "--all"]));
    lab.wait(p, true, CHANGE);
    assert_eq!(d.sample("anycastd_drain_state_ok", &[]), Some(1.0));
    let text = std::fs::read_to_string(state.join("drained.json")).expect("rewritten");
    assert!(
        serde_json::from_str::<serde_json::Value>(&text).is_ok(),
        "{text}"
    );
}

/// Issue 20: a drain that cannot be remembered is applied, but the CLI says so and exits
/// non-zero; it is saved once the state directory can be written again.
#[test]
fn a_drain_that_cannot_be_saved_fails_the_command_and_is_retried() {
    let lab = Lab::new();
    let target = HttpTarget::start();
    let p = "192.0.2.114/32";
    let cfg = config(&lab, "0s").service(http_service("web", &target.url()).routes(&[p]));
    let d = lab.start(&cfg);
    lab.wait(p, true, SESSION);
    // A directory where the file goes: the rename over it fails.
    let file = lab.dir.path().join("state").join("drained.json");
    std::fs::create_dir_all(file.join("blocker")).expect("a directory in the way");
    let out = d.cli(&["drain", "web"]);
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{out:?}");
    assert!(text.contains("drained web"), "{text}");
    assert!(text.contains("not remembered across a restart"), "{text}");
    // Applied all the same.
    lab.wait(p, false, CHANGE);
    assert_eq!(d.sample("anycastd_drain_state_ok", &[]), Some(0.0));
    // The way clears: the next drain poll saves it. The file is renamed into place before
    // the gauge is set: a scrape between the two reads 0 (CI caught the test reading it
    // there), so both are waited for.
    std::fs::remove_dir_all(&file).expect("clear the way");
    wait_until("the drain saved", CHANGE, || {
        std::fs::read_to_string(&file).is_ok_and(|t| t.contains("web"))
    });
    wait_until("anycastd_drain_state_ok 1 after the save", CHANGE, || {
        d.sample("anycastd_drain_state_ok", &[]) == Some(1.0)
    });
}

#[test]
fn a_failing_service_is_withdrawn_at_once_even_while_draining() {
    let lab = Lab::new();
    let monitor = lab.router.monitor();
    let mut target = HttpTarget::start();
    let p = "192.0.2.113/32";
    let d =
        lab.start(&config(&lab, "30s").service(http_service("web", &target.url()).routes(&[p])));
    monitor.wait_for(p, "the announcement", SESSION, |e| !e.withdrawal);
    ok(&d.cli(&["drain", "web"]));
    monitor.wait_for(p, "GRACEFUL_SHUTDOWN", CHANGE, has_gshut);
    target.stop();
    let stopped = Instant::now();
    let w = monitor.wait_for(p, "the withdraw", CHANGE, |e| e.withdrawal);
    // A round of 200 ms and a timeout of 500 ms, not the 30 s linger.
    assert!(w.at.duration_since(stopped) < Duration::from_secs(2));
}

#[test]
fn sighup_reload_adds_and_changes_services_without_touching_other_routes() {
    let lab = Lab::new();
    let monitor = lab.router.monitor();
    let target = HttpTarget::start();
    let (p1, p2) = ("192.0.2.114/32", "192.0.2.115/32");
    let d =
        lab.start(&config(&lab, "1s").service(http_service("web", &target.url()).routes(&[p1])));
    let first = monitor.wait_for(p1, "the announcement", SESSION, |e| !e.withdrawal);

    // web changed (another timeout): it keeps its state; dns added: it starts down.
    let web = service("web", "200ms")
        .routes(&[p1])
        .check(http_check(&target.url()).spec("timeout", "600ms"));
    d.rewrite_config(
        &config(&lab, "1s")
            .service(web.clone())
            .service(http_service("dns", &target.url()).routes(&[p2]))
            .to_string(),
    );
    let reloaded = Instant::now();
    d.signal("HUP");
    let added = monitor.wait_for(p2, "the added service's route", CHANGE, |e| !e.withdrawal);
    eprintln!(
        "SIGHUP -> new route at the router: {:.1} ms",
        added.at.duration_since(reloaded).as_secs_f64() * 1000.0
    );
    // Rounds of both and reconciles (every 1 s) later, the untouched route has had no
    // UPDATE since its first.
    wait_rounds(&lab, 12);
    let p1_events = monitor.events(p1);
    assert_eq!(p1_events.len(), 1, "{p1_events:#?}");
    assert_eq!(p1_events[0].at, first.at);
    let m = prom::parse(&d.metrics_text());
    assert_eq!(
        prom::value(&m, "anycastd_config_last_reload_successful", &[]),
        Some(1.0)
    );
    let s = status(lab.metrics);
    assert_eq!(s["reload"]["ok"], true, "{s:#}");
    assert!(
        s["reload"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("added dns") && m.contains("changed web")),
        "{s:#}"
    );
    assert!(d.log().contains("config reloaded"), "{}", d.log());

    // Removed again: its route drains (GRACEFUL_SHUTDOWN), then goes.
    d.rewrite_config(&config(&lab, "1s").service(web).to_string());
    ok(&d.cli(&["reload"]));
    let drained = monitor.wait_for(
        p2,
        "GRACEFUL_SHUTDOWN on the removed route",
        CHANGE,
        has_gshut,
    );
    let gone = monitor.wait_for(p2, "the removed route's withdraw", CHANGE, |e| e.withdrawal);
    assert!(gone.at.duration_since(drained.at) >= Duration::from_millis(900));
    assert_eq!(monitor.events(p1).len(), 1, "{:#?}", monitor.events(p1));
    // Its series are gone from /metrics.
    assert!(!d.metrics_text().contains("service=\"dns\""));
}

#[test]
fn an_invalid_reload_changes_nothing() {
    let lab = Lab::new();
    let monitor = lab.router.monitor();
    let target = HttpTarget::start();
    let p = "192.0.2.116/32";
    let base = config(&lab, "1s").routes(&[p]);
    let good = base.clone().service(http_service("web", &target.url()));
    let d = lab.start(&good);
    let first = monitor.wait_for(p, "the announcement", SESSION, |e| !e.withdrawal);
    let socket = lab.socket();
    let socket = socket.to_str().expect("utf-8 path");

    // Not YAML at all; then a valid file that changes the router id.
    for (bad, wants) in [
        (
            good.to_string().replace("services:", "services: [[["),
            "is not valid",
        ),
        (
            good.clone()
                .announcer("router_id", "10.255.0.9")
                .to_string(),
            "announcer.router_id changed: that needs a restart",
        ),
    ] {
        d.rewrite_config(&bad);
        let out = d.cli(&["reload", "--socket", socket]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(wants), "{err}");
        let m = prom::parse(&d.metrics_text());
        assert_eq!(
            prom::value(&m, "anycastd_config_last_reload_successful", &[]),
            Some(0.0)
        );
        assert_eq!(status(lab.metrics)["reload"]["ok"], false);
    }
    // SIGHUP with the bad file: logged, nothing changes, the daemon runs on.
    d.signal("HUP");
    wait_until("the refused reload in the log", CHANGE, || {
        d.log().matches("config reload refused").count() >= 3
    });
    assert_eq!(monitor.events(p).len(), 1);
    assert_eq!(monitor.events(p)[0].at, first.at);
    assert!(lab.router.rib_prefixes().contains(p));

    // A file that parses but is not valid still says where the daemon is: `status` and
    // `drain` reach it (it runs the config it loaded before), with a warning, and without
    // --socket. An emergency drain must not wait for the file to be fixed.
    d.rewrite_config(
        &base
            .service(http_service("web", &target.url()).set("check_interval", "1ms"))
            .to_string(),
    );
    for args in [&["status"][..], &["drain", "web"], &["undrain", "web"]] {
        let out = d.cli(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(
            err.contains("warning: config file")
                && err.contains("check_interval")
                && err.contains("asking it at"),
            "{args:?}: {err}"
        );
    }
    assert!(d.log().contains("drained by command"), "{}", d.log());
}

#[test]
fn signals_that_must_not_kill_and_sigquit_that_stops_gracefully() {
    let lab = Lab::new();
    let monitor = lab.router.monitor();
    let target = HttpTarget::start();
    let p = "192.0.2.117/32";
    let mut d = lab.start(
        &config(&lab, "1s")
            .routes(&[p])
            .service(http_service("web", &target.url())),
    );
    monitor.wait_for(p, "the announcement", SESSION, |e| !e.withdrawal);
    for sig in [
        "USR1", "USR2", "PIPE", "ALRM", "PROF", "VTALRM", "PWR", "RTMIN+3",
    ] {
        d.signal(sig);
    }
    wait_until("the ignored signals in the log", CHANGE, || {
        d.log().matches("signal ignored").count() >= 7
    });
    assert!(d.is_running(), "{}", d.log());
    assert_eq!(monitor.events(p).len(), 1, "{:#?}", monitor.events(p));

    let status = d.signal_and_wait("QUIT", Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", d.log());
    // Drained first, withdrawn after the linger, before the exit.
    let drained = monitor.wait_for(p, "GRACEFUL_SHUTDOWN", CHANGE, has_gshut);
    let withdrawn = monitor.wait_for(p, "the withdraw", CHANGE, |e| e.withdrawal);
    assert!(withdrawn.at.duration_since(drained.at) >= Duration::from_millis(900));
}

#[test]
fn a_second_sigterm_withdraws_at_once() {
    let lab = Lab::new();
    let monitor = lab.router.monitor();
    let target = HttpTarget::start();
    let p = "192.0.2.118/32";
    let mut d = lab.start(
        &config(&lab, "30s")
            .routes(&[p])
            .service(http_service("web", &target.url())),
    );
    monitor.wait_for(p, "the announcement", SESSION, |e| !e.withdrawal);
    d.signal("TERM");
    monitor.wait_for(p, "GRACEFUL_SHUTDOWN", CHANGE, has_gshut);
    let second = Instant::now();
    let status = d.signal_and_wait("TERM", Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{}", d.log());
    let w = monitor.wait_for(p, "the withdraw", CHANGE, |e| e.withdrawal);
    assert!(w.at.duration_since(second) < Duration::from_secs(1));
}

#[test]
fn the_control_socket_survives_garbage_and_silence() {
    let lab = Lab::new();
    let target = HttpTarget::start();
    let p = "192.0.2.119/32";
    let d = lab.start(&config(&lab, "1s").service(http_service("web", &target.url()).routes(&[p])));
    lab.wait(p, true, SESSION);
    let socket = lab.socket();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);

    // Clients that connect and say nothing, more than the daemon serves at once.
    let silent: Vec<UnixStream> = (0..20)
        .map(|_| UnixStream::connect(&socket).expect("connect"))
        .collect();
    // Garbage gets an error reply.
    let mut g = UnixStream::connect(&socket).expect("connect");
    g.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    g.write_all(b"\x00\xffnot json\n").expect("write");
    let mut reply = String::new();
    let _ = g.read_to_string(&mut reply);
    assert!(reply.contains("\"ok\":false"), "{reply}");
    // The silent ones are cut after their time, and a drain gets through meanwhile or
    // right after: the daemon itself never waits for them.
    let asked = Instant::now();
    let out = d.cli(&["drain", "web"]);
    let took = asked.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        assert!(text.contains("drained web"), "{text}");
    } else {
        // All slots taken by the silent clients: told so at once, not left hanging.
        assert!(err.contains("busy"), "{err}");
        wait_until("a drain once the silent clients are cut", CHANGE, || {
            d.cli(&["drain", "web"]).status.success()
        });
    }
    assert!(took < Duration::from_secs(2), "{took:?}");
    lab.wait(p, false, CHANGE);
    // The routes and the rounds went on all along.
    assert!(d.log().contains("check passed") || d.log().contains("service is up"));
    drop(silent);
}

/// The daemon as a library: run in this process, driven through its `Handle`.
#[test]
fn the_daemon_runs_in_process_and_obeys_its_handle() {
    use anycastd::announcer::Stop;
    use anycastd::runtime::commands::{Done, Handle, Refused};
    use anycastd::runtime::daemon;
    use anycastd::runtime::drain::Selection;
    let lab = Lab::new();
    let monitor = lab.router.monitor();
    let target = HttpTarget::start();
    let p = "192.0.2.120/32";
    let text = config(&lab, "1s").service(http_service("web", &target.url()).routes(&[p]));
    let path = lab.dir.path().join("in-process.yaml");
    std::fs::write(&path, text.to_string()).expect("write config");
    let cfg = anycastd::config::load(&path).expect("valid").config;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (handle, commands) = Handle::new();
    let daemon = rt.spawn(async move { daemon::run(cfg, &path, commands).await });
    monitor.wait_for(p, "the announcement", SESSION, |e| !e.withdrawal);
    let web = Selection::Services(vec!["web".into()]);
    let reply = rt.block_on(handle.drain(web.clone(), false));
    let Ok(Done::Drained(drained)) = &reply else {
        panic!("a drain: {reply:?}")
    };
    assert_eq!((&drained.what, drained.unchanged), (&web, false));
    assert!(reply.is_ok_and(|r| r.to_string().starts_with("drained web")));
    monitor.wait_for(p, "GRACEFUL_SHUTDOWN", CHANGE, has_gshut);
    let unknown = rt.block_on(handle.drain(Selection::Services(vec!["nope".into()]), false));
    let Err(Refused::Unknown(u)) = &unknown else {
        panic!("unknown services: {unknown:?}")
    };
    assert_eq!(
        (&u.unknown[..], &u.known[..]),
        (&["nope".to_string()][..], &["web".to_string()][..])
    );
    rt.block_on(handle.stop(Stop::Now));
    let ended = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), daemon).await })
        .expect("stopped in time")
        .expect("no panic");
    assert!(ended.is_ok(), "{ended:?}");
    monitor.wait_for(p, "the withdraw", CHANGE, |e| e.withdrawal);
}

/// A reload that moves a service's route: the new one is announced, the old one leaves
/// gracefully (the gate and the announcer's routes change one after the other; the route
/// must not be withdrawn abruptly in between).
/// Issue 20: a reload during a slow write applied the valid first half of the file, which
/// removed a service (GRACEFUL_SHUTDOWN, then the withdraw) that the finished file still
/// had. The file is read until two reads agree.
#[test]
fn a_reload_during_a_slow_write_waits_for_the_whole_file() {
    let lab = Lab::new();
    let monitor = lab.router.monitor();
    let target = HttpTarget::start();
    let (p1, p2) = ("192.0.2.123/32", "192.0.2.124/32");
    let whole = config(&lab, "1s")
        .service(http_service("web", &target.url()).routes(&[p1]))
        .service(http_service("dns", &target.url()).routes(&[p2]));
    let d = lab.start(&whole);
    let whole = whole.to_string();
    monitor.wait_for(p2, "the announcement", SESSION, |e| !e.withdrawal);
    // The same file written again in two parts, 150 ms apart; the first part alone is a
    // valid config without dns. The reload comes between them.
    let cut = whole.find("  - name: dns").expect("the second service");
    let path = lab.dir.path().join("anycastd.yaml");
    let mut f = std::fs::File::create(&path).expect("truncate the config");
    f.write_all(&whole.as_bytes()[..cut]).expect("first part");
    f.sync_all().expect("sync");
    d.signal("HUP");
    std::thread::sleep(Duration::from_millis(150));
    f.write_all(&whole.as_bytes()[cut..]).expect("second part");
    drop(f);
    wait_until("the reload", CHANGE, || d.log().contains("config reloaded"));
    wait_rounds(&lab, 8);
    let events = monitor.events(p2);
    assert_eq!(
        events.len(),
        1,
        "dns's route was touched: {events:#?}\n{}",
        d.log()
    );
    assert!(!d.log().contains("removed dns"), "{}", d.log());
}

/// Issue 20: a route that a reload removes and the next reload adds back, while it still
/// lingers, is announced again in place: no withdraw and announce 2 ms apart.
#[test]
fn a_route_removed_and_added_back_is_restored_in_place() {
    let lab = Lab::new();
    let monitor = lab.router.monitor();
    let target = HttpTarget::start();
    let (p1, p2) = ("192.0.2.125/32", "192.0.2.126/32");
    let both = config(&lab, "5s")
        .service(http_service("web", &target.url()).routes(&[p1]))
        .service(http_service("dns", &target.url()).routes(&[p2]));
    let d = lab.start(&both);
    monitor.wait_for(p2, "the announcement", SESSION, |e| !e.withdrawal);
    d.rewrite_config(
        &config(&lab, "5s")
            .service(http_service("web", &target.url()).routes(&[p1]))
            .to_string(),
    );
    ok(&d.cli(&["reload"]));
    monitor.wait_for(
        p2,
        "GRACEFUL_SHUTDOWN on the removed route",
        CHANGE,
        has_gshut,
    );
    d.rewrite_config(&both.to_string());
    ok(&d.cli(&["reload"]));
    let back = monitor.wait_for(
        p2,
        "the route back without GRACEFUL_SHUTDOWN",
        CHANGE,
        |e| !e.withdrawal && !has_gshut(e),
    );
    // Past the first linger's end: still announced, never withdrawn.
    wait_until("the first linger over", CHANGE, || {
        back.at.elapsed() > Duration::from_secs(6)
    });
    let events = monitor.events(p2);
    assert!(events.iter().all(|e| !e.withdrawal), "{events:#?}");
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_eq!(status(lab.metrics)["services"][1]["state"], "up");
}

#[test]
fn a_reload_that_moves_a_route_drains_the_old_one() {
    let lab = Lab::new();
    let monitor = lab.router.monitor();
    let target = HttpTarget::start();
    let (old, new) = ("192.0.2.121/32", "192.0.2.122/32");
    let d =
        lab.start(&config(&lab, "1s").service(http_service("web", &target.url()).routes(&[old])));
    monitor.wait_for(old, "the announcement", SESSION, |e| !e.withdrawal);
    d.rewrite_config(
        &config(&lab, "1s")
            .service(http_service("web", &target.url()).routes(&[new]))
            .to_string(),
    );
    ok(&d.cli(&["reload"]));
    monitor.wait_for(new, "the new route", CHANGE, |e| !e.withdrawal);
    let drained = monitor.wait_for(old, "GRACEFUL_SHUTDOWN on the old route", CHANGE, has_gshut);
    let gone = monitor.wait_for(old, "the old route's withdraw", CHANGE, |e| e.withdrawal);
    assert!(gone.at.duration_since(drained.at) >= Duration::from_millis(900));
    assert!(d.log().contains("removed from the config"), "{}", d.log());
}

/// Issue 20: the series of a watch that a reload removed stayed in `/metrics`.
#[test]
fn a_reload_that_removes_a_watch_removes_its_series() {
    let lab = Lab::new();
    let target = HttpTarget::start();
    let p = "192.0.2.127/32";
    let watched = |w: bool| {
        let s = http_service("web", &target.url()).routes(&[p]);
        let s = if w {
            s.watch("tcp", target.addr().to_string())
        } else {
            s
        };
        config(&lab, "1s").service(s)
    };
    let d = lab.start(&watched(true));
    lab.wait(p, true, SESSION);
    let label = format!("watch=\"tcp:{}\"", target.addr());
    wait_until("the watch's series", CHANGE, || {
        d.metrics_text().contains(&label)
    });
    d.rewrite_config(&watched(false).to_string());
    ok(&d.cli(&["reload"]));
    assert!(!d.metrics_text().contains(&label), "{}", d.metrics_text());
    // Back with the next reload.
    d.rewrite_config(&watched(true).to_string());
    ok(&d.cli(&["reload"]));
    wait_until("the watch's series again", CHANGE, || {
        d.metrics_text().contains(&label)
    });
}

/// SPEC 19 (issue 23.2): after a service comes back, `/status`, `anycastd status` and the
/// metrics still say why its route went away: the prefix's state, since when and why, its
/// last transitions, `anycastd_route_state` and `anycastd_check_failures_total`.
#[test]
fn a_route_that_went_away_says_why_after_it_is_back() {
    let lab = Lab::new();
    let mut target = HttpTarget::start();
    let p = "192.0.2.116/32";
    let d = lab.start(&config(&lab, "0s").service(http_service("web", &target.url()).routes(&[p])));
    lab.wait(p, true, SESSION);
    let state = |s: &str| d.sample("anycastd_route_state", &[("prefix", p), ("state", s)]);
    wait_until("anycastd_route_state up", CHANGE, || {
        state("up") == Some(1.0)
    });
    let check = status(lab.metrics)["services"][0]["checks"][0]["name"]
        .as_str()
        .expect("a check name")
        .to_string();
    let failures = || {
        d.sample(
            "anycastd_check_failures_total",
            &[("service", "web"), ("check", check.as_str())],
        )
    };
    assert_eq!(failures(), Some(0.0));

    target.stop();
    lab.wait(p, false, CHANGE);
    wait_until("anycastd_route_state withdrawn", CHANGE, || {
        state("withdrawn") == Some(1.0)
    });
    assert_eq!(
        (state("up"), state("degraded"), state("draining")),
        (Some(0.0), Some(0.0), Some(0.0))
    );
    target.restart();
    lab.wait(p, true, CHANGE);
    wait_until("anycastd_route_state up again", CHANGE, || {
        state("up") == Some(1.0)
    });
    let s = status(lab.metrics);
    // At least `fall` failed runs took it down.
    let fall = s["services"][0]["fall"].as_f64().expect("fall");
    assert!(
        failures().is_some_and(|n| n >= fall),
        "{:?} < {fall}",
        failures()
    );

    let prefix = &s["prefixes"][0];
    // The first announcement comes from the change, or from the first reconcile after
    // connecting when the service came up first: neither is a repair of gobgpd, and
    // neither says `reconcile:` (the first reconcile's said `reconcile: service web is up`).
    let history: Vec<(String, String, String)> = prefix["history"]
        .as_array()
        .expect("a history")
        .iter()
        .map(|t| {
            (
                t["from"].as_str().unwrap_or("?").to_string(),
                t["to"].as_str().unwrap_or("?").to_string(),
                t["reason"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    let t = |from: &str, to: &str, reason: &str| (from.into(), to.into(), reason.into());
    assert_eq!(
        history,
        [
            t("withdrawn", "up", "service web is up"),
            t("up", "withdrawn", "service web is down"),
            t("withdrawn", "up", "service web is up"),
        ],
        "{prefix:#}"
    );
    assert_eq!(prefix["state"], "up");
    assert_eq!(prefix["cause"], "service web is up");
    assert_eq!(prefix["since"], prefix["history"][2]["at"]);

    // `anycastd status`: the transitions, oldest first, with the time of each.
    let text = ok(&d.cli(&["status"]));
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip_while(|l| !l.starts_with("TIME "))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    let times: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(
        rows.iter().map(|r| r[1..].join(" ")).collect::<Vec<_>>(),
        [
            format!("{p} withdrawn up service web is up"),
            format!("{p} up withdrawn service web is down"),
            format!("{p} withdrawn up service web is up"),
        ],
        "{text}"
    );
    assert_eq!(
        times,
        prefix["history"]
            .as_array()
            .expect("a history")
            .iter()
            .map(|t| t["at"].as_str().unwrap_or("?"))
            .collect::<Vec<_>>()
    );

    // Issue 23.7, the log (at DEBUG here, with a reconcile every second): a passing check
    // says how long it took; `peer already configured` is said once, not at every
    // reconcile; the first session of a start has no `from=none`.
    let log = d.log();
    let passed: Vec<&str> = log.lines().filter(|l| l.contains("check passed")).collect();
    assert!(!passed.is_empty(), "{log}");
    assert!(
        passed.iter().all(|l| l.contains(" duration=")),
        "{passed:#?}"
    );
    assert!(log.matches("peer already configured").count() <= 1, "{log}");
    let established: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("BGP session established"))
        .collect();
    assert!(!established.is_empty(), "{log}");
    assert!(
        established.iter().all(|l| !l.contains("from=none")),
        "{established:#?}"
    );
}

/// SPEC 19 (issue 23.3): `anycastd reload` of a file that does not parse (what `systemctl
/// reload` runs) is not refused by the client alone: it finds the daemon through the
/// file's `control:` lines all the same, and the daemon refuses it, so that its log says
/// ERROR, `anycastd_config_last_reload_successful` turns 0 and `status` shows the attempt.
#[test]
fn a_reload_of_a_file_that_does_not_parse_reaches_the_daemon() {
    let lab = Lab::new();
    let target = HttpTarget::start();
    let p = "192.0.2.117/32";
    let good = config(&lab, "1s").service(http_service("web", &target.url()).routes(&[p]));
    let d = lab.start(&good);
    lab.wait(p, true, SESSION);
    assert_eq!(
        d.sample("anycastd_config_last_reload_successful", &[]),
        Some(1.0)
    );

    d.rewrite_config(&format!("{good}services: [not a list\n"));
    let out = d.cli(&["reload"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    // The daemon's answer, once (not the client's own refusal before it).
    assert!(err.starts_with("anycastd: config file "), "{err}");
    assert_eq!(err.matches("is not valid").count(), 1, "{err}");
    assert!(!err.contains("give it with --socket"), "{err}");
    assert!(
        d.log()
            .lines()
            .any(|l| l.contains("ERROR") && l.contains("config reload refused")),
        "{}",
        d.log()
    );
    assert_eq!(
        d.sample("anycastd_config_last_reload_successful", &[]),
        Some(0.0)
    );
    let s = status(lab.metrics);
    assert_eq!(s["reload"]["ok"], false, "{:#}", s["reload"]);
    // (The file names no metrics address that parses.)
    let text = ok(&d.cli(&["status", "--address", &lab.metrics.to_string()]));
    assert!(
        text.lines()
            .any(|l| l.starts_with("last reload ") && l.contains(": REFUSED: config file ")),
        "{text}"
    );
    // Nothing changed.
    assert!(lab.router.rib_prefixes().contains(p));
}

/// The first reconcile of anycastd's life announces what the services say: a service up
/// before gobgpd could be reached is announced with its own reason, not as a repair of
/// gobgpd (`reconcile: service web is up`, which every such start said).
#[test]
fn the_first_announcement_is_not_called_a_repair() {
    let mut lab = Lab::new();
    let target = HttpTarget::start();
    let p = "192.0.2.116/32";
    lab.speaker.stop();
    let d = lab.start(&config(&lab, "1s").service(http_service("web", &target.url()).routes(&[p])));
    wait_until("the service up while gobgpd is away", CHANGE, || {
        try_status(lab.metrics).is_some_and(|s| s["services"][0]["state"] == "up")
    });
    lab.speaker.restart();
    lab.wait(p, true, SESSION);
    let log = d.log();
    let announced: Vec<&str> = log.lines().filter(|l| l.contains(" announced ")).collect();
    assert!(
        announced
            .first()
            .is_some_and(|l| l.contains("reason=\"service web is up\"")),
        "{announced:#?}"
    );
}
