//! voltfleet's CloudFormation stacks, checked and deployed in order: `stacks.json` lists them,
//! an environment file gives their parameters, and each stack's outputs feed the parameters of
//! the stacks after it.

pub mod config;
pub mod deploy;
pub mod plan;
pub mod problem;
pub mod status;
pub mod template;
pub mod validate;
