//! The type of an uploaded file, recognised from its bytes (`rest-extras.md` §8.1): the
//! declared type and the file name are never looked at.
//!
//! Known signatures are checked on the first [`HEAD_BYTES`] bytes. Bytes with no known
//! signature are `text/plain` when the whole file is valid UTF-8, except text that
//! starts (after white space) with an HTML tag, `<?xml` or `#!`, which is refused: a
//! browser or a shell could take it for something else. [`Sniffer`] reads the file
//! chunk by chunk, keeping only the first bytes and at most three bytes of an
//! unfinished UTF-8 sequence, so its memory does not grow with the file.

use crate::routes::emojis::sniff_image_type;

/// How many leading bytes the signatures need.
pub const HEAD_BYTES: usize = 512;

/// The types an attachment may have.
pub const ALLOWED: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "video/mp4",
    "video/webm",
    "audio/mpeg",
    "audio/ogg",
    "audio/webm",
    "application/pdf",
    "text/plain",
];

/// What the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// A type (allowed or not: see [`ALLOWED`]).
    Type(&'static str),
    /// No known signature and not UTF-8 text.
    Unknown,
}

/// Recognises a file's type as its bytes stream past.
#[derive(Debug, Default)]
pub struct Sniffer {
    head: Vec<u8>,
    /// The bytes of a UTF-8 sequence cut by the end of the last chunk.
    carry: Vec<u8>,
    utf8: bool,
    started: bool,
}

impl Sniffer {
    /// A sniffer that has seen nothing.
    pub fn new() -> Self {
        Self {
            utf8: true,
            ..Self::default()
        }
    }

    /// Looks at the next chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.started |= !chunk.is_empty();
        if self.head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        if !self.utf8 {
            return;
        }
        let mut rest = chunk;
        if !self.carry.is_empty() {
            // Complete the cut sequence with at most three more bytes.
            let need = (4 - self.carry.len()).min(rest.len());
            let mut joined = self.carry.clone();
            joined.extend_from_slice(&rest[..need]);
            match std::str::from_utf8(&joined) {
                Ok(_) => {
                    self.carry.clear();
                    rest = &rest[need..];
                }
                Err(err) if err.valid_up_to() > 0 => {
                    // The cut sequence ended inside `joined`: skip the bytes it used.
                    let used = err.valid_up_to() - self.carry.len();
                    self.carry.clear();
                    rest = &rest[used..];
                }
                Err(err) if err.error_len().is_none() => {
                    // Still cut: only possible when `rest` was shorter than needed.
                    self.carry = joined;
                    return;
                }
                Err(_) => {
                    self.utf8 = false;
                    return;
                }
            }
        }
        match std::str::from_utf8(rest) {
            Ok(_) => {}
            Err(err) if err.error_len().is_none() => {
                self.carry = rest[err.valid_up_to()..].to_vec();
            }
            Err(_) => self.utf8 = false,
        }
    }

    /// The type of everything fed so far (the whole file, once it has all passed).
    pub fn finish(&self) -> Sniffed {
        let head = &self.head[..];
        if let Some(image) = sniff_image_type(head) {
            return Sniffed::Type(image);
        }
        if let Some(known) = binary_type(head) {
            return Sniffed::Type(known);
        }
        if !self.started || !self.utf8 || !self.carry.is_empty() {
            return Sniffed::Unknown;
        }
        Sniffed::Type(text_type(head))
    }
}

/// The type of a file with a known binary signature (allowed or not).
fn binary_type(head: &[u8]) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if at(4, b"ftyp") {
        // ISO base media: `M4A ` is audio, QuickTime is its own type; the rest
        // (isom, mp41, mp42, avc1, …) is MP4 video.
        return Some(match head.get(8..12) {
            Some(b"M4A ") => "audio/mp4",
            Some(b"qt  ") => "video/quicktime",
            _ => "video/mp4",
        });
    }
    if at(0, b"\x1A\x45\xDF\xA3") {
        return Some(ebml_type(head));
    }
    if at(0, b"ID3")
        || (head.len() >= 2 && head[0] == 0xFF && matches!(head[1] & 0xE6, 0xE2 | 0xE4 | 0xE6))
    {
        // An ID3 tag, or an MPEG audio frame header (sync bits, layer I-III).
        return Some("audio/mpeg");
    }
    if at(0, b"OggS") {
        return Some("audio/ogg");
    }
    if at(0, b"%PDF-") {
        return Some("application/pdf");
    }
    // Common types that are not allowed, named in the refusal.
    let refused: &[(&[u8], &str)] = &[
        (b"PK\x03\x04", "application/zip"),
        (b"\x1F\x8B", "application/gzip"),
        (b"\x7FELF", "application/x-executable"),
        (b"MZ", "application/x-msdownload"),
        (b"Rar!\x1A\x07", "application/vnd.rar"),
        (b"7z\xBC\xAF\x27\x1C", "application/x-7z-compressed"),
        (b"RIFF", "application/octet-stream"),
    ];
    refused
        .iter()
        .find(|(magic, _)| at(0, magic))
        .map(|(_, kind)| *kind)
}

/// WebM audio when the EBML header's first tracks say so is beyond a header sniff: a
/// WebM file is `video/webm` unless it holds no video track marker in its first bytes
/// and an audio codec id (`A_OPUS`, `A_VORBIS`) instead.
fn ebml_type(head: &[u8]) -> &'static str {
    let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    if !has(b"webm") {
        return "video/x-matroska";
    }
    let video = has(b"V_VP8") || has(b"V_VP9") || has(b"V_AV1");
    let audio = has(b"A_OPUS") || has(b"A_VORBIS");
    if audio && !video {
        "audio/webm"
    } else {
        "video/webm"
    }
}

/// `text/plain`, or the type of text that must not pass as plain text.
fn text_type(head: &[u8]) -> &'static str {
    let start = head
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0C'))
        .unwrap_or(head.len());
    // A byte order mark before the text does not hide it.
    let text = head[start..]
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(&head[start..]);
    if text.starts_with(b"#!") {
        return "text/x-shellscript";
    }
    if text.starts_with(b"<?xml") {
        return "text/xml";
    }
    // The HTML patterns of the WHATWG MIME sniffing standard: the tag name, case
    // insensitive, followed by a space or `>`.
    const TAGS: &[&[u8]] = &[
        b"<!DOCTYPE HTML",
        b"<HTML",
        b"<HEAD",
        b"<SCRIPT",
        b"<IFRAME",
        b"<H1",
        b"<DIV",
        b"<FONT",
        b"<TABLE",
        b"<A",
        b"<STYLE",
        b"<TITLE",
        b"<B",
        b"<BODY",
        b"<BR",
        b"<P",
        b"<!--",
    ];
    let html = TAGS.iter().any(|tag| {
        text.len() > tag.len()
            && text[..tag.len()].eq_ignore_ascii_case(tag)
            && matches!(
                text[tag.len()],
                b' ' | b'>' | b'\t' | b'\n' | b'\r' | b'\x0C' | b'/'
            )
    });
    if html { "text/html" } else { "text/plain" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff_chunks(chunks: &[&[u8]]) -> Sniffed {
        let mut sniffer = Sniffer::new();
        for chunk in chunks {
            sniffer.feed(chunk);
        }
        sniffer.finish()
    }

    fn sniff(bytes: &[u8]) -> Sniffed {
        sniff_chunks(&[bytes])
    }

    #[test]
    fn signatures() {
        let cases: &[(&[u8], &str)] = &[
            (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
            (b"\xFF\xD8\xFF\xE0\x00\x10JFIF", "image/jpeg"),
            (b"GIF89a\x01\x00", "image/gif"),
            (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
            (b"\x00\x00\x00\x18ftypmp42\x00\x00", "video/mp4"),
            (b"\x00\x00\x00\x20ftypisom\x00\x00", "video/mp4"),
            (
                b"\x1A\x45\xDF\xA3\x9F\x42\x82\x84webm\x42\x87V_VP9",
                "video/webm",
            ),
            (
                b"\x1A\x45\xDF\xA3\x9F\x42\x82\x84webm\x42\x87A_OPUS",
                "audio/webm",
            ),
            (b"ID3\x04\x00\x00\x00\x00", "audio/mpeg"),
            (b"\xFF\xFB\x90\x64\x00", "audio/mpeg"),
            (b"OggS\x00\x02\x00\x00", "audio/ogg"),
            (b"%PDF-1.7\n%\xE2\xE3", "application/pdf"),
            (b"PK\x03\x04\x14\x00", "application/zip"),
            (b"\x7FELF\x02\x01", "application/x-executable"),
            (b"RIFF\x24\x00\x00\x00WAVEfmt ", "application/octet-stream"),
        ];
        for (bytes, expected) in cases {
            assert_eq!(sniff(bytes), Sniffed::Type(expected), "{bytes:?}");
        }
    }

    #[test]
    fn text_rules() {
        for plain in [
            &b"hello, world\n"[..],
            b"{\"json\": true}",
            b"a,b,c\n1,2,3\n",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            "h\u{e9}llo \u{1F600}".as_bytes(),
            b"<Ahem, not a tag",
            b"<brand> is not <br",
        ] {
            assert_eq!(sniff(plain), Sniffed::Type("text/plain"), "{plain:?}");
        }
        for (html, kind) in [
            (&b"<!doctype html><p>x"[..], "text/html"),
            (b"  \n<HTML>", "text/html"),
            (b"<script>alert(1)</script>", "text/html"),
            (b"<a href=x>", "text/html"),
            (b"<!-- c -->", "text/html"),
            (b"\xEF\xBB\xBF<body>", "text/html"),
            (b"<?xml version=\"1.0\"?><svg/>", "text/xml"),
            (b"#!/bin/sh\nrm -rf /", "text/x-shellscript"),
        ] {
            assert_eq!(sniff(html), Sniffed::Type(kind), "{html:?}");
        }
        assert_eq!(sniff(b"\x00\x01\x02\xFE"), Sniffed::Unknown);
        assert_eq!(sniff(b"caf\xC3"), Sniffed::Unknown);
        assert_eq!(sniff(b""), Sniffed::Unknown);
    }

    #[test]
    fn utf8_split_across_chunks_is_still_text() {
        let text = "a\u{1F600}b\u{e9}c".as_bytes();
        for cut in 0..=text.len() {
            for cut2 in cut..=text.len() {
                assert_eq!(
                    sniff_chunks(&[&text[..cut], &text[cut..cut2], &text[cut2..]]),
                    Sniffed::Type("text/plain"),
                    "{cut} {cut2}"
                );
            }
        }
        // One bad byte deep inside a long text makes it unknown.
        let mut long = vec![b'x'; 100_000];
        long[70_000] = 0xFF;
        assert_eq!(
            sniff_chunks(&long.chunks(4096).collect::<Vec<_>>()),
            Sniffed::Unknown
        );
        // A signature only counts at the start.
        assert_eq!(
            sniff_chunks(&[b"text then ", b"%PDF-"]),
            Sniffed::Type("text/plain")
        );
    }
}
