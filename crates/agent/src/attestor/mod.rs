//! Workload attestors: what the agent can learn about a caller from the kernel, as selectors.
//!
//! Only the `unix` attestor exists so far; later ones (docker, k8s, systemd) add their
//! selectors to the same set.

pub(crate) mod unix;
