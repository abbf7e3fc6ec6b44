//! What a new password must be: 8–128 characters (checked with the other fields), not
//! only whitespace, not the username, and not one of the 5,000 most common passwords of
//! eight characters or more.
//!
//! The list (`common_passwords.txt`, lowercased, one per line) is the head of the
//! `passwords` frequency list of zxcvbn 4.5.0 (MIT License, Copyright (c) 2016 Daniel
//! Wolf), keeping the entries of at least eight characters in frequency order. It is
//! compared case-insensitively: `Password1` is as guessable as `password1`.

use std::{collections::HashSet, sync::LazyLock};

static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common_passwords.txt").lines().collect());

/// Why a password is refused (the text goes to the client).
pub fn refusal(password: &str, username: &str) -> Option<&'static str> {
    if password.trim().is_empty() {
        return Some("Password must not be only whitespace");
    }
    let lower = password.to_lowercase();
    if lower == username.to_lowercase() {
        return Some("Password must not be the username");
    }
    if COMMON.contains(lower.as_str()) {
        return Some("Password is too common; choose another");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_loaded_lowercase_and_long_enough() {
        assert!(COMMON.len() >= 4900, "{}", COMMON.len());
        assert!(COMMON.iter().all(|p| p.chars().count() >= 8));
        assert!(COMMON.iter().all(|p| *p == p.to_lowercase()));
    }

    #[test]
    fn weak_passwords_are_refused_and_ordinary_ones_pass() {
        assert!(refusal("        ", "alice").is_some());
        assert!(refusal("\t\n  \t\n  ", "alice").is_some());
        assert!(refusal("alice_the_great", "alice_the_great").is_some());
        assert!(refusal("Alice_The_Great", "alice_the_great").is_some());
        for common in [
            "password",
            "12345678",
            "Password1",
            "QWERTYUIOP",
            "iloveyou",
        ] {
            assert!(refusal(common, "alice").is_some(), "{common}");
        }
        for fine in [
            "correct horse battery",
            "vX9#qu!7Lm",
            "alice-is-my-friend-2026",
        ] {
            assert_eq!(refusal(fine, "alice"), None, "{fine}");
        }
    }
}
