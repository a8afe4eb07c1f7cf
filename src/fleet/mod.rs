//! The fleet guard (SPEC 14): health-triggered withdrawals coordinated through etcd, so that
//! no prefix is ever withdrawn everywhere at once.
//!
//! - [`policy::Fleet`], the only owner of this site's claims and holds: the announcer tells
//!   it what it announces and asks it which leaving prefixes it may withdraw;
//! - [`claims::Claims`], the mechanism: the lease, the claims in etcd, the guarded release,
//!   the task that keeps them in step, and the [`view::FleetView`];
//! - [`guard`], the transaction that never leaves a prefix with fewer than `min_sites` other
//!   sites, over [`etcd`], a client that survives members that refuse or hang;
//! - [`decision`]: what a guarded release decided, and why.

pub mod claims;
pub mod decision;
pub mod etcd;
pub mod guard;
pub mod policy;
pub mod view;
