//! The gateway's frame reader: WebSocket frames as a client could send them, read with
//! the codec settings every gateway socket uses (`codec_config`, here with a small
//! message limit so the size checks are reached) on the server side. Whatever arrives,
//! the reader yields messages or an error, never panics; every error maps to the close
//! the gateway sends (`read_error_close`), and every text message goes through the op
//! decoder as the session would.

#![no_main]

use std::io::{self, Cursor, Read, Write};

use concord_gateway::{codec_config, read_error_close};
use concord_protocol::ClientMessage;
use libfuzzer_sys::fuzz_target;
use tungstenite::{Message, WebSocket, protocol::Role};

/// Reads the fuzzer's bytes, swallows what the server writes back.
struct Wire {
    input: Cursor<Vec<u8>>,
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let wire = Wire {
        input: Cursor::new(data.to_vec()),
    };
    let mut socket = WebSocket::from_raw_socket(wire, Role::Server, Some(codec_config(4096)));
    // Every read consumes input or ends the loop, so this terminates.
    for _ in 0..data.len() + 2 {
        match socket.read() {
            Ok(Message::Text(text)) => {
                assert!(text.len() <= 4096, "a message over the limit got through");
                let _ = ClientMessage::parse(text.as_str());
            }
            Ok(Message::Binary(bytes)) => assert!(bytes.len() <= 4096),
            Ok(_) => {}
            Err(err) => {
                let _ = read_error_close(&err);
                break;
            }
        }
    }
});
