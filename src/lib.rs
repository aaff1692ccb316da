//! kprov: declarative, agentless provisioning of kubeadm Kubernetes clusters over SSH.
//!
//! The pipeline runs in one direction (see ARCHITECTURE.md):
//!
//! inventory → connect → facts → plan → apply → report
//!
//! - [`inventory`]: the YAML model, parsing with spans, validation with miette diagnostics, JSON schema.
//! - [`transport`]: the SSH client (russh): auth, known_hosts, jump hosts, exec, upload, become.
//! - [`kube_fields`]: the field sets of kubeadm's, the kubelet's and kube-proxy's config types (derived from upstream).
//! - [`kube_settings`]: the validated kubeadm, kubelet and kube-proxy settings and their serialization into kubeadm's documents.
//! - [`secret`]: the `Secret` wrapper that keeps tokens and passwords out of logs and plans.
//! - [`ops`]: every operation (reset, remove-node, upgrade, backup, the check after apply) as one engine: prepare, dry run, confirmation, run.
//! - [`cli`]: argument parsing and the subcommands; the only module that knows about terminals.

pub mod apply;
pub mod cli;
pub mod digest;
pub mod engine;
pub mod facts;
pub mod graph;
pub mod import;
pub mod inventory;
pub mod kube_fields;
pub mod kube_settings;
pub mod ops;
pub mod plan;
pub mod preflight;
pub mod resources;
pub mod roles;
pub mod sandbox;
pub mod secret;
pub mod shell;
pub mod transport;
pub mod wait;
