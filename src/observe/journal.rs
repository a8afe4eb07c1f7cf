//! The systemd journal (SPEC 19). Under systemd, stderr is a stream that journald reads,
//! and every line of it lands at one priority (info): `journalctl -p warning` showed
//! nothing, or everything. When `JOURNAL_STREAM` names anycastd's stderr, the log lines go
//! to journald's native socket instead, each as one entry with
//! - `PRIORITY`: 3 errors, 4 problems, 5 route and state changes ([`crate::priority`]), 6
//!   INFO, 7 DEBUG and TRACE;
//! - `MESSAGE`: the line as stderr shows it, without the timestamp and level the journal
//!   has of its own (`announced prefix=192.0.2.53/32 attributes=up reason="service dns is
//!   up"`);
//! - each field of the event as a journal field of its own, named in capitals (`SERVICE`,
//!   `CHECK`, `PREFIX`, `PEER`, `REASON`, `ERROR`, ...), so that `journalctl -u anycastd
//!   PREFIX=192.0.2.53/32` lists one prefix's lines; and `CODE_FILE`, `CODE_LINE`,
//!   `TARGET`, `SYSLOG_IDENTIFIER=anycastd`.
//!
//! Why not the `tracing-journald` crate: it sends only the event's message as `MESSAGE`
//! (tokio-rs/tracing#2051), so `journalctl -u anycastd` would print `withdrawn` with
//! neither the prefix nor the reason, and it takes the priority from the level alone, while
//! route changes are WARN events (the seed's default level shows them) of priority 5. The
//! native protocol (<https://systemd.io/JOURNAL_NATIVE_PROTOCOL/>) is one datagram per
//! entry.
//!
//! A line the socket refuses (journald restarting) is written to stderr instead, where
//! journald's stream still takes it: nothing is lost.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;

use crate::priority::Priority;

/// journald's socket for the native protocol.
pub const SOCKET: &str = "/run/systemd/journal/socket";

/// The most of one field's value sent when a whole entry is too large for a datagram
/// (a reload's error listing every problem of a large file, say).
const CUT: usize = 16 * 1024;

/// Whether stderr is the stream `JOURNAL_STREAM` names (`DEVICE:INODE`, set by systemd for
/// a unit's stdout and stderr): stderr goes to the journal. A stderr redirected elsewhere
/// (`anycastd 2>file` in a unit's shell) is not the same file, and keeps its lines.
pub fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Ok(named) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = named.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// One log event as the journal gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub priority: Priority,
    /// The line, as the text format writes it after the timestamp and level.
    pub message: String,
    /// Every field but the message: its journal name and its value as text.
    pub fields: Vec<(String, String)>,
    pub target: String,
    pub file: Option<String>,
    pub line: Option<u32>,
}

impl Entry {
    /// The entry of `event`.
    pub fn of(event: &Event<'_>) -> Entry {
        let meta = event.metadata();
        let mut v = Collect::default();
        event.record(&mut v);
        Entry {
            priority: Priority::of(meta.level(), meta.target()),
            message: v.line,
            fields: v.fields,
            target: meta.target().to_string(),
            file: meta.file().map(str::to_string),
            line: meta.line(),
        }
    }

    /// The datagram of the native protocol: `NAME=value` lines, or for a value holding a
    /// newline, `NAME`, its length as 64-bit little-endian, the value and a newline. Each
    /// value is cut to `cut` bytes when given.
    pub fn encode(&self, cut: Option<usize>) -> Vec<u8> {
        let mut buf = Vec::with_capacity(256 + self.message.len());
        let digit = self.priority.digit().to_string();
        put(&mut buf, "PRIORITY", &digit, cut);
        put(&mut buf, "SYSLOG_IDENTIFIER", "anycastd", cut);
        put(&mut buf, "MESSAGE", &self.message, cut);
        for (name, value) in &self.fields {
            put(&mut buf, name, value, cut);
        }
        put(&mut buf, "TARGET", &self.target, cut);
        if let Some(f) = &self.file {
            put(&mut buf, "CODE_FILE", f, cut);
        }
        if let Some(l) = self.line {
            put(&mut buf, "CODE_LINE", &l.to_string(), cut);
        }
        buf
    }
}

/// Appends one field; `value` cut to `cut` bytes (at a character boundary) when given.
fn put(buf: &mut Vec<u8>, name: &str, value: &str, cut: Option<usize>) {
    let value = match cut {
        Some(max) if value.len() > max => {
            let mut end = max;
            while !value.is_char_boundary(end) {
                end -= 1;
            }
            &value[..end]
        }
        _ => value,
    };
    buf.extend_from_slice(name.as_bytes());
    if value.contains('\n') {
        buf.push(b'\n');
        buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        buf.push(b'=');
    }
    buf.extend_from_slice(value.as_bytes());
    buf.push(b'\n');
}

/// A field's name as journald accepts it: capitals, digits and `_`, not starting with `_`
/// or a digit (journald drops the others): `prefix` -> `PREFIX`, `r#type` -> `TYPE`.
pub fn journal_name(field: &str) -> String {
    let name: String = field
        .trim_start_matches("r#")
        .chars()
        .map(|c| match c {
            'a'..='z' => c.to_ascii_uppercase(),
            'A'..='Z' | '0'..='9' => c,
            _ => '_',
        })
        .collect();
    let name = name.trim_start_matches(|c: char| c == '_' || c.is_ascii_digit());
    if name.is_empty() {
        "FIELD".to_string()
    } else {
        name.to_string()
    }
}

/// Reads an event's fields into the text line and the journal's fields, writing the line
/// as tracing-subscriber's text format does: the message bare, then `name=value` with
/// strings quoted and `%`-displayed values bare.
#[derive(Default)]
struct Collect {
    line: String,
    fields: Vec<(String, String)>,
}

impl Collect {
    fn pad(&mut self) {
        if !self.line.is_empty() {
            self.line.push(' ');
        }
    }
}

impl Visit for Collect {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
            return;
        }
        self.pad();
        let _ = write!(
            self.line,
            "{}={value:?}",
            field.name().trim_start_matches("r#")
        );
        self.fields
            .push((journal_name(field.name()), value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.pad();
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.line.push_str(&text);
            return;
        }
        let _ = write!(
            self.line,
            "{}={text}",
            field.name().trim_start_matches("r#")
        );
        self.fields.push((journal_name(field.name()), text));
    }
}

/// The layer that sends each event to journald.
pub struct Journal {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Journal {
    /// A socket to journald at `path` ([`SOCKET`]); an error when nothing listens there (an
    /// empty datagram, which journald ignores, is sent to find out).
    pub fn connect(path: &Path) -> std::io::Result<Journal> {
        let socket = UnixDatagram::unbound()?;
        socket.send_to(&[], path)?;
        Ok(Journal {
            socket,
            path: path.to_path_buf(),
        })
    }

    /// Sends `entry`; an entry too large for one datagram goes with its values cut.
    pub fn send(&self, entry: &Entry) -> std::io::Result<()> {
        match self.socket.send_to(&entry.encode(None), &self.path) {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::MSGSIZE.raw_os_error()) => self
                .socket
                .send_to(&entry.encode(Some(CUT)), &self.path)
                .map(drop),
            other => other.map(drop),
        }
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for Journal {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let entry = Entry::of(event);
        if self.send(&entry).is_err() {
            // journald's stream still takes stderr's lines (at priority info).
            let _ = writeln!(std::io::stderr().lock(), "{}", entry.message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    /// Keeps the entries of the events it sees.
    #[derive(Clone, Default)]
    struct Keep(Arc<Mutex<Vec<Entry>>>);

    impl<S: Subscriber> tracing_subscriber::Layer<S> for Keep {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            if let Ok(mut v) = self.0.lock() {
                v.push(Entry::of(event));
            }
        }
    }

    /// What tracing-subscriber's text format writes to a buffer, without time and level.
    #[derive(Clone, Default)]
    struct Text(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Text {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut v) = self.0.lock() {
                v.extend_from_slice(b);
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn both(log: impl FnOnce()) -> (Vec<Entry>, String) {
        let keep = Keep::default();
        let text = Text::default();
        let writer = text.clone();
        let fmt = tracing_subscriber::fmt::layer()
            .without_time()
            .with_level(false)
            .with_target(false)
            .with_ansi(false)
            .with_writer(move || writer.clone());
        let subscriber = tracing_subscriber::registry().with(keep.clone()).with(fmt);
        tracing::subscriber::with_default(subscriber, log);
        let entries = keep.0.lock().map(|v| v.clone()).unwrap_or_default();
        let lines = text
            .0
            .lock()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default();
        (entries, lines)
    }

    #[test]
    fn the_message_is_the_text_line_and_each_field_a_journal_field() {
        let p: ipnet::IpNet = "192.0.2.53/32".parse().expect("prefix");
        let (entries, text) = both(|| {
            tracing::warn!(target: crate::priority::NOTICE, prefix = %p, attributes = "up", reason = "service dns is up", "announced");
            tracing::warn!(service = %"dns", check = %"dns_lookup", error = "no answer\nat all", "check failed");
            tracing::error!(r#type = 3u64, force = true, "a {} message", "formatted");
            tracing::info!("check passed");
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            entries
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>(),
            [
                "announced prefix=192.0.2.53/32 attributes=\"up\" reason=\"service dns is up\"",
                "check failed service=dns check=dns_lookup error=\"no answer\\nat all\"",
                "a formatted message type=3 force=true",
                "check passed",
            ]
        );
        // The same text as stderr's lines.
        assert_eq!(
            lines,
            entries
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
        );
        assert_eq!(entries[0].priority, Priority::Notice);
        assert_eq!(entries[1].priority, Priority::Warning);
        assert_eq!(entries[2].priority, Priority::Error);
        assert_eq!(entries[3].priority, Priority::Info);
        assert_eq!(
            entries[0].fields,
            [
                ("PREFIX".to_string(), "192.0.2.53/32".to_string()),
                ("ATTRIBUTES".to_string(), "up".to_string()),
                ("REASON".to_string(), "service dns is up".to_string()),
            ]
        );
        assert_eq!(
            entries[1].fields[2].1, "no answer\nat all",
            "raw, not quoted"
        );
        assert_eq!(entries[2].fields[0].0, "TYPE");
    }

    #[test]
    fn the_datagram_follows_the_native_protocol() {
        let e = Entry {
            priority: Priority::Notice,
            message: "withdrawn prefix=192.0.2.1/32".into(),
            fields: vec![
                ("PREFIX".into(), "192.0.2.1/32".into()),
                ("ERROR".into(), "a\nb".into()),
            ],
            target: "anycastd::notice".into(),
            file: Some("src/announcer/routes.rs".into()),
            line: Some(275),
        };
        let mut want = b"PRIORITY=5\nSYSLOG_IDENTIFIER=anycastd\nMESSAGE=withdrawn prefix=192.0.2.1/32\nPREFIX=192.0.2.1/32\nERROR\n".to_vec();
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(
            b"a\nb\nTARGET=anycastd::notice\nCODE_FILE=src/announcer/routes.rs\nCODE_LINE=275\n",
        );
        assert_eq!(e.encode(None), want);
        // Cut at a character boundary.
        let long = Entry {
            message: "é".repeat(10),
            fields: Vec::new(),
            ..e
        };
        let cut = long.encode(Some(5));
        assert!(
            String::from_utf8_lossy(&cut).contains("\nMESSAGE=éé\n"),
            "{cut:?}"
        );
    }

    #[test]
    fn field_names_become_journal_names() {
        assert_eq!(journal_name("prefix"), "PREFIX");
        assert_eq!(journal_name("next_hop"), "NEXT_HOP");
        assert_eq!(journal_name("r#type"), "TYPE");
        assert_eq!(journal_name("log.target"), "LOG_TARGET");
        assert_eq!(journal_name("_x"), "X");
        assert_eq!(journal_name("9lives"), "LIVES");
        assert_eq!(journal_name("_"), "FIELD");
    }

    #[test]
    fn entries_reach_a_socket_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("socket");
        assert!(Journal::connect(&path).is_err());
        let server = UnixDatagram::bind(&path).expect("bind");
        let j = Journal::connect(&path).expect("connect");
        let mut buf = [0u8; 4096];
        assert_eq!(server.recv(&mut buf).expect("the probe"), 0);
        let e = Entry {
            priority: Priority::Warning,
            message: "check failed".into(),
            fields: Vec::new(),
            target: "anycastd".into(),
            file: None,
            line: None,
        };
        j.send(&e).expect("send");
        let n = server.recv(&mut buf).expect("the entry");
        assert_eq!(&buf[..n], e.encode(None).as_slice());
    }
}
