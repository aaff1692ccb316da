//! Shared helpers for end-to-end tests: real SSH nodes in Docker (nodes.rs) and the local apt
//! repository with Kubernetes test doubles (apt_repo.rs).
#![allow(dead_code)]

pub mod apt_repo;
pub mod cli;
pub mod nodes;
