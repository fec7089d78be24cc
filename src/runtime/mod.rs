//! The operator process, apart from the reconcilers: wiring of the caches and controllers
//! ([`operator`]), the health and metrics server ([`server`]) and leader election ([`leader`]).

pub mod leader;
mod operator;
pub mod server;

pub use operator::run;
