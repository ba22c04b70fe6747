//! The JSON contract (`node-doctor.check/v1`, docs/output.md).

use super::HostSection;
use crate::finding::{Finding, Unknown};
use serde::Serialize;

pub const CHECK_SCHEMA: &str = "node-doctor.check/v1";

#[derive(Serialize)]
pub struct CheckDocument<'a> {
    pub schema: &'static str,
    pub host: &'a HostSection,
    pub findings: &'a [Finding],
    pub unknown: &'a [Unknown],
}

pub fn render(host: &HostSection, findings: &[Finding], unknown: &[Unknown]) -> String {
    let doc = CheckDocument {
        schema: CHECK_SCHEMA,
        host,
        findings,
        unknown,
    };
    let mut s =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}
