//! `node-doctor checks` and `node-doctor explain ID`.

use super::Format;
use super::output::write_stdout;
use anyhow::bail;
use node_doctor_core::checks;
use serde_json::json;

pub fn list(format: Format) -> anyhow::Result<u8> {
    match format {
        Format::Human => {
            let width = checks::all().iter().map(|c| c.id.len()).max().unwrap_or(0);
            let mut out = String::new();
            for c in checks::all() {
                out.push_str(&format!("{:width$}  {}\n", c.id, c.title));
            }
            write_stdout(&out)?;
        }
        Format::Json => {
            let list: Vec<serde_json::Value> = checks::all()
                .iter()
                .map(|c| {
                    let settings: Vec<serde_json::Value> = c
                        .all_settings()
                        .map(|s| {
                            json!({
                                "key": s.key,
                                "type": s.default.type_name(),
                                "default": s.default.to_json(),
                                "help": s.help,
                            })
                        })
                        .collect();
                    json!({"id": c.id, "title": c.title, "settings": settings})
                })
                .collect();
            let mut s = serde_json::to_string_pretty(&json!({
                "schema": "node-doctor.checks/v1",
                "checks": list,
            }))?;
            s.push('\n');
            write_stdout(&s)?;
        }
    }
    Ok(super::EXIT_OK)
}

pub fn explain(id: &str) -> anyhow::Result<u8> {
    let doc = match checks::by_id(id) {
        Some(c) => c.doc,
        // Not a check but a finding id: the log monitor's.
        None if id == node_doctor_core::rules::LOG_MONITOR => {
            node_doctor_core::rules::LOG_MONITOR_DOC
        }
        None => bail!("unknown check id {id:?}; `node-doctor checks` lists them"),
    };
    write_stdout(doc)?;
    Ok(super::EXIT_OK)
}
