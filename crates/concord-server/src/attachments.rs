//! Message attachments outside the routes: where their bytes live, the signed links
//! that let a browser fetch them without an Authorization header (Concord X1), their
//! stored names, and the purge of files whose rows are gone (Concord X4).
//!
//! A link is `/files/<message_id>/<stored_name>?exp=<unix secs>&uid=<user>&sig=<mac>`:
//! HMAC-SHA256 over the message id, the stored name, the expiry and the user it was
//! issued to, keyed by a key derived from the server's signing secret (so it is not the
//! JWT key itself). The link grants nothing on its own: the user it names must still
//! exist, not be disabled, and may VIEW the channel when it is used.

use std::{sync::Arc, time::Duration};

use base64::Engine;
use concord_protocol::{MessageId, Timestamp, UserId};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{files::FileStore, state::AppState};

/// How long a signed link works.
pub const LINK_TTL: Duration = Duration::from_secs(60 * 60);

/// Purges read per store call.
const PURGE_BATCH: i64 = 100;

/// The attachment files and the key of their links.
#[derive(Clone)]
pub struct Attachments {
    /// The bytes, under `<message_id>/<stored_name>` (`<data_dir>/attachments/`).
    pub files: Arc<dyn FileStore>,
    link_key: Arc<[u8; 32]>,
}

impl std::fmt::Debug for Attachments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachments").finish_non_exhaustive()
    }
}

/// The query of a signed link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkQuery {
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// The user the link was issued to.
    pub uid: UserId,
    /// The MAC, unpadded base64url.
    pub sig: String,
}

impl LinkQuery {
    /// The link's query from a raw query string; `None` when a part is missing or
    /// malformed.
    pub fn parse(query: &str) -> Option<Self> {
        let (mut exp, mut uid, mut sig) = (None, None, None);
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "exp" => exp = value.parse::<i64>().ok(),
                "uid" => uid = value.parse::<UserId>().ok(),
                "sig" => sig = Some(value.into_owned()),
                _ => {}
            }
        }
        Some(Self {
            exp: exp?,
            uid: uid?,
            sig: sig?,
        })
    }
}

impl Attachments {
    /// Attachment files in `files`, links keyed from `secret` (the signing secret).
    pub fn new(files: Arc<dyn FileStore>, secret: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"concord attachment links v1");
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        Self {
            files,
            link_key: Arc::new(key),
        }
    }

    fn mac(&self, message: MessageId, stored_name: &str, exp: i64, user: UserId) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.link_key[..]).expect("HMAC takes any key length");
        // Fixed-length fields first; the name, which cannot hold a newline, last.
        mac.update(message.get().as_bytes());
        mac.update(user.get().as_bytes());
        mac.update(&exp.to_be_bytes());
        mac.update(stored_name.as_bytes());
        mac
    }

    /// The signed URL of an attachment for `user`, valid until `now` + [`LINK_TTL`].
    pub fn url(
        &self,
        message: MessageId,
        stored_name: &str,
        user: UserId,
        now: Timestamp,
    ) -> String {
        let exp = now.as_micros() / 1_000_000 + LINK_TTL.as_secs() as i64;
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            self.mac(message, stored_name, exp, user)
                .finalize()
                .into_bytes(),
        );
        format!(
            "/files/{message}/{}?exp={exp}&uid={user}&sig={sig}",
            encode_segment(stored_name)
        )
    }

    /// Whether `link` was issued by this server for this file and is unexpired at `now`.
    pub fn verify(
        &self,
        message: MessageId,
        stored_name: &str,
        link: &LinkQuery,
        now: Timestamp,
    ) -> bool {
        if link.exp < now.as_micros() / 1_000_000 {
            return false;
        }
        let Ok(sig) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&link.sig) else {
            return false;
        };
        self.mac(message, stored_name, link.exp, link.uid)
            .verify_slice(&sig)
            .is_ok()
    }
}

/// The file store path of an attachment.
pub fn file_path(message: MessageId, stored_name: &str) -> String {
    format!("{message}/{stored_name}")
}

/// Percent-encodes everything in a path segment but ASCII letters, digits, `.`, `_`, `-`.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Most characters of the safe part of a stored name.
const SAFE_NAME_CHARS: usize = 128;
/// Most bytes of it (file systems allow 255 per name; the prefix takes 33).
const SAFE_NAME_BYTES: usize = 200;

/// The stored name of an upload: `<32 hex>_<safe name>`, the safe name being the
/// original with every character but Unicode letters and digits, `.`, `_` and `-`
/// turned into `_`, cut to 128 characters (and 200 bytes), `file` when empty.
pub fn stored_name(original: &str) -> String {
    let mut safe = String::new();
    for c in original.chars().take(SAFE_NAME_CHARS) {
        let c = if c.is_alphanumeric() || matches!(c, '.' | '_' | '-') {
            c
        } else {
            '_'
        };
        if safe.len() + c.len_utf8() > SAFE_NAME_BYTES {
            break;
        }
        safe.push(c);
    }
    if safe.is_empty() {
        safe.push_str("file");
    }
    format!("{}_{safe}", uuid::Uuid::new_v4().simple())
}

/// Deletes the files whose attachment rows are gone, as the store's purge journal
/// lists them, and forgets each purge once its file is gone. A failure is logged and
/// the purge kept for the next run. Called after every delete that can take
/// attachments with it, and at start.
pub async fn purge_files(state: &AppState) {
    loop {
        let purges = match state.store.file_purges(PURGE_BATCH).await {
            Ok(purges) => purges,
            Err(err) => {
                tracing::error!(error = %err, "attachment purges not read");
                return;
            }
        };
        let mut done = Vec::with_capacity(purges.len());
        for purge in &purges {
            let path = file_path(purge.message_id, &purge.stored_name);
            match state.attachments.files.remove(&path).await {
                Ok(_) => done.push(purge.seq),
                Err(err) => tracing::error!(%path, error = %err, "attachment file not deleted"),
            }
        }
        if !done.is_empty()
            && let Err(err) = state.store.forget_file_purges(&done).await
        {
            tracing::error!(error = %err, "attachment purges not forgotten");
            return;
        }
        if (purges.len() as i64) < PURGE_BATCH || done.is_empty() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::LocalFileStore;

    fn attachments() -> Attachments {
        let dir = std::env::temp_dir().join(format!("concord-links-{}", uuid::Uuid::new_v4()));
        Attachments::new(
            Arc::new(LocalFileStore::open(&dir).unwrap()),
            b"a secret of some length",
        )
    }

    fn query_of(url: &str) -> LinkQuery {
        LinkQuery::parse(url.split_once('?').unwrap().1).unwrap()
    }

    #[test]
    fn links_verify_only_for_their_file_user_and_time() {
        let a = attachments();
        let (m, user) = (MessageId::new(), UserId::new());
        let now = Timestamp::from_micros(1_700_000_000_000_000);
        let url = a.url(m, "abc_x.png", user, now);
        assert!(
            url.starts_with(&format!("/files/{m}/abc_x.png?exp=")),
            "{url}"
        );
        let link = query_of(&url);
        assert_eq!(link.uid, user);
        assert!(a.verify(m, "abc_x.png", &link, now));
        // Expired, other file, other message, other user, other expiry, other key.
        let later = Timestamp::from_micros(now.as_micros() + 3601 * 1_000_000);
        assert!(!a.verify(m, "abc_x.png", &link, later));
        assert!(!a.verify(m, "abc_y.png", &link, now));
        assert!(!a.verify(MessageId::new(), "abc_x.png", &link, now));
        let other_user = LinkQuery {
            uid: UserId::new(),
            ..link.clone()
        };
        assert!(!a.verify(m, "abc_x.png", &other_user, now));
        let longer = LinkQuery {
            exp: link.exp + 1000,
            ..link.clone()
        };
        assert!(!a.verify(m, "abc_x.png", &longer, now));
        let files = Arc::clone(&a.files);
        let other_key = Attachments::new(files, b"another secret of some length");
        assert!(!other_key.verify(m, "abc_x.png", &link, now));
        let garbage = LinkQuery {
            sig: "!!".to_owned(),
            ..link
        };
        assert!(!a.verify(m, "abc_x.png", &garbage, now));
        assert_eq!(LinkQuery::parse("exp=1&uid=nope&sig=x"), None);
        assert_eq!(LinkQuery::parse("exp=1&sig=x"), None);
    }

    #[test]
    fn stored_names_are_safe_and_bounded() {
        let check = |original: &str, safe: &str| {
            let name = stored_name(original);
            let (prefix, rest) = name.split_once('_').unwrap();
            assert_eq!(prefix.len(), 32);
            assert!(prefix.chars().all(|c| c.is_ascii_hexdigit()));
            assert_eq!(rest, safe, "{original}");
        };
        check("photo 1.png", "photo_1.png");
        check("../../etc/passwd", ".._.._etc_passwd");
        check("résumé.pdf", "résumé.pdf");
        check("", "file");
        check("a\"b\r\n<c>.txt", "a_b___c_.txt");
        check(&"x".repeat(300), &"x".repeat(128));
        let wide = "\u{4E2D}".repeat(128);
        let name = stored_name(&wide);
        assert!(name.len() <= 33 + 200, "{}", name.len());
        assert_eq!(encode_segment("a b/é"), "a%20b%2F%C3%A9");
    }
}
