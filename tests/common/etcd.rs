//! A real etcd cluster for the fleet tests: `n` members of Debian's `etcd` (3.4) on
//! 127.0.0.1 with free ports and temporary data directories. Members can be stopped (killed,
//! as a crashed or cut-off machine) and started again on their data.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::lab::{free_tcp_port, http_get, require_program};

/// Fails (never skips) when etcd is not installed, saying how to install it.
pub fn require_etcd() {
    require_program(
        "etcd",
        "the fleet tests run a real 3-member etcd cluster",
        "etcd-server",
    );
}

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

pub struct EtcdCluster {
    members: Vec<Member>,
    initial_cluster: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl EtcdCluster {
    /// Starts `n` members and waits until the cluster has a leader.
    pub fn start(n: usize) -> EtcdCluster {
        require_etcd();
        let dir = tempfile::tempdir().expect("a temp dir for etcd");
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: free_tcp_port(),
                peer_port: free_tcp_port(),
                data: dir.path().join(format!("m{i}.etcd")),
                log: dir.path().join(format!("m{i}.log")),
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!(
            "anycastd-test-{}-{}",
            std::process::id(),
            members[0].client_port
        );
        let mut c = EtcdCluster {
            members,
            initial_cluster,
            token,
            _dir: dir,
        };
        for i in 0..n {
            c.spawn(i);
        }
        c.wait_healthy(Duration::from_secs(30));
        c
    }

    fn spawn(&mut self, i: usize) {
        let m = &self.members[i];
        let client = format!("http://127.0.0.1:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .expect("open the etcd log");
        let child = Command::new("etcd")
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.data)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", &self.token])
            .args(["--initial-cluster-state", "new"])
            // Calmer timers than etcd's defaults (100 ms heartbeat, 1 s election): a 2-core
            // box that also builds and runs six etcd must not see spurious elections (seen
            // with the defaults: calls failing across three tests at once). etcd raises a
            // shorter lease to 1.5 election timeouts: 3 s.
            .args(["--heartbeat-interval", "200", "--election-timeout", "2000"])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        self.members[i].child = Some(child);
    }

    /// The client URLs of all members, running or not.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// The client URLs of the running members.
    pub fn live_endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.child.is_some())
            .map(|m| format!("http://127.0.0.1:{}", m.client_port))
            .collect()
    }

    fn healthy(&self, i: usize) -> bool {
        let addr = ([127, 0, 0, 1], self.members[i].client_port).into();
        http_get(addr, "/health").is_some_and(|(code, body)| code == 200 && body.contains("true"))
    }

    /// Waits until every running member reports a leader.
    pub fn wait_healthy(&self, deadline: Duration) {
        let start = Instant::now();
        let running: Vec<usize> = (0..self.members.len())
            .filter(|i| self.members[*i].child.is_some())
            .collect();
        while !running.iter().all(|i| self.healthy(*i)) {
            assert!(
                start.elapsed() < deadline,
                "etcd cluster not healthy after {deadline:?}; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills member `i` (SIGKILL: a crash, no goodbye to its peers).
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again on its data directory.
    pub fn restart(&mut self, i: usize) {
        self.stop(i);
        self.spawn(i);
    }

    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                format!(
                    "--- {} ---\n{}",
                    m.name,
                    std::fs::read_to_string(&m.log).unwrap_or_default()
                )
            })
            .collect()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.stop(i);
        }
    }
}
