//! IP allowlists for bot credentials: the one CIDR type of the workspace.

pub use keyfence_types::net::{BadCidr, Cidr};
