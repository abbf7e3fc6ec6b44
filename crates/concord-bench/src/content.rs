//! What the bench writes into messages and presence text, and how receivers find it
//! again in a raw gateway frame without parsing the whole JSON document.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock nanoseconds since the Unix epoch. Wall time rather than a monotonic
/// clock because the stamp crosses process boundaries (`--procs`), and every process
/// on the box reads the same clock.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The stamp carried by one bench message: its sequence number in the run and the
/// sender's clock when it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) seq: u64,
    pub(crate) sent_ns: u64,
}

/// `bench:<run id>:` — the run id makes frames of other runs (or of other traffic on
/// a shared server) invisible to this run.
#[derive(Debug, Clone)]
pub(crate) struct Marker {
    prefix: String,
}

impl Marker {
    pub(crate) fn new(run_id: &str) -> Self {
        Self {
            prefix: format!("bench:{run_id}:"),
        }
    }

    /// `bench:<run>:<seq>:<sent_ns>:` padded with `x` to `size` bytes (never cut
    /// below the stamp itself).
    pub(crate) fn encode(&self, stamp: Stamp, size: usize) -> String {
        let mut text = format!("{}{}:{}:", self.prefix, stamp.seq, stamp.sent_ns);
        if text.len() < size {
            let pad = size - text.len();
            text.extend(std::iter::repeat_n('x', pad));
        }
        text
    }

    /// Finds this run's stamp anywhere in `text` (a whole frame or a field value).
    pub(crate) fn find(&self, text: &str) -> Option<Stamp> {
        let start = text.find(&self.prefix)? + self.prefix.len();
        let rest = &text[start..];
        let (seq, rest) = leading_number(rest)?;
        let rest = rest.strip_prefix(':')?;
        let (sent_ns, rest) = leading_number(rest)?;
        // The stamp always ends with ':'; anything else is a foreign look-alike.
        rest.starts_with(':').then_some(Stamp { seq, sent_ns })
    }
}

fn leading_number(text: &str) -> Option<(u64, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 20 {
        return None;
    }
    let value = text[..digits].parse().ok()?;
    Some((value, &text[digits..]))
}

/// The event name of a dispatch frame (`"t":"NAME"`), found by scanning rather than
/// parsing. Both servers write `op` and `t` before `d`, so the first `"t":"` is the
/// envelope's.
pub(crate) fn event_name(frame: &str) -> Option<&str> {
    const KEY: &str = "\"t\":\"";
    let start = frame.find(KEY)? + KEY.len();
    let len = frame[start..].find('"')?;
    Some(&frame[start..start + len])
}

/// The value of the first `"key":"<value>"` string field in `frame`.
pub(crate) fn string_field<'a>(frame: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!("\"{key}\":\"");
    let start = frame.find(&needle)? + needle.len();
    let len = frame[start..].find('"')?;
    Some(&frame[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_find_round_trips() {
        let marker = Marker::new("r1a2");
        let stamp = Stamp {
            seq: 42,
            sent_ns: 1_790_000_000_123_456_789,
        };
        let text = marker.encode(stamp, 100);
        assert_eq!(text.len(), 100);
        assert!(text.starts_with("bench:r1a2:42:1790000000123456789:xx"));
        assert_eq!(marker.find(&text), Some(stamp));
    }

    #[test]
    fn short_size_keeps_the_whole_stamp() {
        let marker = Marker::new("abc");
        let stamp = Stamp { seq: 7, sent_ns: 9 };
        assert_eq!(marker.encode(stamp, 3), "bench:abc:7:9:");
    }

    #[test]
    fn finds_the_stamp_inside_a_frame() {
        let marker = Marker::new("run9");
        let content = marker.encode(
            Stamp {
                seq: 3,
                sent_ns: 55,
            },
            40,
        );
        let frame = format!(
            r#"{{"op":"DISPATCH","t":"MESSAGE_CREATE","d":{{"id":"x","content":"{content}","deleted":false}}}}"#
        );
        assert_eq!(event_name(&frame), Some("MESSAGE_CREATE"));
        assert_eq!(
            marker.find(&frame),
            Some(Stamp {
                seq: 3,
                sent_ns: 55
            })
        );
    }

    #[test]
    fn ignores_other_runs_and_malformed_stamps() {
        let marker = Marker::new("mine");
        let other = Marker::new("theirs").encode(Stamp { seq: 1, sent_ns: 2 }, 30);
        assert_eq!(marker.find(&other), None);
        assert_eq!(marker.find("bench:mine:1:2"), None, "no closing colon");
        assert_eq!(marker.find("bench:mine::2:"), None, "empty seq");
        assert_eq!(marker.find("bench:mine:1x:2:"), None);
        assert_eq!(marker.find("bench:mine:99999999999999999999999:2:"), None);
        assert_eq!(marker.find("hello"), None);
    }

    #[test]
    fn event_name_and_fields() {
        let frame = r#"{"op":"DISPATCH","t":"TYPING_START","d":{"user_id":"u-1","username":"b","channel_id":"c-1"}}"#;
        assert_eq!(event_name(frame), Some("TYPING_START"));
        assert_eq!(string_field(frame, "user_id"), Some("u-1"));
        assert_eq!(string_field(frame, "channel_id"), Some("c-1"));
        assert_eq!(string_field(frame, "missing"), None);
        assert_eq!(event_name(r#"{"op":"HEARTBEAT_ACK"}"#), None);
    }
}
