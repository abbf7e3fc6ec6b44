//! REST errors: one type, one JSON body (`{"error": "..."}`), causes logged, never sent.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use concord_protocol::ErrorBody;
use concord_store::StoreError;

/// An error answered to a REST caller.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// Any status with a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 429 with `retry-after` / `x-ratelimit-after` (seconds) when given.
    pub fn too_many_requests(retry_after: Option<u64>) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: "Too many requests".into(),
            retry_after,
        }
    }

    /// The same error with a `retry-after` / `x-ratelimit-after` header (seconds).
    #[must_use]
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// 500, logging the cause.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %cause, source = ?cause.source(), "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Seconds until a refused request may be retried (429).
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => {
                // The constraint's name is for the log, not for the client.
                tracing::debug!(constraint = %what, "unique violation");
                Self::conflict("Already exists")
            }
            StoreError::NotFound => Self::not_found("Not found"),
            other => {
                tracing::error!(error = %other, source = ?std::error::Error::source(&other), "store error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Database error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            axum::Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            let value = HeaderValue::from(secs);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, value.clone());
            response.headers_mut().insert("x-ratelimit-after", value);
        }
        response
    }
}

/// Set, to `1`, on the answers of [`not_found_fallback`] only: a 404 that carries it
/// means "no such route", one without it came from a handler ("no such server", …).
pub const UNROUTED: &str = "x-concord-unrouted";

/// Unknown routes: 404 with the JSON body and the [`UNROUTED`] header.
pub async fn not_found_fallback() -> Response {
    let mut response = ApiError::not_found("Not found").into_response();
    response
        .headers_mut()
        .insert(UNROUTED, HeaderValue::from_static("1"));
    response
}
