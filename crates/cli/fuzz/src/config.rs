//! `crate::config` of the `lanyard` binary, reduced to the HCL parser's files.

#[path = "../../src/config/error.rs"]
pub(crate) mod error;
#[path = "../../src/config/hcl.rs"]
pub(crate) mod hcl;
#[path = "../../src/config/hcl1.rs"]
mod hcl1;
#[path = "../../src/config/hcl1_lex.rs"]
mod hcl1_lex;
#[path = "../../src/config/hcl_shape.rs"]
pub(crate) mod hcl_shape;

pub(crate) use error::clip;
