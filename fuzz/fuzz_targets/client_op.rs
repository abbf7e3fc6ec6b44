//! The gateway's client-op decoder, v1 and v2 alike (one parser serves both; v2 adds
//! IDENTIFY and RESUME with intents): any text a client may send decodes or is refused
//! with an error that has a v2 code, and never panics. IDENTIFY and RESUME, once
//! decoded, survive a round trip through their own encoding unchanged.

#![no_main]

use concord_protocol::ClientMessage;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ClientMessage::parse(text) {
        Ok(ClientMessage::Identify(identify)) => {
            let again = json!({"op": "IDENTIFY", "d": identify}).to_string();
            match ClientMessage::parse(&again) {
                Ok(ClientMessage::Identify(back)) => assert_eq!(back, identify),
                other => panic!("IDENTIFY did not round-trip: {again} -> {other:?}"),
            }
        }
        Ok(ClientMessage::Resume(resume)) => {
            let again = json!({"op": "RESUME", "d": resume}).to_string();
            match ClientMessage::parse(&again) {
                Ok(ClientMessage::Resume(back)) => assert_eq!(back, resume),
                other => panic!("RESUME did not round-trip: {again} -> {other:?}"),
            }
        }
        Ok(_) => {}
        Err(err) => {
            let _ = err.code();
            let _ = err.to_string();
        }
    }
});
