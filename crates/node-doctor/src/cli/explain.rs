//! `node-doctor checks` and `node-doctor explain ID`.

use anyhow::bail;
use node_doctor::checks;

pub fn list() -> anyhow::Result<u8> {
    let width = checks::all().iter().map(|c| c.id.len()).max().unwrap_or(0);
    for c in checks::all() {
        println!("{:width$}  {}", c.id, c.title);
    }
    Ok(super::EXIT_OK)
}

pub fn explain(id: &str) -> anyhow::Result<u8> {
    let Some(c) = checks::by_id(id) else {
        bail!("unknown check id {id:?}; `node-doctor checks` lists them");
    };
    print!("{}", c.doc);
    Ok(super::EXIT_OK)
}
