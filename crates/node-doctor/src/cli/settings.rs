//! `--config FILE` and `--set CHECK.KEY=VALUE` into one [`Config`].

use super::SettingsArgs;
use anyhow::Context;
use node_doctor_core::config::{Config, Format};

/// Most bytes of a config file read: a config is small; a huge one is a mistake.
const MAX_CONFIG: u64 = 4 << 20;

pub fn load(args: &SettingsArgs, extra: &[String]) -> anyhow::Result<Config> {
    let mut cfg = match &args.config {
        None => Config::default(),
        Some(path) => {
            let name = path.display().to_string();
            let text = read_small_file(path, MAX_CONFIG)
                .with_context(|| format!("{name}: cannot read the config"))?;
            Config::parse(&name, &text, Format::of_path(&name))?
        }
    };
    for s in args.set.iter().chain(extra) {
        cfg.set(s)?;
    }
    Ok(cfg)
}

/// A user's file (config, rules, snapshot): regular files only, so a FIFO given by mistake
/// fails at once instead of blocking, and capped.
pub fn read_small_file(path: &std::path::Path, cap: u64) -> anyhow::Result<String> {
    let bytes = read_user_file(path, cap)?;
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("not UTF-8 text"))
}

pub fn read_user_file(path: &std::path::Path, cap: u64) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        anyhow::bail!("not a regular file");
    }
    if meta.len() > cap {
        anyhow::bail!("larger than {cap} bytes");
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    f.take(cap.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        anyhow::bail!("larger than {cap} bytes");
    }
    Ok(buf)
}
