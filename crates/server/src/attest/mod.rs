//! Node attestors besides join tokens (which live with the agent API because they are rows of
//! the datastore). Each one turns what an agent presents into an agent ID and node selectors;
//! the agent API records the agent and signs its SVID.

mod leaf;
mod pop;
mod template;
mod x509pop;

pub use template::{AgentPathTemplate, TemplateError};
pub(crate) use x509pop::{AttestError, Pending};
pub use x509pop::{DEFAULT_MAX_INTERMEDIATES, X509POP, X509popConfig, X509popConfigError};
