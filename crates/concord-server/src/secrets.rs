//! Secrets generated on first run and kept in the data directory.

use std::{io::Write, path::Path};

use rand::RngCore;

/// Reads `<data_dir>/jwt.secret`, creating it (random, 0600) on first run.
///
/// # Errors
/// I/O errors reading or creating the file.
pub fn jwt_secret(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join("jwt.secret");
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => return Ok(text.trim().to_string()),
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} holds fewer than 32 characters",
                path.display()
            )));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path)?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_once_then_kept() {
        let dir = std::env::temp_dir().join(format!("concord-secret-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = super::jwt_secret(&dir).unwrap();
        assert_eq!(first.len(), 96);
        assert_eq!(super::jwt_secret(&dir).unwrap(), first);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
