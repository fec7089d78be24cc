//! The operator process, apart from the reconcilers: wiring of the caches and controllers
//! ([`operator`]), the health and metrics server ([`server`]) leader election ([`leader`]), and the
//! in-cluster trigger watcher process ([`watch_trigger`]).

pub mod leader;
mod operator;
pub mod server;
pub mod watch_trigger;

pub use operator::run;
