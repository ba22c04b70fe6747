//! Writing what node-doctor produces: reports to stdout, snapshots to files, without
//! clobbering. A regular file (or a new path) is replaced atomically through a temporary
//! file of a unique name in the same directory; a device, FIFO or `-` is written through; a
//! symlink is followed to its target; a directory, a full disk or a FIFO without a reader
//! fail clearly, leaving nothing behind.

use anyhow::{Context, bail};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Writes a report to stdout as `render` produces it, through one 64 KiB buffer (stdout's own
/// line buffering would make a syscall per line of pretty JSON). A closed pipe (`| head`) is
/// not a tool failure.
pub fn stream_stdout(
    render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    if let Err(e) = render(&mut out).and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e).context("writing the report");
    }
    Ok(())
}

/// Writes a report to stdout. A closed pipe (`| head`) is not a tool failure.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e).context("writing the report");
    }
    Ok(())
}

/// Follows symlinks (even dangling ones) to the path that would be written.
fn resolve(path: &Path) -> anyhow::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(p),
        }
    }
    bail!("too many levels of symbolic links")
}

pub fn write_output(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(bytes)
            .and_then(|_| out.flush())
            .context("writing to standard output");
    }
    let target = resolve(path)?;
    match std::fs::metadata(&target) {
        Ok(m) if m.is_dir() => bail!("{} is a directory", target.display()),
        Ok(m) if m.is_file() => write_atomically(&target, bytes),
        Ok(m) => {
            let t = m.file_type();
            if !(t.is_char_device() || t.is_block_device() || t.is_fifo()) {
                bail!(
                    "{} is neither a regular file nor a device",
                    target.display()
                );
            }
            // Through the device; O_NONBLOCK so a FIFO without a reader fails (ENXIO)
            // instead of blocking.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
                .open(&target)
                .with_context(|| format!("opening {}", target.display()))?;
            f.write_all(bytes)
                .and_then(|_| f.flush())
                .with_context(|| format!("writing {}", target.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_atomically(&target, bytes),
        Err(e) => Err(e).with_context(|| format!("{}", target.display())),
    }
}

fn write_atomically(target: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "snapshot".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, target)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp); // best effort: it may not have been created
        return Err(e).with_context(|| format!("writing {}", target.display()));
    }
    Ok(())
}
