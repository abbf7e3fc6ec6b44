//! The configuration loader: any `concord.toml` text is read into a `Config` or refused
//! with an error that names what is wrong, and never panics; what is accepted prints
//! (its Debug form redacts secrets) without panicking either.

#![no_main]

use concord_server::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = std::env::temp_dir().join("concord-fuzz-config");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{}.toml", std::process::id()));
    if std::fs::write(&path, text).is_err() {
        return;
    }
    match Config::load(Some(&path), |_| None) {
        Ok(config) => {
            let _ = format!("{config:?}");
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
});
