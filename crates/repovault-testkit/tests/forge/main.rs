//! The forge simulator against real clients: an HTTPS client for the REST API, git and
//! git-lfs for repositories, python-github-backup as a third-party GitHub client.

mod api;
mod app;
mod binary;
mod git;
mod limits;
mod mutations;
mod support;
mod third_party;
