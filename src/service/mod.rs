//! Services: rounds of checks ([`rounds`]), the rise/fall state machine ([`health`]), and
//! the gate from the services' states to the desired state of every prefix ([`gate`]).

pub mod gate;
pub mod health;
pub mod rounds;
