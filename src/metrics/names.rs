//! Every metric name in one place, with its help text.

pub const SERVICE_UP: &str = "anycastd_service_up";
pub const SERVICE_TRANSITIONS: &str = "anycastd_service_transitions_total";
pub const CHECK_UP: &str = "anycastd_check_up";
pub const CHECK_DURATION: &str = "anycastd_check_duration_seconds";
/// Labels {service, check}: every failed run of the check.
pub const CHECK_FAILURES: &str = "anycastd_check_failures_total";
pub const ROUTE_ANNOUNCED: &str = "anycastd_route_announced";
/// Labels {prefix, state}: 1 for the prefix's state in gobgpd, 0 for the three others.
pub const ROUTE_STATE: &str = "anycastd_route_state";
pub const GOBGP_UP: &str = "anycastd_gobgp_up";
pub const GOBGP_RECONNECTS: &str = "anycastd_gobgp_reconnects_total";
pub const GOBGP_OWNER_CONFLICT: &str = "anycastd_gobgp_owner_conflict";
pub const GOBGP_FOREIGN_CHANGES: &str = "anycastd_gobgp_foreign_changes_total";
/// Labels {api}: `v3` or `v4`.
pub const GOBGP_API_INFO: &str = "anycastd_gobgp_api_info";
pub const SERVICE_STATE: &str = "anycastd_service_state";
pub const SERVICE_LAST_TRANSITION: &str = "anycastd_service_last_transition_timestamp_seconds";
pub const CONFIG_RELOAD_SUCCESSFUL: &str = "anycastd_config_last_reload_successful";
pub const DRAIN_STATE_OK: &str = "anycastd_drain_state_ok";
pub const CONFIG_RELOAD_SUCCESS_TIME: &str =
    "anycastd_config_last_reload_success_timestamp_seconds";
pub const BUILD_INFO: &str = "anycastd_build_info";
/// Labels {service, watch, event}.
pub const WATCH_EVENTS: &str = "anycastd_watch_events_total";

// The process, under the official Prometheus clients' names (src/process.rs).
pub const PROCESS_CPU: &str = "process_cpu_seconds_total";
pub const PROCESS_RSS: &str = "process_resident_memory_bytes";
pub const PROCESS_VSIZE: &str = "process_virtual_memory_bytes";
pub const PROCESS_FDS: &str = "process_open_fds";
pub const PROCESS_MAX_FDS: &str = "process_max_fds";
pub const PROCESS_START: &str = "process_start_time_seconds";

// The fleet guard (src/fleet), labels {prefix} where shown.
pub const FLEET_UP: &str = "anycastd_fleet_up";
pub const FLEET_SITES: &str = "anycastd_fleet_sites";
pub const FLEET_HELD: &str = "anycastd_fleet_held";
pub const FLEET_DUPLICATE_SITE: &str = "anycastd_fleet_duplicate_site";

// icmp_ping, labels {service, check, host}: the last run's figures, and totals.
pub const CHECK_AVG_RTT: &str = "anycastd_check_avg_rtt_seconds";
pub const CHECK_MIN_RTT: &str = "anycastd_check_min_rtt_seconds";
pub const CHECK_MAX_RTT: &str = "anycastd_check_max_rtt_seconds";
pub const CHECK_STD_DEV_RTT: &str = "anycastd_check_std_dev_rtt_seconds";
pub const CHECK_LOSS: &str = "anycastd_check_loss_percent";
pub const CHECK_PACKETS_SENT: &str = "anycastd_check_packets_sent_total";
pub const CHECK_PACKETS_RECEIVED: &str = "anycastd_check_packets_received_total";
pub const CHECK_PACKETS_DUPLICATES: &str = "anycastd_check_packets_received_duplicates_total";

// ntp, labels {service, check}.
pub const CHECK_NTP_OFFSET: &str = "anycastd_check_ntp_offset_seconds";
pub const CHECK_NTP_STRATUM: &str = "anycastd_check_ntp_stratum";

// tls_certificate, labels {service, check, path}.
pub const CERTIFICATE_EXPIRES_IN: &str = "anycastd_certificate_expires_in_seconds";
/// The same figure under the Go daemon's name, so that its dashboards keep working.
pub const CERTIFICATE_EXPIRES_IN_LEGACY: &str = "certificate_expires_in_seconds";

// gobgpd's peers, labels {router_id, peer}; rendered from the peer table at scrape time.
pub const GOBGP_PEER_COUNT: &str = "anycastd_gobgp_peer_count";
pub const GOBGP_PEER_ADMIN_STATE: &str = "anycastd_gobgp_peer_admin_state";
pub const GOBGP_PEER_FLOPS: &str = "anycastd_gobgp_peer_flops_count";
pub const GOBGP_PEER_OUT_QUEUE: &str = "anycastd_gobgp_peer_out_queue_count";
pub const GOBGP_PEER_PASSWORD_SET: &str = "anycastd_gobgp_peer_password_set_flag";
pub const GOBGP_PEER_REMOVE_PRIVATE: &str = "anycastd_gobgp_peer_remove_private_flag";
pub const GOBGP_PEER_SEND_COMMUNITY: &str = "anycastd_gobgp_peer_send_community_flag";
pub const GOBGP_PEER_SESSION_STATE: &str = "anycastd_gobgp_peer_session_state";
pub const GOBGP_PEER_TYPE: &str = "anycastd_gobgp_peer_type";
// BFD of the peers configured with it (SPEC 16), labels {router_id, peer}.
pub const GOBGP_PEER_BFD_SUPPORTED: &str = "anycastd_gobgp_peer_bfd_supported";
pub const GOBGP_PEER_BFD_STATE: &str = "anycastd_gobgp_peer_bfd_state";
pub const GOBGP_PEER_BFD_SENT: &str = "anycastd_gobgp_peer_bfd_packets_sent_total";
pub const GOBGP_PEER_BFD_RECEIVED: &str = "anycastd_gobgp_peer_bfd_packets_received_total";
pub const GOBGP_RECEIVED_KEEPALIVE: &str = "anycastd_gobgp_received_messages_keepalive";
pub const GOBGP_RECEIVED_NOTIFICATION: &str = "anycastd_gobgp_received_messages_notification";
pub const GOBGP_RECEIVED_OPEN: &str = "anycastd_gobgp_received_messages_open";
pub const GOBGP_RECEIVED_REFRESH: &str = "anycastd_gobgp_received_messages_refresh";
pub const GOBGP_RECEIVED_TOTAL: &str = "anycastd_gobgp_received_messages_total";
pub const GOBGP_RECEIVED_UPDATE: &str = "anycastd_gobgp_received_messages_update";
pub const GOBGP_RECEIVED_WITHDRAW_PREFIX: &str = "anycastd_gobgp_received_messages_withdraw_prefix";
pub const GOBGP_RECEIVED_WITHDRAW_UPDATE: &str = "anycastd_gobgp_received_messages_withdraw_update";
pub const GOBGP_SENT_KEEPALIVE: &str = "anycastd_gobgp_sent_messages_keepalive";
pub const GOBGP_SENT_NOTIFICATION: &str = "anycastd_gobgp_sent_messages_notification";
pub const GOBGP_SENT_OPEN: &str = "anycastd_gobgp_sent_messages_open";
pub const GOBGP_SENT_REFRESH: &str = "anycastd_gobgp_sent_messages_refresh";
pub const GOBGP_SENT_TOTAL: &str = "anycastd_gobgp_sent_messages_total";
pub const GOBGP_SENT_UPDATE: &str = "anycastd_gobgp_sent_messages_update";
pub const GOBGP_SENT_WITHDRAW_PREFIX: &str = "anycastd_gobgp_sent_messages_withdraw_prefix";
pub const GOBGP_SENT_WITHDRAW_UPDATE: &str = "anycastd_gobgp_sent_messages_withdraw_update";

/// `(name, help)` of the metrics above, for the exposition's HELP lines.
pub const HELP: &[(&str, &str)] = &[
    (
        SERVICE_UP,
        "Service liveness status based on checks (1 up, 0 down)",
    ),
    (
        SERVICE_TRANSITIONS,
        "Times the service changed between up, degraded and down",
    ),
    (CHECK_UP, "Last result of the check (1 passed, 0 failed)"),
    (
        CHECK_DURATION,
        "Duration of the last run of the check (all attempts) in seconds",
    ),
    (
        CHECK_FAILURES,
        "Runs of the check that failed (all its attempts), since anycastd started",
    ),
    (
        ROUTE_ANNOUNCED,
        "Whether the prefix is announced through gobgpd (1) or not (0)",
    ),
    (
        ROUTE_STATE,
        "1 for the prefix's state in gobgpd (up, degraded, draining: announced so; withdrawn), 0 for the others",
    ),
    (
        GOBGP_UP,
        "Whether gobgpd's gRPC API is reachable (1) or not (0)",
    ),
    (
        GOBGP_RECONNECTS,
        "Times anycastd (re)connected to gobgpd's API and set it up",
    ),
    (
        GOBGP_OWNER_CONFLICT,
        "1 while another anycastd drives this gobgpd (anycastd then leaves it alone)",
    ),
    (
        GOBGP_FOREIGN_CHANGES,
        "Changes someone else made to anycastd's paths or peers in gobgpd (each put back)",
    ),
    (
        GOBGP_API_INFO,
        "1 for the GoBGP API (v3: GoBGP 3.x, v4: 4.x) gobgpd spoke at the last connect, 0 for the other",
    ),
    (
        SERVICE_STATE,
        "1 for the service's current state (up, degraded, down, drained), 0 for the others",
    ),
    (
        SERVICE_LAST_TRANSITION,
        "When the service's state (up, degraded, down, drained) last changed, or it started, in seconds since the epoch",
    ),
    (
        CONFIG_RELOAD_SUCCESSFUL,
        "Whether the last reload of the config file succeeded (1) or was refused (0)",
    ),
    (
        DRAIN_STATE_OK,
        "Whether the remembered drains (state_directory/drained.json) were read and last saved (1); 0: unreadable at start (every service drained until `anycastd undrain --all`) or not saved",
    ),
    (
        CONFIG_RELOAD_SUCCESS_TIME,
        "When the config was last loaded successfully (at start or by a reload), in seconds since the epoch",
    ),
    (
        BUILD_INFO,
        "Always 1; the labels tell the running build: version, git revision, compiler",
    ),
    (
        PROCESS_CPU,
        "Total user and system CPU time spent in seconds",
    ),
    (PROCESS_RSS, "Resident memory size in bytes"),
    (PROCESS_VSIZE, "Virtual memory size in bytes"),
    (PROCESS_FDS, "Number of open file descriptors"),
    (PROCESS_MAX_FDS, "Maximum number of open file descriptors"),
    (
        PROCESS_START,
        "Start time of the process since unix epoch in seconds",
    ),
    (
        WATCH_EVENTS,
        "Events seen by a service's watches (tcp: connected, closed, reset, connect_failed; \
         pid_file: watching, exited, not_running, missing, empty, garbage, error)",
    ),
    (
        FLEET_UP,
        "Whether the fleet guard's last call to etcd succeeded (1) or not (0)",
    ),
    (
        FLEET_SITES,
        "Sites announcing the prefix, as their claims in etcd say (this one included)",
    ),
    (
        FLEET_HELD,
        "1 while this site keeps the prefix announced only because the fleet guard holds it",
    ),
    (
        FLEET_DUPLICATE_SITE,
        "1 while another anycastd owns this site's name in etcd (this one then does not claim)",
    ),
    (
        CHECK_AVG_RTT,
        "Average round-trip time of the echo replies of the last ICMP check, in seconds",
    ),
    (
        CHECK_MIN_RTT,
        "Shortest round-trip time of the last ICMP check, in seconds",
    ),
    (
        CHECK_MAX_RTT,
        "Longest round-trip time of the last ICMP check, in seconds",
    ),
    (
        CHECK_STD_DEV_RTT,
        "Standard deviation of the round-trip times of the last ICMP check, in seconds",
    ),
    (
        CHECK_LOSS,
        "Percent of the echo requests of the last ICMP check that got no reply",
    ),
    (CHECK_PACKETS_SENT, "Echo requests sent by the ICMP check"),
    (
        CHECK_PACKETS_RECEIVED,
        "Echo replies received by the ICMP check",
    ),
    (
        CHECK_PACKETS_DUPLICATES,
        "Duplicate echo replies received by the ICMP check (stays 0 for now: the ICMP \
         library drops a duplicate before anycastd sees it)",
    ),
    (
        CHECK_NTP_OFFSET,
        "ntp check: the server's clock minus this host's, from its last synchronised reply, in seconds",
    ),
    (
        CHECK_NTP_STRATUM,
        "ntp check: the stratum of the server's last valid reply (0 for a Kiss-o'-Death)",
    ),
    (
        CERTIFICATE_EXPIRES_IN,
        "Seconds until the checked certificate's notAfter; negative once expired",
    ),
    (
        CERTIFICATE_EXPIRES_IN_LEGACY,
        "Same as anycastd_certificate_expires_in_seconds (the Go daemon's name, kept for its dashboards)",
    ),
    (
        GOBGP_PEER_COUNT,
        "Total amount of peers configured for the GoBGP instance",
    ),
    (GOBGP_PEER_ADMIN_STATE, "Peer state 0=up, 1=down, 2=pfx_ct"),
    (GOBGP_PEER_FLOPS, "Peer flops count"),
    (GOBGP_PEER_OUT_QUEUE, "Peer outgoing messages queue"),
    (
        GOBGP_PEER_PASSWORD_SET,
        "Whether the peer has a password set (1) or not (0)",
    ),
    (
        GOBGP_PEER_REMOVE_PRIVATE,
        "Remove private AS setting of the peer: 0=none, 1=all, 2=replace",
    ),
    (
        GOBGP_PEER_SEND_COMMUNITY,
        "Send community flags of the peer",
    ),
    (
        GOBGP_PEER_SESSION_STATE,
        "Peer session state 0=unknown, 1=idle, 2=connect, 3=active, 4=opensent, 5=openconfirm, 6=established",
    ),
    (GOBGP_PEER_TYPE, "Peer type 0=internal, 1=external"),
    (
        GOBGP_PEER_BFD_SUPPORTED,
        "For a peer configured with BFD: 1 when gobgpd runs it (GoBGP 4.6 and later), 0 when it does not",
    ),
    (
        GOBGP_PEER_BFD_STATE,
        "BFD session state of a peer configured with BFD: 0=unknown, 1=admin down, 2=down, 3=init, 4=up",
    ),
    (
        GOBGP_PEER_BFD_SENT,
        "BFD control packets gobgpd sent to the peer (reset when gobgpd re-creates the BFD session)",
    ),
    (
        GOBGP_PEER_BFD_RECEIVED,
        "BFD control packets gobgpd received from the peer (reset when gobgpd re-creates the BFD session)",
    ),
    (
        GOBGP_RECEIVED_KEEPALIVE,
        "Number of Keepalive messages received from the peer",
    ),
    (
        GOBGP_RECEIVED_NOTIFICATION,
        "Number of Notification messages received from the peer",
    ),
    (
        GOBGP_RECEIVED_OPEN,
        "Number of Open messages received from the peer",
    ),
    (
        GOBGP_RECEIVED_REFRESH,
        "Number of Refresh messages received from the peer",
    ),
    (
        GOBGP_RECEIVED_TOTAL,
        "Total number of messages received from the peer",
    ),
    (
        GOBGP_RECEIVED_UPDATE,
        "Number of Update messages received from the peer",
    ),
    (
        GOBGP_RECEIVED_WITHDRAW_PREFIX,
        "Number of Withdraw Prefix messages received from the peer",
    ),
    (
        GOBGP_RECEIVED_WITHDRAW_UPDATE,
        "Number of Withdraw Update messages received from the peer",
    ),
    (
        GOBGP_SENT_KEEPALIVE,
        "Number of Keepalive messages sent to the peer",
    ),
    (
        GOBGP_SENT_NOTIFICATION,
        "Number of Notification messages sent to the peer",
    ),
    (GOBGP_SENT_OPEN, "Number of Open messages sent to the peer"),
    (
        GOBGP_SENT_REFRESH,
        "Number of Refresh messages sent to the peer",
    ),
    (
        GOBGP_SENT_TOTAL,
        "Total number of messages sent to the peer",
    ),
    (
        GOBGP_SENT_UPDATE,
        "Number of Update messages sent to the peer",
    ),
    (
        GOBGP_SENT_WITHDRAW_PREFIX,
        "Number of Withdraw Prefix messages sent to the peer",
    ),
    (
        GOBGP_SENT_WITHDRAW_UPDATE,
        "Number of Withdraw Update messages sent to the peer",
    ),
];

/// The help text of `name`.
pub fn help(name: &str) -> &'static str {
    HELP.iter().find(|(n, _)| *n == name).map_or("", |(_, h)| h)
}
