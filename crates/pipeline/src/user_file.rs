//! Files a config names (itself, certificates, credentials): read whole, but never more than
//! a limit, so that a path to a device or a runaway file is an error naming it instead of a
//! process that reads until memory runs out.

use std::io::{self, Read};
use std::path::Path;

/// Far above any config, certificate bundle or credentials file.
pub const MAX_BYTES: u64 = 16 << 20;

/// The file's bytes; an `InvalidData` error past [`MAX_BYTES`].
pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {} MiB", MAX_BYTES >> 20),
        ));
    }
    Ok(bytes)
}

/// [`read`] for a text file; an `InvalidData` error when it is not UTF-8.
pub fn read_text(path: impl AsRef<Path>) -> io::Result<String> {
    String::from_utf8(read(path)?).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not UTF-8 text ({})", e.utf8_error()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn an_endless_file_is_refused() {
        let e = read("/dev/zero").expect_err("endless");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(e.to_string(), "larger than 16 MiB");
    }

    #[test]
    fn text_must_be_utf8() {
        let path = std::env::temp_dir().join(format!("redline-user-file-{}", std::process::id()));
        std::fs::write(&path, b"ok \xff").expect("temp file");
        let e = read_text(&path).expect_err("not UTF-8");
        assert!(e.to_string().starts_with("not UTF-8 text"), "{e}");
        std::fs::write(&path, "ok").expect("temp file");
        assert_eq!(read_text(&path).expect("text"), "ok");
        let _ = std::fs::remove_file(&path);
    }
}
