//! GoBGP behind one interface: [`ops::Gobgp`], the operations anycastd needs, and the
//! types they speak; one module per API generation ([`v3`]); [`client::Client`], the
//! client of whichever one a gobgpd speaks.

pub mod client;
pub mod ops;
pub mod path_cache;
pub mod v3;
