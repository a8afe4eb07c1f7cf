//! GoBGP behind one interface: [`ops::Gobgp`], the operations anycastd needs, and the
//! types they speak; one module per API generation ([`v3`], [`v4`]); [`client::Client`], the
//! client of whichever one a gobgpd speaks.

pub mod client;
mod codec;
pub mod ops;
pub mod path_cache;
mod rpc;
pub mod v3;
pub mod v4;
