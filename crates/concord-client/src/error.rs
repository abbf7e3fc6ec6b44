//! The SDK's errors.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// [`crate::Gateway::connect`] on a gateway that is already running.
    #[error("the gateway is already connected or connecting")]
    AlreadyRunning,
    /// A command was sent while no session is open.
    #[error("not connected")]
    NotConnected,
    /// The server refused the credentials (HTTP 401 at the upgrade, or close 4004)
    /// and the token provider could not give better ones.
    #[error("authentication refused (close code {code:?})")]
    AuthenticationFailed {
        /// The close code (4004), or `None` for an HTTP refusal of the upgrade.
        code: Option<u16>,
    },
    /// The server closed with a code that forbids reconnecting as is (4005), or
    /// refused the upgrade for a reason a retry cannot fix (HTTP 400: a bad `v` or
    /// `compress`).
    #[error("the server closed the gateway for good (code {code:?}): {reason}")]
    Closed {
        /// The close code, or the HTTP status of a refused upgrade.
        code: Option<u16>,
        /// The server's reason.
        reason: String,
    },
    /// The token provider failed for good.
    #[error("no token: {0}")]
    Token(#[from] crate::TokenError),
    /// The gateway was disconnected before the session was ready.
    #[error("disconnected before the session was ready")]
    Disconnected,
    /// A command could not be encoded.
    #[error("command not encodable: {0}")]
    Encode(#[source] serde_json::Error),
    /// The server refused a command (its ERROR), where the SDK waits for the answer
    /// (audio commands).
    #[error("refused by the server: {} ({})", .0.code.as_str(), .0.message)]
    Refused(concord_protocol::GatewayError),
    /// The session's audio stream ended before the SDK was done with it: `reason`
    /// from the server's `MEDIA_ENDED`, or `None` when the connection was replaced
    /// (a stream does not outlive its connection: start it again).
    #[error("the audio stream ended ({reason:?})")]
    AudioEnded {
        /// Why, if the server said.
        reason: Option<concord_protocol::MediaEndReason>,
    },
    /// What was asked needs protocol v2 (audio): this gateway speaks v1.
    #[error("{0} needs protocol v2")]
    NeedsV2(&'static str),
    /// A WAV file could not be read.
    #[error("WAV: {0}")]
    Wav(#[from] crate::audio::WavError),
}
