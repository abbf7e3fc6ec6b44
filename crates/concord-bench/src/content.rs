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
/// parsing; it runs for every frame received, so it neither allocates nor parses.
///
/// Both servers write `op` first and `t` before `d`. Concord's frames are matched
/// at fixed offsets: v1 `{"op":"DISPATCH","t":"NAME",…` and v2
/// `{"op":"DISPATCH","s":N,"t":"NAME",…`. Anything else falls back to the first
/// `"t":"` in the frame, the envelope's whenever `t` comes before `d`. A raw `"`
/// inside JSON is always a string delimiter (quotes in values are escaped), so the
/// match is a real `t` key, never text in a value.
pub(crate) fn event_name(frame: &str) -> Option<&str> {
    const V1: &str = r#"{"op":"DISPATCH","t":""#;
    const V2: &str = r#"{"op":"DISPATCH","s":"#;
    const KEY: &str = "\"t\":\"";
    let rest = if let Some(rest) = frame.strip_prefix(V1) {
        rest
    } else if let Some(rest) = frame.strip_prefix(V2).and_then(after_seq) {
        rest
    } else {
        let start = frame.find(KEY)? + KEY.len();
        &frame[start..]
    };
    let len = rest.find('"')?;
    Some(&rest[..len])
}

/// After a v2 dispatch's `"s":`: the text after `N,"t":"`, if that is what follows.
fn after_seq(text: &str) -> Option<&str> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    text[digits..].strip_prefix(r#","t":""#)
}

/// The value of the first `"key":"<value>"` string field in `frame` (`key` holds no
/// quotes). Allocation-free: it runs for every typing frame received.
pub(crate) fn string_field<'a>(frame: &'a str, key: &str) -> Option<&'a str> {
    if key.is_empty() {
        return None;
    }
    let mut from = 0;
    while let Some(at) = frame[from..].find(key) {
        let start = from + at;
        let end = start + key.len();
        if frame[..start].ends_with('"')
            && let Some(value) = frame[end..].strip_prefix(r#"":""#)
        {
            let len = value.find('"')?;
            return Some(&value[..len]);
        }
        from = end;
    }
    None
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
        assert_eq!(
            string_field(r#"{"user_id":5,"user_id":"u"}"#, "user_id"),
            Some("u")
        );
        assert_eq!(
            string_field(r#"{"xuser_id":"a","user_id":"b"}"#, "user_id"),
            Some("b")
        );
        assert_eq!(string_field(r#"{"user_id":"a"}"#, ""), None);
        assert_eq!(string_field(r#"{"user_id":"unterminated"#, "user_id"), None);
    }

    #[test]
    fn v2_dispatches_carry_a_sequence_number() {
        let marker = Marker::new("run2");
        let content = marker.encode(
            Stamp {
                seq: 8,
                sent_ns: 1_790_000_000_000_000_001,
            },
            60,
        );
        let frame = format!(
            r#"{{"op":"DISPATCH","s":5,"t":"MESSAGE_CREATE","d":{{"id":"x","content":"{content}"}}}}"#
        );
        assert_eq!(event_name(&frame), Some("MESSAGE_CREATE"));
        assert_eq!(
            marker.find(&frame),
            Some(Stamp {
                seq: 8,
                sent_ns: 1_790_000_000_000_000_001
            })
        );
        let typing = r#"{"op":"DISPATCH","s":18446744073709551615,"t":"TYPING_START","d":{"user_id":"u-2","channel_id":"c-1"}}"#;
        assert_eq!(event_name(typing), Some("TYPING_START"));
        assert_eq!(string_field(typing, "user_id"), Some("u-2"));
        assert_eq!(
            event_name(r#"{"op":"DISPATCH","s":1,"t":"READY","d":{"user":{}}}"#),
            Some("READY")
        );
        let presence = r#"{"op":"DISPATCH","s":12,"t":"PRESENCE_UPDATE","d":{"user_id":"u","custom_status":"bench:run2:3:4:"}}"#;
        assert_eq!(event_name(presence), Some("PRESENCE_UPDATE"));
        assert_eq!(marker.find(presence), Some(Stamp { seq: 3, sent_ns: 4 }));
    }

    #[test]
    fn v2_ops_without_an_event_name() {
        for frame in [
            r#"{"op":"HELLO","d":{"heartbeat_interval":30000,"session_id":"abc"}}"#,
            r#"{"op":"ERROR","d":{"code":"RATE_LIMITED","message":"say \"t\":\"x\"","retry_after":50}}"#,
            r#"{"op":"INVALID_SESSION","d":{"resumable":false}}"#,
            r#"{"op":"RECONNECT"}"#,
            r#"{"op":"HEARTBEAT_ACK"}"#,
        ] {
            assert_eq!(event_name(frame), None, "{frame}");
        }
    }

    #[test]
    fn other_key_orders_fall_back_to_a_scan() {
        assert_eq!(
            event_name(r#"{"t":"MESSAGE_CREATE","op":"DISPATCH","d":{}}"#),
            Some("MESSAGE_CREATE")
        );
        assert_eq!(
            event_name(r#"{"op":"DISPATCH","s":3,"d":null,"t":"RESUMED"}"#),
            Some("RESUMED")
        );
        assert_eq!(
            event_name(r#"{"op":"DISPATCH","s":,"t":"X"}"#),
            Some("X"),
            "a malformed s is scanned past"
        );
        assert_eq!(event_name(r#"{"op":"DISPATCH","t":"unterminated"#), None);
        assert_eq!(
            event_name(r#"{"op":"DISPATCH","s":2,"t":"unterminated"#),
            None
        );
    }
}
