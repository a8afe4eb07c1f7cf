//! `icmp_ping`: sends `tries` echo requests `interval` apart, each waiting `timeout` for its
//! reply; passes if the loss is at most `max_loss_percent`.
//!
//! The host is resolved at every run when it is a name. The ICMP sockets (one per address
//! family, opened at the first run that needs it) belong to the check and live as long as
//! it: surge-ping tries a datagram ICMP socket first (unprivileged, where
//! `net.ipv4.ping_group_range` allows it) and falls back to a raw socket (root or
//! CAP_NET_RAW). Each run uses a fresh identifier and fresh sequence numbers, so a late
//! reply to an earlier run is never taken for a reply to this one, and only echo replies
//! count: an ICMP error (destination unreachable, time exceeded) is a loss, and says so.
//!
//! Metrics, labels `{service, check, host}`: the RTT figures and the loss of the last run,
//! and the totals of requests sent and replies received.
//!
//! This file is the kind's prober; its spec is `config/checks/icmp_ping.rs`.

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use metrics::{Counter, Gauge};
use surge_ping::{Client, Config, ICMP, IcmpPacket, PingIdentifier, PingSequence, SurgeError};
use tokio::time::Instant;

use super::probe::{AttemptFuture, Check, CheckContext, Failure, soft_deadline};
use super::resolve;
use crate::config::checks::icmp_ping::Spec;
use crate::duration::Dur;
use crate::metrics::{Metrics, names};

/// Bytes of payload in each echo request (as `ping` sends by default).
const PAYLOAD: [u8; 56] = [0x61; 56];

/// The prober of `spec`.
pub fn build(spec: &Spec, ctx: &CheckContext) -> Result<Box<dyn Check>, String> {
    Ok(Box::new(IcmpPing::new(spec, ctx, None)))
}

struct IcmpPing {
    host: String,
    pings: u16,
    interval: Duration,
    timeout: Duration,
    /// The attempt's timeout: the whole series must end before it.
    budget: Duration,
    max_loss_percent: f64,
    /// SO_BINDTODEVICE for the sockets; only tests set it (to send into `lo`).
    device: Option<String>,
    /// The check's ICMP clients, IPv4 and IPv6, opened at first use.
    clients: Mutex<(Option<Client>, Option<Client>)>,
    /// The next sequence number: runs never reuse one another's.
    next_seq: AtomicU16,
    metrics: IcmpMetrics,
}

impl IcmpPing {
    fn new(spec: &Spec, ctx: &CheckContext, device: Option<String>) -> IcmpPing {
        IcmpPing {
            host: spec.target.host.trim().to_string(),
            pings: u16::try_from(spec.tries).unwrap_or(u16::MAX),
            interval: spec.interval.0,
            timeout: spec.timeout.0,
            budget: spec.series().worst_case(),
            max_loss_percent: spec.max_loss_percent,
            device,
            clients: Mutex::new((None, None)),
            next_seq: AtomicU16::new(0),
            metrics: IcmpMetrics::new(&ctx.metrics, &ctx.service, &ctx.check, &spec.target.host),
        }
    }

    /// The check's client for the family of `ip`, opened now if it is not yet.
    fn client(&self, ip: IpAddr) -> Result<Client, String> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let slot = if ip.is_ipv4() {
            &mut clients.0
        } else {
            &mut clients.1
        };
        if let Some(c) = slot {
            return Ok(c.clone());
        }
        let kind = if ip.is_ipv4() { ICMP::V4 } else { ICMP::V6 };
        let mut config = Config::builder().kind(kind);
        if let Some(d) = &self.device {
            config = config.interface(d);
        }
        let c = Client::new(&config.build()).map_err(|e| socket_error(ip, &e))?;
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn probe(&self) -> Result<(), Failure> {
        let start = Instant::now();
        // The budget (tries x timeout + ...) saturates for absurd configs: cap the deadline
        // instead of overflowing the Instant.
        let deadline = start
            .checked_add(soft_deadline(self.budget))
            .unwrap_or(start + crate::config::MAX_DURATION);
        let result = self.series(deadline).await;
        let stats = match &result {
            Ok((_, replies)) => Stats::of(replies),
            // Nothing went out (no address, no socket): all of the series is lost.
            Err(_) => Stats::unsent(self.pings),
        };
        self.metrics.record(&stats);
        let (ip, replies) = result.map_err(|m| Failure(format!("{}: {m}", self.host)))?;
        if stats.loss_percent() <= self.max_loss_percent {
            return Ok(());
        }
        let who = if self.host == ip.to_string() {
            self.host.clone()
        } else {
            format!("{} ({ip})", self.host)
        };
        let mut reasons: Vec<String> = Vec::new();
        for r in replies.iter().filter_map(|r| r.as_ref().err()) {
            if !reasons.contains(r) {
                reasons.push(r.clone());
            }
        }
        Err(Failure(format!(
            "{who}: {} of {} echo requests lost ({}% loss, at most {}% allowed): {}",
            stats.planned - stats.received,
            stats.planned,
            round2(stats.loss_percent()),
            self.max_loss_percent,
            reasons.join("; ")
        )))
    }

    /// Resolves the host and sends the series; each reply is its RTT or why it is lost.
    async fn series(
        &self,
        deadline: Instant,
    ) -> Result<(IpAddr, Vec<Result<Duration, String>>), String> {
        let ip = resolve::first_address(&self.host, self.timeout, deadline).await?;
        let client = self.client(ip)?;
        let ident = next_ident();
        let first = self.next_seq.fetch_add(self.pings, Ordering::Relaxed);
        let sent = Instant::now();
        let pings = (0..self.pings).map(|i| {
            let client = client.clone();
            async move {
                tokio::time::sleep_until(sent + self.interval * u32::from(i)).await;
                // Each reply waits `timeout`, but the series ends by its deadline.
                let wait = self
                    .timeout
                    .min(deadline.saturating_duration_since(Instant::now()));
                let mut pinger = client.pinger(ip, ident).await;
                pinger.timeout(wait);
                let seq = PingSequence(first.wrapping_add(i));
                match pinger.ping(seq, &PAYLOAD).await {
                    Ok((packet, rtt)) => echo_reply(&packet).map(|()| rtt),
                    Err(SurgeError::Timeout { .. }) => {
                        Err(format!("no reply within {}", Dur(wait)))
                    }
                    Err(SurgeError::IOError(e)) => Err(format!("cannot send: {e}")),
                    Err(e) => Err(e.to_string()),
                }
            }
        });
        Ok((ip, futures_util::future::join_all(pings).await))
    }
}

impl Check for IcmpPing {
    fn attempt(&self) -> AttemptFuture<'_> {
        Box::pin(self.probe())
    }
}

/// `Ok` for an echo reply; an ICMP error about our request, in words.
fn echo_reply(packet: &IcmpPacket) -> Result<(), String> {
    let (kind, code, from) = match packet {
        IcmpPacket::V4(p) => match p.get_icmp_type().0 {
            0 => return Ok(()),
            3 => (
                "destination unreachable",
                p.get_icmp_code().0,
                p.get_source().to_string(),
            ),
            11 => (
                "time exceeded",
                p.get_icmp_code().0,
                p.get_source().to_string(),
            ),
            t => return Err(format!("unexpected ICMP type {t} from {}", p.get_source())),
        },
        IcmpPacket::V6(p) => match p.get_icmpv6_type().0 {
            129 => return Ok(()),
            1 => (
                "destination unreachable",
                p.get_icmpv6_code().0,
                p.get_source().to_string(),
            ),
            3 => (
                "time exceeded",
                p.get_icmpv6_code().0,
                p.get_source().to_string(),
            ),
            t => {
                return Err(format!(
                    "unexpected ICMPv6 type {t} from {}",
                    p.get_source()
                ));
            }
        },
    };
    Err(format!("{kind} (code {code}) from {from}"))
}

/// Why an ICMP socket could not be opened, with what to do about it.
fn socket_error(ip: IpAddr, e: &std::io::Error) -> String {
    let (v, proto) = if ip.is_ipv4() {
        ("ipv4", "ICMP")
    } else {
        ("ipv6", "ICMPv6")
    };
    let first = e.to_string();
    let first = first.lines().last().unwrap_or_default().trim();
    format!(
        "cannot open an {proto} socket ({first}): run anycastd as root or with CAP_NET_RAW \
         (raw socket), or allow datagram ICMP for its group with \
         sysctl net.{v}.ping_group_range (on Linux, ipv4's range covers IPv6 too)"
    )
}

/// An identifier per run: the process id, so that two daemons differ, plus a counter, so
/// that two runs (and two checks) of this one do.
fn next_ident() -> PingIdentifier {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // Truncating the pid is fine: it only spreads identifiers apart.
    let pid = std::process::id() as u16;
    PingIdentifier(pid.wrapping_add(n.wrapping_mul(0x9e37)))
}

/// The figures of one run.
#[derive(Debug, Clone, PartialEq)]
struct Stats {
    /// Echo requests the run planned; the loss is counted against these.
    planned: u64,
    /// Echo requests that went out.
    sent: u64,
    received: u64,
    min: Duration,
    max: Duration,
    avg: Duration,
    std_dev: Duration,
}

impl Stats {
    fn of(replies: &[Result<Duration, String>]) -> Stats {
        let rtts: Vec<f64> = replies
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(Duration::as_secs_f64)
            .collect();
        let sent = replies.len() as u64;
        let received = rtts.len() as u64;
        if rtts.is_empty() {
            return Stats {
                sent,
                ..Stats::unsent(u16::try_from(sent).unwrap_or(u16::MAX))
            };
        }
        let n = rtts.len() as f64;
        let avg = rtts.iter().sum::<f64>() / n;
        let var = rtts.iter().map(|r| (r - avg).powi(2)).sum::<f64>() / n;
        let min = rtts.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rtts.iter().copied().fold(0.0, f64::max);
        let secs = |s: f64| Duration::try_from_secs_f64(s).unwrap_or_default();
        Stats {
            planned: sent,
            sent,
            received,
            min: secs(min),
            max: secs(max),
            avg: secs(avg),
            std_dev: secs(var.sqrt()),
        }
    }

    /// A run of which no request went out.
    fn unsent(pings: u16) -> Stats {
        Stats {
            planned: u64::from(pings),
            sent: 0,
            received: 0,
            min: Duration::ZERO,
            max: Duration::ZERO,
            avg: Duration::ZERO,
            std_dev: Duration::ZERO,
        }
    }

    fn loss_percent(&self) -> f64 {
        if self.planned == 0 {
            return 100.0;
        }
        self.planned.saturating_sub(self.received) as f64 * 100.0 / self.planned as f64
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The check's series, registered at build so that they show before the first run.
struct IcmpMetrics {
    avg: Gauge,
    min: Gauge,
    max: Gauge,
    std_dev: Gauge,
    loss: Gauge,
    sent: Counter,
    received: Counter,
    duplicates: Counter,
}

impl IcmpMetrics {
    fn new(m: &Metrics, service: &str, check: &str, host: &str) -> IcmpMetrics {
        let l = [("service", service), ("check", check), ("host", host)];
        IcmpMetrics {
            avg: m.gauge(names::CHECK_AVG_RTT, &l),
            min: m.gauge(names::CHECK_MIN_RTT, &l),
            max: m.gauge(names::CHECK_MAX_RTT, &l),
            std_dev: m.gauge(names::CHECK_STD_DEV_RTT, &l),
            loss: m.gauge(names::CHECK_LOSS, &l),
            sent: m.counter(names::CHECK_PACKETS_SENT, &l),
            received: m.counter(names::CHECK_PACKETS_RECEIVED, &l),
            duplicates: m.counter(names::CHECK_PACKETS_DUPLICATES, &l),
        }
    }

    /// A run's figures. Requests that never went out (no address, no socket) count as
    /// lost but not as sent.
    fn record(&self, s: &Stats) {
        self.avg.set(s.avg.as_secs_f64());
        self.min.set(s.min.as_secs_f64());
        self.max.set(s.max.as_secs_f64());
        self.std_dev.set(s.std_dev.as_secs_f64());
        self.loss.set(s.loss_percent());
        self.sent.increment(s.sent);
        self.received.increment(s.received);
        // Registered so the series exists; surge-ping drops duplicates before we see them.
        self.duplicates.increment(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::checks::attempts::KindSpec;
    use crate::config::checks::icmp_ping::StaticTarget;

    fn spec(host: &str, tries: u32, max_loss_percent: f64) -> Spec {
        Spec {
            target: StaticTarget {
                host: host.to_string(),
            },
            tries,
            interval: Dur(Duration::from_millis(50)),
            timeout: Dur(Duration::from_millis(300)),
            max_loss_percent,
        }
    }

    fn ctx() -> CheckContext {
        CheckContext {
            service: "svc".to_string(),
            check: "ping".to_string(),
            metrics: Metrics::new(),
        }
    }

    #[test]
    fn stats_of_a_partly_lost_series() {
        let ms = Duration::from_millis;
        let s = Stats::of(&[Ok(ms(1)), Err("lost".into()), Ok(ms(3)), Ok(ms(2))]);
        assert_eq!((s.planned, s.sent, s.received), (4, 4, 3));
        assert_eq!(s.loss_percent(), 25.0);
        assert_eq!((s.min, s.avg, s.max), (ms(1), ms(2), ms(3)));
        let sd = s.std_dev.as_secs_f64();
        assert!((sd - 0.000_816).abs() < 0.000_01, "{sd}");
        let none = Stats::unsent(3);
        assert_eq!((none.sent, none.loss_percent()), (0, 100.0));
    }

    #[test]
    fn tries_beyond_a_sequence_number_space_are_rejected() {
        let p = spec("127.0.0.1", 70_000, 0.0).validate();
        assert!(p.iter().any(|p| p.path == "tries"), "{p:?}");
        let p = spec("127.0.0.1", 0, 0.0).validate();
        assert!(p.iter().any(|p| p.path == "tries"), "{p:?}");
    }

    /// 192.0.2.1 sent into `lo` is dropped by the kernel: every request is lost, each
    /// after its timeout, and the series ends within the attempt's budget.
    #[tokio::test]
    async fn a_silent_host_is_full_loss_within_the_budget() {
        let s = spec("192.0.2.1", 3, 50.0);
        let c = ctx();
        let ping = IcmpPing::new(&s, &c, Some("lo".to_string()));
        let start = std::time::Instant::now();
        let r = ping.probe().await;
        let took = start.elapsed();
        let Err(Failure(msg)) = r else {
            panic!("must fail: {r:?}")
        };
        assert!(
            msg.contains("3 of 3 echo requests lost") && msg.contains("no reply within"),
            "{msg}"
        );
        assert!(took < s.series().worst_case(), "took {took:?}");
        let text = c.metrics.render();
        assert!(
            text.contains(
                "anycastd_check_loss_percent{service=\"svc\",check=\"ping\",host=\"192.0.2.1\"} 100"
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn max_loss_percent_is_the_threshold() {
        let s = spec("192.0.2.1", 2, 100.0);
        let ping = IcmpPing::new(&s, &ctx(), Some("lo".to_string()));
        assert!(ping.probe().await.is_ok(), "100% loss allowed must pass");
    }
}
