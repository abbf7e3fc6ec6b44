//! How a [`BusMessage`] crosses a network: a small binary header, then the body as is
//! (no copy of the body into another encoding, and no parsing of it on the way).
//!
//! ```text
//! u8  version (1)          u8  kind (0 event, 1 directory)
//! 16  origin node          u64 seq
//! u16 deps, then per dep:  16 node, u64 count
//! u8  audience tag, then its ids (16 bytes each; u64 permissions; u32 user count)
//!     (a node's own route: tag 6, the node's 16 bytes)
//! u8  event name length, then its UTF-8
//! ..  body (the rest)
//! ```
//! Integers are big-endian. A truncated or otherwise malformed message is an error,
//! never a panic.

use bytes::{BufMut, Bytes, BytesMut};
use concord_protocol::{ChannelId, ServerId, UserId};
use uuid::Uuid;

use crate::{Audience, BusMessage, Kind, NodeId};

const VERSION: u8 = 1;
/// Most users an [`Audience::Users`] may list on the wire.
pub const MAX_USERS: usize = 1 << 20;

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Ended early.
    #[error("truncated bus message")]
    Truncated,
    /// Written by a version this node does not read.
    #[error("bus message version {0} not understood")]
    Version(u8),
    /// A tag out of range.
    #[error("bus message has unknown {0} tag {1}")]
    Tag(&'static str, u8),
    /// The event name is not UTF-8.
    #[error("bus message event name is not UTF-8")]
    Name,
    /// Too many users or deps.
    #[error("bus message lists too many entries")]
    TooMany,
}

/// Serializes `message`.
pub fn encode(message: &BusMessage) -> Bytes {
    let event = message.event.as_bytes();
    let event = &event[..event.len().min(255)];
    let mut out = BytesMut::with_capacity(64 + 24 * message.deps.len() + message.body.len());
    out.put_u8(VERSION);
    out.put_u8(match message.kind {
        Kind::Event => 0,
        Kind::Directory => 1,
    });
    out.put_slice(message.origin.0.as_bytes());
    out.put_u64(message.seq);
    let deps = &message.deps[..message.deps.len().min(usize::from(u16::MAX))];
    out.put_u16(deps.len() as u16);
    for (node, count) in deps {
        out.put_slice(node.0.as_bytes());
        out.put_u64(*count);
    }
    match &message.audience {
        Audience::Everyone => out.put_u8(0),
        Audience::Server(server) => {
            out.put_u8(1);
            out.put_slice(server.get().as_bytes());
        }
        Audience::Channel { server, channel } => {
            out.put_u8(2);
            out.put_slice(server.get().as_bytes());
            out.put_slice(channel.get().as_bytes());
        }
        Audience::ServerPermission {
            server,
            permissions,
        } => {
            out.put_u8(3);
            out.put_slice(server.get().as_bytes());
            out.put_u64(*permissions);
        }
        Audience::Users(users) => {
            out.put_u8(4);
            let users = &users[..users.len().min(MAX_USERS)];
            out.put_u32(users.len() as u32);
            for user in users {
                out.put_slice(user.get().as_bytes());
            }
        }
        Audience::CoMembers(user) => {
            out.put_u8(5);
            out.put_slice(user.get().as_bytes());
        }
        Audience::Node(node) => {
            out.put_u8(6);
            out.put_slice(node.0.as_bytes());
        }
    }
    out.put_u8(event.len() as u8);
    out.put_slice(event);
    out.put_slice(&message.body);
    out.freeze()
}

/// Reads a message written by [`encode`]; the body shares `bytes`' buffer.
///
/// # Errors
/// When `bytes` is not such a message.
pub fn decode(bytes: &Bytes) -> Result<BusMessage, WireError> {
    let mut r = Reader { bytes, at: 0 };
    let version = r.u8()?;
    if version != VERSION {
        return Err(WireError::Version(version));
    }
    let kind = match r.u8()? {
        0 => Kind::Event,
        1 => Kind::Directory,
        tag => return Err(WireError::Tag("kind", tag)),
    };
    let origin = NodeId(r.uuid()?);
    let seq = r.u64()?;
    let n = usize::from(r.u16()?);
    if n * 24 > r.left() {
        return Err(WireError::Truncated);
    }
    let mut deps = Vec::with_capacity(n);
    for _ in 0..n {
        deps.push((NodeId(r.uuid()?), r.u64()?));
    }
    let audience = match r.u8()? {
        0 => Audience::Everyone,
        1 => Audience::Server(ServerId::from_uuid(r.uuid()?)),
        2 => Audience::Channel {
            server: ServerId::from_uuid(r.uuid()?),
            channel: ChannelId::from_uuid(r.uuid()?),
        },
        3 => Audience::ServerPermission {
            server: ServerId::from_uuid(r.uuid()?),
            permissions: r.u64()?,
        },
        4 => {
            let n = r.u32()? as usize;
            if n > MAX_USERS {
                return Err(WireError::TooMany);
            }
            if n * 16 > r.left() {
                return Err(WireError::Truncated);
            }
            let mut users = Vec::with_capacity(n);
            for _ in 0..n {
                users.push(UserId::from_uuid(r.uuid()?));
            }
            Audience::Users(users)
        }
        5 => Audience::CoMembers(UserId::from_uuid(r.uuid()?)),
        6 => Audience::Node(NodeId(r.uuid()?)),
        tag => return Err(WireError::Tag("audience", tag)),
    };
    let len = usize::from(r.u8()?);
    let name = r.take(len)?;
    let event = std::str::from_utf8(name)
        .map_err(|_| WireError::Name)?
        .to_owned();
    let body = bytes.slice(r.at..);
    Ok(BusMessage {
        origin,
        kind,
        seq,
        deps,
        audience,
        event,
        body,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&[u8], WireError> {
        if self.left() < n {
            return Err(WireError::Truncated);
        }
        let taken = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn uuid(&mut self) -> Result<Uuid, WireError> {
        Ok(Uuid::from_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<BusMessage> {
        let (s, c, u, v) = (
            ServerId::new(),
            ChannelId::new(),
            UserId::new(),
            UserId::new(),
        );
        let audiences = [
            Audience::Everyone,
            Audience::Server(s),
            Audience::Channel {
                server: s,
                channel: c,
            },
            Audience::ServerPermission {
                server: s,
                permissions: 1 << 40 | 8,
            },
            Audience::Users(vec![u, v]),
            Audience::Users(vec![]),
            Audience::CoMembers(u),
            Audience::Node(NodeId::new()),
        ];
        audiences
            .into_iter()
            .enumerate()
            .map(|(i, audience)| BusMessage {
                origin: NodeId::new(),
                kind: if i % 2 == 0 {
                    Kind::Event
                } else {
                    Kind::Directory
                },
                seq: i as u64 * 1_000_000_007,
                deps: (0..i).map(|n| (NodeId::new(), n as u64)).collect(),
                audience,
                event: if i == 3 {
                    String::new()
                } else {
                    format!("EVENT_é{i}")
                },
                body: Bytes::from(format!("{{\"n\":{i}}}").repeat(i)),
            })
            .collect()
    }

    #[test]
    fn every_message_reads_back_as_written() {
        for message in samples() {
            assert_eq!(decode(&encode(&message)).unwrap(), message);
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic_nor_a_message() {
        for message in samples() {
            let bytes = encode(&message);
            let body = message.body.len();
            // Cutting into the body still parses (the body is the rest); every cut
            // before it must fail.
            for cut in 0..bytes.len() - body {
                assert!(
                    decode(&bytes.slice(..cut)).is_err(),
                    "{cut} of {}",
                    bytes.len()
                );
            }
        }
    }

    #[test]
    fn a_huge_count_or_bad_tag_or_version_is_refused_without_allocating_it() {
        let mut bytes = encode(&samples()[4]).to_vec();
        // The user count sits after version, kind, origin, seq, deps (4 of them), tag.
        let at = 1 + 1 + 16 + 8 + 2 + 4 * 24 + 1;
        bytes[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode(&Bytes::from(bytes)), Err(WireError::TooMany));
        let mut bad = encode(&samples()[0]).to_vec();
        bad[0] = 9;
        assert_eq!(decode(&Bytes::from(bad)), Err(WireError::Version(9)));
        let mut bad = encode(&samples()[0]).to_vec();
        bad[1] = 7;
        assert_eq!(decode(&Bytes::from(bad)), Err(WireError::Tag("kind", 7)));
    }
}
