//! vds-proxy: inventory → plan → gather → diff → apply, for small proxy infrastructures.
//!
//! The pipeline, one module per step:
//! [`inventory`] (parse + validate) → [`plan`] (pure: desired resources per host, built by
//! the systems in [`roles`] from [`templates`]) → [`engine`] (gather over a [`transport`],
//! diff, apply, prune). The systems implement the traits of [`contract`], which sits below
//! both them and the engine; the one list of systems is [`systems`], handed down from
//! [`commands`]. Each verb is one module under [`commands`]; each resource kind one module
//! under [`resources`].

pub mod app;
pub mod cli;
pub mod commands;
pub mod contract;
pub mod engine;
pub mod inventory;
pub mod plan;
pub mod redact;
pub mod relay;
pub mod resources;
pub mod roles;
pub mod serve;
pub mod settings;
pub mod shell;
pub mod show;
pub mod templates;
pub mod transport;
