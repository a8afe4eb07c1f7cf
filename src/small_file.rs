//! Reading the small files a config points at (the config itself, a certificate, a
//! password) without trusting them: only regular files are read, never more than a limit.
//!
//! A path may name a FIFO (open(2) blocks until a writer comes, forever), a device
//! (`/dev/zero` never ends; opening some devices has side effects), a socket or a directory.
//! So the file's type is checked before it is opened (following symlinks), the open itself
//! cannot block (`O_NONBLOCK`, `O_NOCTTY`), the type is checked again on the open file
//! (fstat: the path may have been swapped in between), and the read stops one byte past the
//! limit whatever the metadata says (files in /proc say 0 bytes and have content; a device
//! says 0 bytes and has no end).

use std::fs::{File, FileType};
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use rustix::fs::{Mode, OFlags};

/// Why a small file could not be read. Each message names the path.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}: {}", path.display(), describe_io(source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} is a {kind}, not a regular file: give the path of a regular file (a FIFO or a \
         device could block or never end)",
        path.display()
    )]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{} is larger than {limit} bytes: this is not the file meant here", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{} is not UTF-8 text", path.display())]
    NotText { path: PathBuf },
    #[error(
        "{} kept changing for {}s: it is still being written; write it to a temporary file and rename that over it",
        path.display(),
        SETTLE_LIMIT.as_secs()
    )]
    Unsettled { path: PathBuf },
}

/// A file changed less than this long ago may still be being written: it is read again
/// once it has not changed for this long, and used when two reads agree.
pub const SETTLE: Duration = Duration::from_millis(300);
/// How long [`read_settled`] waits for a file to stop changing.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(5);

/// An I/O error in words, without the `(os error N)` the standard library adds.
pub fn describe_io(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => "it does not exist".to_string(),
        ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let s = e.to_string();
            match s.rfind(" (os error ") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

/// Reads the regular file at `path`, refusing anything else and anything longer than
/// `limit` bytes.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    regular(path, std::fs::metadata(path).map_err(io)?.file_type())?;
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(e.into()))?;
    let file = File::from(fd);
    regular(path, file.metadata().map_err(io)?.file_type())?;
    let mut data = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(io)?;
    if data.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(data)
}

/// [`read`], as UTF-8 text.
pub fn read_to_string(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read(path, limit)?).map_err(|_| ReadError::NotText {
        path: path.to_path_buf(),
    })
}

/// [`read_to_string`] of a file that someone may be writing right now (a config file and
/// a reload racing an editor or configuration management, issue 20: a reload in the middle
/// of a slow write applied half a file). A file changed within [`SETTLE`] is read again
/// once it has been still for that long, until two reads agree (content and modification
/// time); one that keeps changing for [`SETTLE_LIMIT`] is an error. A file last changed
/// earlier is read once. Blocks the thread while it waits.
pub fn read_settled(path: &Path, limit: u64) -> Result<String, ReadError> {
    let start = Instant::now();
    let mut last = read_stamped(path, limit)?;
    loop {
        let age = SystemTime::now()
            .duration_since(last.1)
            .unwrap_or(Duration::ZERO);
        if age >= SETTLE && last.2 {
            return Ok(last.0);
        }
        if start.elapsed() >= SETTLE_LIMIT {
            return Err(ReadError::Unsettled {
                path: path.to_path_buf(),
            });
        }
        std::thread::sleep(SETTLE.saturating_sub(age).max(Duration::from_millis(10)));
        let (text, mtime, _) = read_stamped(path, limit)?;
        let agree = text == last.0 && mtime == last.1;
        last = (text, mtime, agree);
    }
}

/// The file's text and modification time; the flag says whether a second read agreed
/// (a first read has none: `false` unless the file is old enough not to need one).
fn read_stamped(path: &Path, limit: u64) -> Result<(String, SystemTime, bool), ReadError> {
    let text = read_to_string(path, limit)?;
    let mtime = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let old = SystemTime::now()
        .duration_since(mtime)
        .is_ok_and(|age| age >= SETTLE);
    Ok((text, mtime, old))
}

fn regular(path: &Path, t: FileType) -> Result<(), ReadError> {
    let kind = if t.is_file() {
        return Ok(());
    } else if t.is_fifo() {
        "FIFO (named pipe)"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_socket() {
        "socket"
    } else if t.is_dir() {
        "directory"
    } else {
        "special file"
    };
    Err(ReadError::NotRegular {
        path: path.to_path_buf(),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn kind_of(path: &Path) -> Option<&'static str> {
        match read(path, 1024) {
            Err(ReadError::NotRegular { kind, .. }) => Some(kind),
            _ => None,
        }
    }

    #[test]
    fn a_regular_file_up_to_the_limit_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("f");
        std::fs::write(&f, b"0123456789").expect("write");
        assert_eq!(read(&f, 10).expect("read"), b"0123456789");
        let e = read(&f, 9).expect_err("one byte too many");
        assert!(matches!(e, ReadError::TooLarge { limit: 9, .. }), "{e}");
        assert!(e.to_string().contains(&f.display().to_string()), "{e}");
        // Through a symlink, as /etc/ssl/certs/*.pem usually are.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&f, &link).expect("symlink");
        assert_eq!(read_to_string(&link, 10).expect("read"), "0123456789");
    }

    #[test]
    fn the_limit_counts_bytes_read_not_the_metadata() {
        // /proc files report a size of 0 and have content.
        let status = Path::new("/proc/self/status");
        assert_eq!(std::fs::metadata(status).map(|m| m.len()).ok(), Some(0));
        assert!(read_to_string(status, 64 * 1024).is_ok_and(|s| s.contains("Pid:")));
        assert!(matches!(
            read(status, 10),
            Err(ReadError::TooLarge { limit: 10, .. })
        ));
    }

    #[test]
    fn special_files_are_refused_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        let socket = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
        let start = Instant::now();
        assert_eq!(kind_of(&fifo), Some("FIFO (named pipe)"));
        assert_eq!(kind_of(Path::new("/dev/zero")), Some("character device"));
        assert_eq!(kind_of(&socket), Some("socket"));
        assert_eq!(kind_of(dir.path()), Some("directory"));
        assert!(start.elapsed() < Duration::from_secs(1));
        let e = read(Path::new("/dev/zero"), 1024).expect_err("refused");
        assert_eq!(
            e.to_string(),
            "/dev/zero is a character device, not a regular file: give the path of a regular \
             file (a FIFO or a device could block or never end)"
        );
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let e = read(Path::new("/nonexistent/x.pem"), 10).expect_err("missing");
        assert!(
            matches!(&e, ReadError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
        );
        assert_eq!(
            e.to_string(),
            "cannot read /nonexistent/x.pem: it does not exist"
        );
    }

    #[test]
    fn text_must_be_utf8() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("f");
        std::fs::write(&f, [0xff, 0xfe]).expect("write");
        assert!(matches!(
            read_to_string(&f, 10),
            Err(ReadError::NotText { .. })
        ));
    }
}
