//! Request bodies: one too large by its `Content-Length` is refused before a byte of
//! it is read (413), and one that takes longer than `limits.body_read_secs` to
//! arrive is cut off and answered 408, whatever the handler made of the cut.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body::{Frame, SizeHint};

use crate::{error::ApiError, state::AppState};

/// Middleware: the size and deadline of every request body (`limits.max_body_bytes`,
/// `limits.body_read_secs`). The attachment upload route has its own size limit
/// (50 MiB + 64 KiB) and at least a minute for its body.
pub async fn limit_bodies(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limits = &state.config.limits;
    let upload =
        crate::routes::attachments::upload_body_limit(request.method(), request.uri().path());
    let max_body_bytes = upload.unwrap_or(limits.max_body_bytes);
    let read_secs = match upload {
        Some(_) => limits
            .body_read_secs
            .max(crate::routes::attachments::MIN_UPLOAD_SECS),
        None => limits.body_read_secs,
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_body_bytes as u64) {
        return closing(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body too large (at most {max_body_bytes} bytes)"),
        ));
    }
    if http_body::Body::is_end_stream(request.body()) {
        return next.run(request).await;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let deadline = Duration::from_secs(read_secs.max(1));
    let request = request.map(|body| {
        Body::new(Deadline {
            inner: body,
            after: deadline,
            sleep: None,
            expired: Arc::clone(&expired),
        })
    });
    let response = next.run(request).await;
    if expired.load(Ordering::Acquire) {
        return closing(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "The request body did not arrive in time",
        ));
    }
    response
}

/// `error`'s answer, closing the connection: the rest of the body is not read.
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Why a body stopped: it took too long.
#[derive(Debug, thiserror::Error)]
#[error("request body read timed out")]
pub struct BodyTimeout;

/// A body that fails once `after` has passed since it was first read.
struct Deadline {
    inner: Body,
    after: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let after = self.after;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
        if sleep.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimeout))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_fails_at_the_deadline() {
        let (tx, rx) = futures_channel_body();
        let expired = Arc::new(AtomicBool::new(false));
        let mut body = Deadline {
            inner: rx,
            after: Duration::from_secs(5),
            sleep: None,
            expired: Arc::clone(&expired),
        };
        tx.send(Bytes::from_static(b"abc")).await.unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"abc"));
        // Nothing more comes: the deadline passes (virtual time).
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
        assert!(expired.load(Ordering::Acquire));
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_in_time_is_untouched() {
        let body = Deadline {
            inner: Body::from("hello"),
            after: Duration::from_secs(5),
            sleep: None,
            expired: Arc::new(AtomicBool::new(false)),
        };
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes, Bytes::from_static(b"hello"));
    }

    /// A body fed by a channel, chunk by chunk.
    fn futures_channel_body() -> (tokio::sync::mpsc::Sender<Bytes>, Body) {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
        });
        (tx, Body::from_stream(stream))
    }
}
