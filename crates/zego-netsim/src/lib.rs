//! A UDP impairment relay for tests and benchmarks.
//!
//! The relay sits between WebRTC clients and a server's media UDP port. Clients send to
//! [`NetSimHandle::local_addr`]; for each client address the relay opens its own loopback socket towards the
//! server, so the server sees one distinct address per client and its replies find their way back. Each
//! direction applies an [`Impairment`]: delay, jitter, random and bursty loss, reordering, duplication and a
//! rate cap with a bounded queue, all in user space.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use zego_netsim::{Direction, Impairment, NetSim};
//!
//! let relay = NetSim::new("127.0.0.1:0".parse().unwrap(), "127.0.0.1:5000".parse().unwrap())
//!     .up("delay=50ms,jitter=10ms,loss=10%".parse().unwrap())
//!     .seed(7)
//!     .start()
//!     .await?;
//! println!("announce {} to clients", relay.local_addr());
//! relay
//!     .set_impairment(Direction::Down, "rate=1mbit,queue=100ms".parse().unwrap())
//!     .unwrap();
//! println!("{}", relay.stats());
//! relay.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Everything is bound on loopback; the relay refuses other addresses.

#![warn(missing_docs)]

mod impairment;
mod link;
mod relay;
mod stats;

pub use impairment::{GilbertElliott, Impairment, ImpairmentError, QueueLimit, DEFAULT_QUEUE};
pub use link::{Admission, Link, DEFAULT_MAX_HELD_BYTES, REORDER_MAX_HOLD};
pub use relay::{start, Direction, NetSim, NetSimHandle};
pub use stats::{DirectionStats, NetSimStats};
