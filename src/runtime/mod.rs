//! What a controller process needs.

pub mod client_args;
pub mod crds;
pub mod health;
pub mod kubeconfig;
pub mod leader;
pub mod policy_events;
pub mod shutdown;
