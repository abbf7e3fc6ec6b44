//! Routes: attachments of server-channel messages and the serving of their files
//! (`rest-extras.md` §8).
//!
//! An upload streams each `files` part straight into the attachment [`FileStore`]
//! while its type is recognised and its size counted ([`Sniffer`]), so a request holds
//! one body chunk and a few hundred bytes per file in memory whatever the file sizes.
//! The parts stay invisible temporary files until every part has passed; then they
//! are completed, and the rows are inserted in one transaction that re-checks the
//! message and the 10-attachment limit (Concord X2). A refusal at any step removes
//! every file written, so a failed upload leaves nothing behind.
//!
//! Files go with their rows (Concord X4): the store records every deleted row in its
//! purge journal, and [`purge_files`](crate::attachments::purge_files) deletes the
//! files after each message, channel or server delete.
//!
//! *Concord*: a body over the upload limit (50 MiB + 64 KiB), or a file over 50 MiB,
//! is 413 (X5); listing and serving need VIEW_CHANNEL (X3), 403 otherwise; files are
//! served with the Authorization header or a signed link (X1).
//!
//! [`FileStore`]: crate::files::FileStore
//! [`Sniffer`]: crate::sniff::Sniffer

use axum::{
    body::Body,
    extract::{
        DefaultBodyLimit, Multipart, RawQuery, State,
        multipart::{MultipartError, MultipartRejection},
    },
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use concord_protocol::{Attachment, ErrorBody, Message, MessageId, Timestamp, UserId};
use concord_store::{AttachmentAddition, AttachmentRecord};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    access,
    attachments::{LinkQuery, file_path, stored_name},
    auth::Principal,
    directory::ChannelFacts,
    error::{ApiError, ApiResult},
    extract::Path,
    files::FileSink,
    perms::Permissions,
    sniff::{ALLOWED, Sniffed, Sniffer},
    state::AppState,
};

/// Most attachments a message may have.
pub const MAX_ATTACHMENTS: i64 = 10;
/// Most bytes of one file (50 MiB).
pub const MAX_FILE_BYTES: u64 = 52_428_800;
/// Most bytes of an upload's body: one full file and room for the form around it.
pub const MAX_UPLOAD_BODY: usize = 50 * 1024 * 1024 + 64 * 1024;
/// The least time an upload's body may take to arrive, whatever `limits.body_read_secs`
/// says (50 MiB at 1 MB/s).
pub const MIN_UPLOAD_SECS: u64 = 60;
/// Most characters of a file name kept.
const MAX_FILENAME_CHARS: usize = 255;

/// The attachment routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_attachments, upload_attachments))
        // This route's body limit is its own; every other keeps the global one.
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BODY))
        .merge(OpenApiRouter::new().routes(routes!(serve_file)))
}

/// The body limit of a request to the upload route, which `body::limit_bodies` applies
/// in place of the global one; `None` for every other request.
pub fn upload_body_limit(method: &Method, path: &str) -> Option<usize> {
    let path = path.strip_prefix("/api").unwrap_or(path);
    let mut segments = path.trim_end_matches('/').split('/');
    let upload = method == Method::POST
        && segments.next() == Some("")
        && segments.next() == Some("messages")
        && segments.next().is_some()
        && segments.next() == Some("attachments")
        && segments.next().is_none();
    upload.then_some(MAX_UPLOAD_BODY)
}

/// The upload form, for the document only: the handler streams the parts.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "documentation of the multipart form; never built")]
struct AttachmentUpload {
    /// One part per file (repeat the field), 1 byte to 50 MiB each; the type is
    /// recognised from the bytes. Other fields are skipped.
    #[schema(value_type = Vec<String>, content_media_type = "application/octet-stream")]
    files: Vec<Vec<u8>>,
}

fn message_not_found() -> ApiError {
    ApiError::not_found("Message not found")
}

fn attachment_not_found() -> ApiError {
    ApiError::not_found("Attachment not found")
}

fn too_many() -> ApiError {
    ApiError::bad_request(format!(
        "Messages may not have more than {MAX_ATTACHMENTS} attachments"
    ))
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "File size exceeds the 50 MB limit",
    )
}

fn bad_multipart(err: &MultipartError) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body too large (at most {MAX_UPLOAD_BODY} bytes)"),
        )
    } else {
        ApiError::bad_request("Invalid multipart data")
    }
}

fn internal() -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
}

/// The live server-channel message `id`, its channel, and the caller's membership.
///
/// # Errors
/// 404 `Message not found` (missing, deleted or a DM's), 404 `Channel not found`,
/// 404 `Server not found` (not a member).
async fn message_of_member(
    state: &AppState,
    id: MessageId,
    user: UserId,
) -> ApiResult<(Message, ChannelFacts)> {
    let message = state
        .store
        .message(id)
        .await?
        .filter(|m| !m.deleted)
        .ok_or_else(message_not_found)?;
    let facts = state
        .directory
        .channel(message.channel_id)
        .ok_or_else(access::channel_not_found)?;
    access::server_member(state, facts.server, user)?;
    Ok((message, facts))
}

/// As [`message_of_member`], and the caller may VIEW the channel (Concord X3).
///
/// # Errors
/// Those of [`message_of_member`]; 403 without VIEW_CHANNEL.
async fn message_of_viewer(state: &AppState, id: MessageId, user: UserId) -> ApiResult<Message> {
    let (message, _) = message_of_member(state, id, user).await?;
    access::require_channel_permission(state, message.channel_id, user, Permissions::VIEW_CHANNEL)?;
    Ok(message)
}

/// The DTO of `record`, its `url` signed for `viewer`.
fn dto(state: &AppState, record: AttachmentRecord, viewer: UserId, now: Timestamp) -> Attachment {
    Attachment {
        url: state
            .attachments
            .url(record.message_id, &record.stored_name, viewer, now),
        id: record.id,
        message_id: record.message_id,
        filename: record.filename,
        file_size: record.file_size,
        mime_type: record.mime_type,
        width: None,
        height: None,
        created_at: record.created_at,
    }
}

#[utoipa::path(
    get,
    path = "/messages/{id}/attachments",
    tag = "messages",
    description = "A message's attachments in upload order. Each `url` is a link signed \
                   for the caller, valid for an hour without an Authorization header.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = MessageId, Path, description = "The message.")),
    responses(
        (status = 200, description = "The attachments.", body = Vec<Attachment>),
        (status = 400, description = "The id is not a UUID.", body = ErrorBody),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller may not VIEW the channel.", body = ErrorBody),
        (status = 404, description = "No such live server-channel message, channel, or the \
                                      caller is not a member of its server.", body = ErrorBody),
    ),
)]
async fn list_attachments(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<MessageId>,
) -> ApiResult<axum::Json<Vec<Attachment>>> {
    let user = principal.id();
    message_of_viewer(&state, id, user).await?;
    let now = Timestamp::now();
    let records = state.store.attachments(id).await?;
    Ok(axum::Json(
        records
            .into_iter()
            .map(|r| dto(&state, r, user, now))
            .collect(),
    ))
}

/// One file of the upload, written but not yet visible.
struct Staged {
    record: AttachmentRecord,
    sink: Box<dyn FileSink>,
}

/// Streams one `files` part into a new file; its record on success. On failure the
/// file is gone (the sink is dropped unfinished).
async fn stage_part(
    state: &AppState,
    field: &mut axum::extract::multipart::Field<'_>,
    message: MessageId,
    user: UserId,
    now: Timestamp,
) -> ApiResult<Staged> {
    let filename: String = field
        .file_name()
        .unwrap_or("unknown")
        .chars()
        .take(MAX_FILENAME_CHARS)
        .collect();
    let stored = stored_name(&filename);
    let mut sink = state
        .attachments
        .files
        .create(&file_path(message, &stored))
        .await
        .map_err(|err| ApiError::internal(&err))?;
    let mut sniffer = Sniffer::new();
    let mut size: u64 = 0;
    while let Some(chunk) = field.chunk().await.map_err(|e| bad_multipart(&e))? {
        size += chunk.len() as u64;
        if size > MAX_FILE_BYTES {
            return Err(too_large());
        }
        sniffer.feed(&chunk);
        sink.write(&chunk)
            .await
            .map_err(|err| ApiError::internal(&err))?;
    }
    if size == 0 {
        return Err(ApiError::bad_request("Files must not be empty"));
    }
    let mime = match sniffer.finish() {
        Sniffed::Type(mime) if ALLOWED.contains(&mime) => mime,
        Sniffed::Type(mime) => {
            return Err(ApiError::bad_request(format!(
                "File type '{mime}' is not allowed"
            )));
        }
        Sniffed::Unknown => {
            return Err(ApiError::bad_request(
                "File type could not be determined. Allowed: JPEG, PNG, GIF, WebP, MP4, \
                 WebM, MP3, Ogg, PDF and UTF-8 plain text",
            ));
        }
    };
    Ok(Staged {
        record: AttachmentRecord {
            id: uuid::Uuid::new_v4(),
            message_id: message,
            uploader_id: Some(user),
            filename,
            stored_name: stored,
            // At most 50 MiB.
            file_size: size as i64,
            mime_type: mime.to_owned(),
            created_at: now,
        },
        sink,
    })
}

/// Removes the files of records that were completed but could not be kept.
async fn remove_files(state: &AppState, records: &[AttachmentRecord]) {
    for record in records {
        let path = file_path(record.message_id, &record.stored_name);
        if let Err(err) = state.attachments.files.remove(&path).await {
            tracing::error!(%path, error = %err, "attachment file of a refused upload not removed");
        }
    }
}

#[utoipa::path(
    post,
    path = "/messages/{id}/attachments",
    tag = "messages",
    description = "Attaches files to a message (its author, with ATTACH_FILES in the \
                   channel), as `multipart/form-data` with one `files` part per file; \
                   other parts are skipped, a part without a file name is named \
                   `unknown`. Each file is 1 byte to 50 MiB; the message may hold 10 \
                   attachments in all. The type is recognised from the bytes: JPEG, PNG, \
                   GIF, WebP, MP4, WebM, MP3, Ogg, PDF, or valid UTF-8 text (not starting \
                   with an HTML tag, `<?xml` or `#!`). All or nothing: a refusal keeps no \
                   file of the upload. The body may be 50 MiB + 64 KiB. No event is sent.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = MessageId, Path, description = "The message.")),
    request_body(content = inline(AttachmentUpload), content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The new attachments, in upload order.", body = Vec<Attachment>),
        (status = 400, description = "Not a multipart body; a malformed one; more than 10 \
                                      attachments; an empty file; a type that is not \
                                      recognised or not allowed; no `files` part.", body = ErrorBody),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "No ATTACH_FILES (or VIEW_CHANNEL) in the channel, or \
                                      the caller is not the message's author.", body = ErrorBody),
        (status = 404, description = "No such live server-channel message, channel, or the \
                                      caller is not a member of its server.", body = ErrorBody),
        (status = 413, description = "A file over 50 MiB, or the body over 50 MiB + 64 KiB.", body = ErrorBody),
    ),
)]
async fn upload_attachments(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<MessageId>,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let user = principal.id();
    let mut form =
        form.map_err(|_| ApiError::bad_request("Expected a multipart/form-data body"))?;
    let (message, _) = message_of_member(&state, id, user).await?;
    if !access::has_channel_permission(
        &state,
        message.channel_id,
        user,
        Permissions::VIEW_CHANNEL.union(Permissions::ATTACH_FILES),
    ) {
        return Err(ApiError::forbidden(
            "You don't have permission to attach files in this channel",
        ));
    }
    if message.author_id != Some(user) {
        return Err(ApiError::forbidden(
            "Only the message author can add attachments",
        ));
    }
    let held = state.store.attachments(id).await?.len() as i64;
    let now = Timestamp::now();
    let mut staged: Vec<Staged> = Vec::new();
    // A refusal returns here and drops `staged`: the unfinished files go with it.
    while let Some(mut field) = form.next_field().await.map_err(|e| bad_multipart(&e))? {
        if field.name() != Some("files") {
            continue;
        }
        if held + staged.len() as i64 >= MAX_ATTACHMENTS {
            return Err(too_many());
        }
        staged.push(stage_part(&state, &mut field, id, user, now).await?);
    }
    if staged.is_empty() {
        return Err(ApiError::bad_request(
            "No files provided — include at least one field named \"files\"",
        ));
    }

    let mut records = Vec::with_capacity(staged.len());
    let mut sinks = Vec::with_capacity(staged.len());
    for Staged { record, sink } in staged {
        records.push(record);
        sinks.push(sink);
    }
    let mut finished = 0;
    let mut failure = None;
    for sink in sinks {
        if failure.is_some() {
            sink.abort().await;
            continue;
        }
        match sink.finish().await {
            Ok(()) => finished += 1,
            Err(err) => failure = Some(err),
        }
    }
    if let Some(err) = failure {
        remove_files(&state, &records[..finished]).await;
        return Err(ApiError::internal(&err));
    }
    let refusal = match state
        .store
        .add_attachments(id, &records, MAX_ATTACHMENTS)
        .await
    {
        Ok(AttachmentAddition::Added) => None,
        Ok(AttachmentAddition::LimitReached) => Some(too_many()),
        Ok(AttachmentAddition::MessageGone) => Some(message_not_found()),
        Err(err) => Some(err.into()),
    };
    if let Some(refusal) = refusal {
        remove_files(&state, &records).await;
        return Err(refusal);
    }
    let body: Vec<Attachment> = records
        .into_iter()
        .map(|r| dto(&state, r, user, now))
        .collect();
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// Who fetches a file: the bearer of the Authorization header, or the user a valid
/// signed link was issued to (re-checked: still there and not disabled).
///
/// # Errors
/// 401 without either, with bad credentials, or with a bad or expired link.
async fn file_reader(
    state: &AppState,
    headers: HeaderMap,
    message: MessageId,
    name: &str,
    query: Option<&str>,
) -> ApiResult<UserId> {
    use axum::extract::FromRequestParts;
    if headers.contains_key(header::AUTHORIZATION) {
        let (mut parts, ()) = axum::http::Request::new(()).into_parts();
        parts.headers = headers;
        return Ok(Principal::from_request_parts(&mut parts, state).await?.id());
    }
    let Some(link) = query.and_then(LinkQuery::parse) else {
        return Err(ApiError::unauthorized("Missing authorization"));
    };
    if !state
        .attachments
        .verify(message, name, &link, Timestamp::now())
    {
        return Err(ApiError::unauthorized("Invalid or expired file link"));
    }
    match state.store.user(link.uid).await? {
        Some(user) if !user.disabled => Ok(user.id),
        _ => Err(ApiError::unauthorized("Invalid or expired file link")),
    }
}

/// `Content-Disposition` of a served file: `inline` for images, video and audio,
/// `attachment` otherwise; the name with `"` and `\` turned into `'` and control
/// characters dropped, plus its exact UTF-8 form (RFC 6266 `filename*`).
fn disposition(mime: &str, filename: &str) -> HeaderValue {
    let kind = if ["image/", "video/", "audio/"]
        .iter()
        .any(|p| mime.starts_with(p))
    {
        "inline"
    } else {
        "attachment"
    };
    let clean: String = filename
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if matches!(c, '"' | '\\') { '\'' } else { c })
        .collect();
    let ascii: String = clean
        .chars()
        .map(|c| if c.is_ascii() { c } else { '_' })
        .collect();
    let mut exact = String::new();
    for byte in clean.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b'~') {
            exact.push(byte as char);
        } else {
            exact.push_str(&format!("%{byte:02X}"));
        }
    }
    let value = format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{exact}");
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

#[utoipa::path(
    get,
    path = "/files/{message_id}/{name}",
    tag = "messages",
    description = "An attachment's bytes, streamed. Credentials: the Authorization \
                   header, or the signed query of the attachment's `url` (`exp`, `uid`, \
                   `sig`), which works for an hour and only while the user it was issued \
                   to may still VIEW the channel. Served with the type recognised at \
                   upload, `Content-Disposition` `inline` for images, video and audio \
                   (`attachment` otherwise), `Cache-Control: private` and `nosniff`.",
    security((), ("bearer" = []), ("bot_token" = [])),
    params(
        ("message_id" = MessageId, Path, description = "The message."),
        ("name" = String, Path, description = "The attachment's stored name."),
        ("exp" = Option<i64>, Query, description = "Signed link: expiry (Unix seconds)."),
        ("uid" = Option<UserId>, Query, description = "Signed link: the user it was issued to."),
        ("sig" = Option<String>, Query, description = "Signed link: the signature."),
    ),
    responses(
        (status = 200, description = "The file.", content_type = "application/octet-stream",
            headers(
                ("Content-Disposition" = String, description = "`inline` or `attachment`, with the file name."),
                ("Cache-Control" = String, description = "`private`."),
            ),
        ),
        (status = 400, description = "The message id is not a UUID.", body = ErrorBody),
        (status = 401, description = "No header and no valid, unexpired link.", body = ErrorBody),
        (status = 403, description = "The user may not VIEW the channel.", body = ErrorBody),
        (status = 404, description = "No such live message, channel, membership or \
                                      attachment.", body = ErrorBody),
        (status = 500, description = "The file is missing; the cause is logged.", body = ErrorBody),
    ),
)]
async fn serve_file(
    State(state): State<AppState>,
    Path((id, name)): Path<(MessageId, String)>,
    RawQuery(query): RawQuery,
    request_headers: HeaderMap,
) -> ApiResult<Response> {
    let user = file_reader(&state, request_headers, id, &name, query.as_deref()).await?;
    if name.contains('/') {
        return Err(attachment_not_found());
    }
    message_of_viewer(&state, id, user).await?;
    let record = state
        .store
        .attachment(id, &name)
        .await?
        .ok_or_else(attachment_not_found)?;
    let path = file_path(id, &record.stored_name);
    let Some((size, stream)) = state
        .attachments
        .files
        .open(&path)
        .await
        .map_err(|err| ApiError::internal(&err))?
    else {
        tracing::error!(%path, "attachment file missing");
        return Err(internal());
    };
    let mut headers = HeaderMap::new();
    let mime = HeaderValue::from_str(&record.mime_type).map_err(|err| ApiError::internal(&err))?;
    headers.insert(header::CONTENT_TYPE, mime);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    headers.insert(
        header::CONTENT_DISPOSITION,
        disposition(&record.mime_type, &record.filename),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok((headers, Body::from_stream(stream)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_upload_route_has_the_upload_limit() {
        let m = "0190f2a4-0000-7000-8000-000000000000";
        for path in [
            format!("/messages/{m}/attachments"),
            format!("/api/messages/{m}/attachments"),
            format!("/messages/{m}/attachments/"),
        ] {
            assert_eq!(
                upload_body_limit(&Method::POST, &path),
                Some(MAX_UPLOAD_BODY),
                "{path}"
            );
        }
        for (method, path) in [
            (Method::GET, format!("/messages/{m}/attachments")),
            (Method::POST, format!("/messages/{m}")),
            (Method::POST, format!("/channels/{m}/messages")),
            (Method::POST, format!("/messages/{m}/attachments/x")),
            (Method::POST, format!("/x/messages/{m}/attachments")),
        ] {
            assert_eq!(upload_body_limit(&method, &path), None, "{method} {path}");
        }
    }

    #[test]
    fn dispositions() {
        let text = |v: HeaderValue| v.to_str().unwrap().to_owned();
        assert_eq!(
            text(disposition("image/png", "cat.png")),
            "inline; filename=\"cat.png\"; filename*=UTF-8''cat.png"
        );
        assert_eq!(
            text(disposition("application/pdf", "a\"b\r\n\0c.pdf")),
            "attachment; filename=\"a'bc.pdf\"; filename*=UTF-8''a%27bc.pdf"
        );
        assert_eq!(
            text(disposition("text/plain", "é.txt")),
            "attachment; filename=\"_.txt\"; filename*=UTF-8''%C3%A9.txt"
        );
    }
}
