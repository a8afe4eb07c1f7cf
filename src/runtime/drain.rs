//! Drains: an operator takes services out of the anycast without stopping anycastd
//! (SPEC 9). Any of three sources drains a service:
//! - `announcer.drain_file`: every service, while the file exists;
//! - a service's `drain_file`: that service, while the file exists;
//! - `anycastd drain SERVICE...` or `anycastd drain --all` on the control socket, remembered
//!   in `announcer.state_directory` so that a restarted daemon is still drained.
//!
//! A drained service keeps running its checks; its routes leave gracefully (RFC 8326: the
//! draining attributes for `drain_linger`, then a withdraw). Undrained, it returns at once to
//! what its checks say.
//!
//! Drain files are looked at twice a second: a file appearing or going is seen within half
//! a second, for a few `stat` calls a second.
//!
//! The remembered drains fail closed (issue 20): a `drained.json` that cannot be read (not
//! JSON, truncated, unreadable, a directory in its place) drains every service, says so in
//! the log, `/status` and `anycastd_drain_state_ok`, until `anycastd undrain --all` writes
//! a good file again. Starting undrained would announce what an operator took out. Writes
//! go to a new temporary file (`O_EXCL | O_NOFOLLOW`: never through a link someone put
//! there), are synced, renamed over the old file, and the directory synced.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::priority::NOTICE;
use metrics::Gauge;
use tracing::{error, warn};

use crate::config::Config;

/// How often the drain files are looked at.
pub const FILE_POLL: Duration = Duration::from_millis(500);

/// The name of the file in `state_directory` holding the commanded drains.
const STATE_FILE: &str = "drained.json";

/// Why a service is drained.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Reason {
    /// A drain file exists (`announcer.drain_file` or the service's own).
    File { path: PathBuf },
    /// `anycastd drain` (of this service, or `--all`), at `since` (seconds since the epoch);
    /// `force`: past the fleet guard.
    Command {
        all: bool,
        since: u64,
        #[serde(default)]
        force: bool,
    },
    /// The remembered drains could not be read: every service is drained (fail closed).
    Unreadable { path: PathBuf, error: String },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::File { path } => write!(f, "file {}", path.display()),
            Reason::Command { all, since, force } => write!(
                f,
                "`anycastd drain{}{}` at {}",
                if *all { " --all" } else { "" },
                if *force { " --force" } else { "" },
                humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(*since))
            ),
            Reason::Unreadable { path, error } => write!(
                f,
                "unreadable drain state {} ({error}): every service stays drained until `anycastd undrain --all`",
                path.display()
            ),
        }
    }
}

impl Reason {
    /// Whether this drain goes past the fleet guard.
    pub fn forced(&self) -> bool {
        matches!(self, Reason::Command { force: true, .. })
    }
}

/// The drains given on the control socket, as remembered on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commanded {
    /// `anycastd drain --all`, since when: drains every service, also those a reload adds.
    #[serde(default)]
    pub all: Option<u64>,
    /// `anycastd drain SERVICE`, each since when.
    #[serde(default)]
    pub services: BTreeMap<String, u64>,
    /// `anycastd drain --all --force`: the routes leave past the fleet guard.
    #[serde(default)]
    pub all_forced: bool,
    /// The services drained with `--force`: their routes leave past the fleet guard.
    #[serde(default)]
    pub forced: BTreeSet<String>,
    /// The file could not be read at start, and why: every service is drained until
    /// `anycastd undrain --all` (never written to the file).
    #[serde(skip)]
    pub unreadable: Option<(PathBuf, String)>,
}

/// Why the commanded drains could not be read or remembered.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error(transparent)]
    Read(#[from] crate::small_file::ReadError),
    #[error("{} is not a drain state file anycastd wrote: {source}; remove it to start undrained", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {} (announcer.state_directory): {source}; the drain applies now but is not remembered across a restart (retried every {}ms)", path.display(), FILE_POLL.as_millis())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Commanded {
    /// Reads the drains remembered in `dir`; none when there is no file yet. A file that
    /// cannot be read gives the fail-closed state ([`Commanded::unreadable`]) with the
    /// error, for the caller to log.
    pub fn load(dir: &Path) -> (Commanded, Option<DrainError>) {
        match Commanded::read(dir) {
            Ok(c) => (c, None),
            Err(e) => (Commanded::unreadable(dir, &e), Some(e)),
        }
    }

    /// Every service drained because `error` kept the file in `dir` from being read.
    pub fn unreadable(dir: &Path, error: &DrainError) -> Commanded {
        Commanded {
            unreadable: Some((dir.join(STATE_FILE), error.to_string())),
            ..Commanded::default()
        }
    }

    fn read(dir: &Path) -> Result<Commanded, DrainError> {
        let path = dir.join(STATE_FILE);
        let text = match crate::small_file::read_to_string(&path, 1 << 20) {
            Ok(t) => t,
            Err(crate::small_file::ReadError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(Commanded::default());
            }
            Err(e) => return Err(e.into()),
        };
        serde_json::from_str(&text).map_err(|source| DrainError::Parse { path, source })
    }

    /// Remembers these drains in `dir`: written to a new temporary file (created with
    /// `O_EXCL | O_NOFOLLOW`, so a link planted at its name is never followed), synced,
    /// renamed over the old file, and the directory synced: a crash leaves the old file or
    /// the new one, never half of one.
    pub fn save(&self, dir: &Path) -> Result<(), DrainError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join(STATE_FILE);
        let write = |source| DrainError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(write)?;
        let text = serde_json::to_string_pretty(self).unwrap_or_default() + "\n";
        let tmp = dir.join(format!(
            ".{STATE_FILE}.{}.{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let written = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(write)
    }
}

/// Makes each temporary file's name new within the process.
static TEMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The drain files of a config: `announcer.drain_file` and each service's.
pub fn files(cfg: &Config) -> BTreeSet<PathBuf> {
    cfg.announcer
        .drain_file
        .iter()
        .chain(cfg.services.iter().filter_map(|s| s.drain_file.as_ref()))
        .cloned()
        .collect()
}

/// Which of `files` exist now, and those that cannot be looked at (a directory anycastd
/// may not search), with why; those count as absent.
pub fn existing(files: &BTreeSet<PathBuf>) -> (BTreeSet<PathBuf>, BTreeMap<PathBuf, String>) {
    let mut present = BTreeSet::new();
    let mut unknown = BTreeMap::new();
    for f in files {
        match std::fs::symlink_metadata(f) {
            Ok(_) => {
                present.insert(f.clone());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                unknown.insert(f.clone(), crate::small_file::describe_io(&e));
            }
        }
    }
    (present, unknown)
}

/// Why each service of `cfg` is drained (services that are not drained are absent).
pub fn reasons(
    cfg: &Config,
    commanded: &Commanded,
    existing_files: &BTreeSet<PathBuf>,
) -> BTreeMap<String, Vec<Reason>> {
    let mut out = BTreeMap::new();
    for svc in &cfg.services {
        let mut r = Vec::new();
        if let Some((path, error)) = &commanded.unreadable {
            r.push(Reason::Unreadable {
                path: path.clone(),
                error: error.clone(),
            });
        }
        for f in [&cfg.announcer.drain_file, &svc.drain_file]
            .into_iter()
            .flatten()
        {
            if existing_files.contains(f) {
                r.push(Reason::File { path: f.clone() });
            }
        }
        if let Some(since) = commanded.all {
            r.push(Reason::Command {
                all: true,
                since,
                force: commanded.all_forced,
            });
        }
        if let Some(since) = commanded.services.get(&svc.name) {
            r.push(Reason::Command {
                all: false,
                since: *since,
                force: commanded.forced.contains(&svc.name),
            });
        }
        if !r.is_empty() {
            out.insert(svc.name.clone(), r);
        }
    }
    out
}

/// Which services a drain command names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// `--all`: every service, also those a reload adds later.
    All,
    Services(Vec<String>),
}

impl std::fmt::Display for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selection::All => f.write_str("every service"),
            Selection::Services(names) => f.write_str(&names.join(", ")),
        }
    }
}

/// A drain command naming services the config does not have.
#[derive(Debug, thiserror::Error)]
#[error("no service named {}; the services are: {}", unknown.join(", "), known.join(", "))]
pub struct UnknownServices {
    pub unknown: Vec<String>,
    pub known: Vec<String>,
}

/// The drains: the commanded ones (remembered in `state_directory`), the drain files that
/// exist, and whether the last change could be saved.
pub struct Drains {
    dir: PathBuf,
    commanded: Commanded,
    files: BTreeSet<PathBuf>,
    /// Drain files that cannot be looked at, with why (each said once).
    unknown_files: BTreeMap<PathBuf, String>,
    /// The commanded drains changed but could not be saved: retried at each poll.
    unsaved: bool,
    /// `anycastd_drain_state_ok`.
    state_ok: Gauge,
}

impl Drains {
    /// Reads the drains remembered in `dir`. An unreadable file drains every service
    /// (fail closed), said at ERROR and in `anycastd_drain_state_ok`.
    pub fn load(dir: &Path, state_ok: Gauge) -> Drains {
        let (commanded, unreadable) = Commanded::load(dir);
        if let Some(e) = &unreadable {
            error!(
                error = e.to_string().as_str(),
                "cannot read the remembered drains: every service stays drained (fail closed) until `anycastd undrain --all` writes them again"
            );
        }
        state_ok.set(if unreadable.is_some() { 0.0 } else { 1.0 });
        Drains {
            dir: dir.to_path_buf(),
            commanded,
            files: BTreeSet::new(),
            unknown_files: BTreeMap::new(),
            unsaved: false,
            state_ok,
        }
    }

    /// Where drains are remembered from now on (a reload may change `state_directory`).
    pub fn set_dir(&mut self, dir: &Path) {
        self.dir = dir.to_path_buf();
    }

    /// Looks at the drain files of `cfg` again (and retries a failed save); whether the
    /// existing ones changed. Files appearing or going are logged.
    pub fn poll(&mut self, cfg: &Config) -> bool {
        if self.unsaved {
            let _ = self.save();
        }
        let (existing, unknown) = existing(&files(cfg));
        for (f, why) in &unknown {
            if self.unknown_files.get(f) != Some(why) {
                warn!(file = %f.display(), error = why.as_str(), "cannot tell whether the drain file exists (is its directory searchable by anycastd?); treated as absent");
            }
        }
        for f in self.unknown_files.keys() {
            if !unknown.contains_key(f) {
                warn!(file = %f.display(), "the drain file can be looked at again");
            }
        }
        self.unknown_files = unknown;
        if existing == self.files {
            return false;
        }
        for f in existing.symmetric_difference(&self.files) {
            let services = services_of(cfg, f);
            if existing.contains(f) {
                warn!(target: NOTICE, file = %f.display(), services = services.as_str(), "drain file appeared: draining");
            } else {
                warn!(target: NOTICE, file = %f.display(), services = services.as_str(), "drain file is gone: undraining");
            }
        }
        self.files = existing;
        true
    }

    /// Why each service of `cfg` is drained (services that are not drained are absent).
    pub fn reasons(&self, cfg: &Config) -> BTreeMap<String, Vec<Reason>> {
        reasons(cfg, &self.commanded, &self.files)
    }

    /// `anycastd drain`: whether anything changed, and the save's error if it failed (the
    /// drain applies all the same, and the save is retried).
    pub fn drain(
        &mut self,
        cfg: &Config,
        what: &Selection,
        force: bool,
    ) -> Result<(bool, Option<DrainError>), UnknownServices> {
        let now = now();
        let before = self.commanded.clone();
        match what {
            Selection::All => {
                self.commanded.all.get_or_insert(now);
                if force {
                    self.commanded.all_forced = true;
                }
            }
            Selection::Services(names) => {
                known(cfg, names)?;
                for n in names {
                    self.commanded.services.entry(n.clone()).or_insert(now);
                    if force {
                        self.commanded.forced.insert(n.clone());
                    }
                }
            }
        }
        Ok(self.changed_since(&before))
    }

    /// `anycastd undrain`: whether anything changed, and the save's error if it failed.
    /// `--all` also clears the fail-closed drain of an unreadable state file.
    pub fn undrain(
        &mut self,
        cfg: &Config,
        what: &Selection,
    ) -> Result<(bool, Option<DrainError>), UnknownServices> {
        let before = self.commanded.clone();
        match what {
            Selection::All => self.commanded = Commanded::default(),
            Selection::Services(names) => {
                known(cfg, names)?;
                for n in names {
                    self.commanded.services.remove(n);
                    self.commanded.forced.remove(n);
                }
            }
        }
        Ok(self.changed_since(&before))
    }

    fn changed_since(&mut self, before: &Commanded) -> (bool, Option<DrainError>) {
        if self.commanded == *before {
            return (false, None);
        }
        (true, self.save().err())
    }

    /// Writes the commanded drains; on failure says so (log, `anycastd_drain_state_ok` 0)
    /// and leaves them to be retried at the next poll.
    fn save(&mut self) -> Result<(), DrainError> {
        match self.commanded.save(&self.dir) {
            Ok(()) => {
                if std::mem::take(&mut self.unsaved) {
                    warn!("the remembered drains are saved again");
                }
                self.state_ok.set(if self.commanded.unreadable.is_some() {
                    0.0
                } else {
                    1.0
                });
                Ok(())
            }
            Err(e) => {
                if !self.unsaved {
                    error!(
                        error = e.to_string().as_str(),
                        "cannot remember the drains across restarts"
                    );
                }
                self.unsaved = true;
                self.state_ok.set(0.0);
                Err(e)
            }
        }
    }
}

/// `Err` naming the services of `names` that `cfg` does not have.
fn known(cfg: &Config, names: &[String]) -> Result<(), UnknownServices> {
    let unknown: Vec<String> = names
        .iter()
        .filter(|n| !cfg.services.iter().any(|s| &s.name == *n))
        .cloned()
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(UnknownServices {
        unknown,
        known: cfg.services.iter().map(|s| s.name.clone()).collect(),
    })
}

/// The services a drain file drains, for the log: every one for `announcer.drain_file`.
fn services_of(cfg: &Config, file: &Path) -> String {
    if cfg.announcer.drain_file.as_deref() == Some(file) {
        return "every service".to_string();
    }
    cfg.services
        .iter()
        .filter(|s| s.drain_file.as_deref() == Some(file))
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        let text = format!(
            "announcer:\n  router_id: 10.0.0.1\n  local_address: 10.0.0.1\n  local_asn: 65001\n  drain_file: {all}\n  routes: [192.0.2.1/32]\nservices:\n  - name: web\n    check_interval: 1s\n    drain_file: {web}\n    checks: [{{kind: assigned_address, spec: {{ipv4: 127.0.0.1}}}}]\n  - name: dns\n    check_interval: 1s\n    checks: [{{kind: assigned_address, spec: {{ipv4: 127.0.0.1}}}}]\n",
            all = dir.join("all").display(),
            web = dir.join("web").display()
        );
        crate::config::parse(&text, crate::config::Format::Yaml).expect("test config")
    }

    #[test]
    fn files_and_commands_drain_their_services() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(dir.path());
        let fs = files(&cfg);
        assert_eq!(fs.len(), 2);
        assert!(reasons(&cfg, &Commanded::default(), &existing(&fs).0).is_empty());

        std::fs::write(dir.path().join("web"), "").expect("touch");
        let r = reasons(&cfg, &Commanded::default(), &existing(&fs).0);
        assert_eq!(r.keys().collect::<Vec<_>>(), ["web"]);

        std::fs::write(dir.path().join("all"), "").expect("touch");
        let r = reasons(&cfg, &Commanded::default(), &existing(&fs).0);
        assert_eq!(r["web"].len(), 2);
        assert_eq!(r["dns"].len(), 1);

        let c = Commanded {
            services: BTreeMap::from([("dns".to_string(), 5)]),
            ..Commanded::default()
        };
        let r = reasons(&cfg, &c, &BTreeSet::new());
        assert_eq!(r.keys().collect::<Vec<_>>(), ["dns"]);
        assert_eq!(
            r["dns"],
            [Reason::Command {
                all: false,
                since: 5,
                force: false
            }]
        );
    }

    /// Issue 20: a drain file in a directory anycastd cannot search was taken as absent
    /// without a word. (As root every directory can be searched; a path under a regular
    /// file fails the same way, with another error.)
    #[test]
    fn a_drain_file_that_cannot_be_looked_at_is_said() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").expect("a regular file");
        let under = file.join("drain");
        let present = dir.path().join("present");
        std::fs::write(&present, "").expect("touch");
        let (existing, unknown) = existing(&BTreeSet::from([under.clone(), present.clone()]));
        assert_eq!(existing, BTreeSet::from([present]));
        assert_eq!(unknown.keys().collect::<Vec<_>>(), [&under]);
        assert!(unknown[&under].contains("Not a directory"), "{unknown:?}");
    }

    #[test]
    fn commanded_drains_survive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let (none, error) = Commanded::load(&state);
        assert_eq!(none, Commanded::default());
        assert!(error.is_none());
        let c = Commanded {
            all: Some(7),
            services: BTreeMap::from([("web".to_string(), 9)]),
            all_forced: true,
            forced: BTreeSet::from(["web".to_string()]),
            unreadable: None,
        };
        c.save(&state).expect("save");
        assert_eq!(Commanded::load(&state).0, c);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&state)
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, [STATE_FILE]);
    }

    /// Issue 20: a corrupt, truncated or unreadable file, or a directory in its place,
    /// started the daemon undrained.
    #[test]
    fn an_unreadable_state_drains_every_service() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(dir.path());
        let state = dir.path().join("state");
        std::fs::create_dir(&state).expect("mkdir");
        let file = state.join(STATE_FILE);
        let good = serde_json::to_string(&Commanded {
            all: Some(7),
            ..Commanded::default()
        })
        .expect("json");
        for (what, make) in [
            (
                "garbage",
                Box::new(|f: &Path| std::fs::write(f, "{"))
                    as Box<dyn Fn(&Path) -> std::io::Result<()>>,
            ),
            (
                "truncated",
                Box::new(move |f: &Path| std::fs::write(f, &good[..good.len() / 2])),
            ),
            ("a directory", Box::new(|f: &Path| std::fs::create_dir(f))),
        ] {
            make(&file).expect(what);
            let (c, error) = Commanded::load(&state);
            let error = error.unwrap_or_else(|| panic!("{what}: no error"));
            assert!(c.unreadable.is_some(), "{what}");
            let r = reasons(&cfg, &c, &BTreeSet::new());
            assert_eq!(r.len(), 2, "{what}: every service drained: {r:?}");
            let said = r["web"][0].to_string();
            assert!(said.contains("undrain --all"), "{said}");
            assert!(said.contains(&error.to_string()), "{said}");
            let _ = std::fs::remove_file(&file).or_else(|_| std::fs::remove_dir(&file));
        }
    }

    /// Issue 20: a link planted at the temporary file's name was followed, and its target
    /// overwritten (as root).
    #[test]
    fn saving_never_follows_a_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").expect("victim");
        let state = dir.path().join("state");
        std::fs::create_dir(&state).expect("mkdir");
        // The old fixed name, and the next names this process would pick.
        std::os::unix::fs::symlink(&victim, state.join(format!("{STATE_FILE}.tmp"))).expect("link");
        let next = TEMP_COUNTER.load(std::sync::atomic::Ordering::Relaxed);
        for n in next..next + 4 {
            let name = format!(".{STATE_FILE}.{}.{n}", std::process::id());
            std::os::unix::fs::symlink(&victim, state.join(name)).expect("link");
        }
        let c = Commanded {
            all: Some(1),
            ..Commanded::default()
        };
        // Refused rather than followed (the names are taken)...
        let saved = (0..8).map(|_| c.save(&state)).find(Result::is_ok);
        assert!(saved.is_some(), "never saved");
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "precious"
        );
        assert_eq!(Commanded::load(&state).0, c);
        // ...and a file in the way of the rename (a directory) is an error, not a panic.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join(STATE_FILE)).expect("mkdir");
        let e = c.save(&blocked).expect_err("a directory in the way");
        assert!(e.to_string().contains("not remembered"), "{e}");
    }
}
