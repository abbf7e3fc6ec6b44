//! Routes: custom emojis of a server (`rest.md` §7.16).
//!
//! The rows live in the store, the images in the node's emoji [`FileStore`] under the
//! emoji's id. An upload is checked completely before anything is written; then the
//! image is stored, then the row, whose insert re-checks the 50-emoji limit and the
//! name atomically (and deletes the image again when it is refused). A delete removes
//! the row first, then the image, so a row never names a file that is already gone
//! except after a failure, which `GET /emojis/{emoji_id}` answers with 500.
//!
//! *Concord*: an image over 256 KiB is refused with 413 and one of an unknown type with
//! 415 (the reference says 400 for both); every other refusal is as in the contract.
//!
//! [`FileStore`]: crate::files::FileStore

use axum::{
    extract::{
        Multipart, State,
        multipart::{Field, MultipartError, MultipartRejection},
    },
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use concord_protocol::{
    CustomEmoji, CustomEmojiDelete, CustomEmojiId, ErrorBody, Event, ServerId, Timestamp, UserId,
    limits::{MAX_CUSTOM_EMOJIS, MAX_EMOJI_BYTES, MAX_EMOJI_NAME_CHARS},
};
use concord_store::{CustomEmojiRecord, EmojiCreation, StoreError};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    access,
    auth::Principal,
    bus::Audience,
    error::{ApiError, ApiResult},
    extract::Path,
    perms::Permissions,
    state::AppState,
};

/// How browsers may keep an image: a day, shared caches included (an emoji's image
/// never changes; a deleted one answers 404).
const CACHE_CONTROL: &str = "public, max-age=86400";

/// The most bytes of a `name` part read: 32 characters of UTF-8 fit in it, so a longer
/// part is too long whatever it holds.
const NAME_READ_LIMIT: usize = MAX_EMOJI_NAME_CHARS * 4;

/// The custom emoji routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_emojis, upload_emoji))
        .routes(routes!(delete_emoji))
        .routes(routes!(emoji_image))
}

/// The upload form, for the document only: the handler reads the parts as they
/// stream in, not into this type.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "documentation of the multipart form; never built")]
struct EmojiUpload {
    /// 1-32 characters of `a-z`, `0-9`, `_` and `-`, not yet used in this server.
    #[schema(min_length = 1, max_length = 32, pattern = "^[a-z0-9_-]{1,32}$")]
    name: String,
    /// The image, 1 byte to 256 KiB: JPEG, PNG, GIF or WebP, recognised by its first
    /// bytes (the part's declared type and file name are ignored).
    #[schema(value_type = String, content_media_type = "application/octet-stream")]
    image: Vec<u8>,
}

/// The type of an image, from its first bytes: JPEG, PNG, GIF (87a or 89a) or WebP;
/// `None` for anything else.
pub fn sniff_image_type(bytes: &[u8]) -> Option<&'static str> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(b"\xFF\xD8\xFF") {
        Some("image/jpeg")
    } else if bytes.starts_with(PNG) {
        Some("image/png")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Deletes the images of these emojis (whose rows are already gone), best effort: a
/// failure is logged and leaves an orphan file, never a row without its image.
pub async fn delete_files(state: &AppState, emojis: &[CustomEmojiId]) {
    for emoji in emojis {
        if let Err(err) = state.emoji_files.delete(emoji.get()).await {
            tracing::error!(%emoji, error = %err, "custom emoji image not deleted");
        }
    }
}

/// The caller is a member of `server` and its owner or an ADMINISTRATOR.
///
/// # Errors
/// 404 when the server does not exist or the caller is not a member; 403 otherwise.
fn emoji_manager(state: &AppState, server: ServerId, user: UserId) -> ApiResult<()> {
    access::server_member(state, server, user)?;
    // Server level: the owner holds every bit, ADMINISTRATOR expands to every bit.
    let allowed = state
        .directory
        .server_permissions(server, user)
        .is_some_and(|p| p.contains(Permissions::ADMINISTRATOR));
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "Only the server owner or an administrator can manage emojis",
        ))
    }
}

fn emoji_not_found() -> ApiError {
    ApiError::not_found("Emoji not found")
}

fn server_full() -> ApiError {
    ApiError::bad_request(format!(
        "This server already has the maximum of {MAX_CUSTOM_EMOJIS} custom emojis"
    ))
}

fn name_taken() -> ApiError {
    ApiError::bad_request("An emoji with this name already exists in this server")
}

fn image_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Emoji image must be at most 256 KiB",
    )
}

fn bad_multipart(err: &MultipartError) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
    } else {
        ApiError::bad_request("Malformed multipart/form-data body")
    }
}

/// One part of the form, as far as it was read.
enum Part {
    /// The whole part.
    Read(Vec<u8>),
    /// Longer than its limit; the rest was not read.
    TooLong,
}

/// The parts of the upload form that matter, as far as they were read.
#[derive(Default)]
struct Upload {
    name: Option<Part>,
    image: Option<Part>,
}

/// Reads the part's bytes, at most `limit` of them.
async fn read_part(field: &mut Field<'_>, limit: usize) -> ApiResult<Part> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| bad_multipart(&e))? {
        if bytes.len() + chunk.len() > limit {
            return Ok(Part::TooLong);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Part::Read(bytes))
}

/// Reads the form: `name` (at most [`NAME_READ_LIMIT`] bytes kept) and `image` (at
/// most 256 KiB kept); other parts are skipped. An image over the limit ends the
/// reading there, so at most 256 KiB and a chunk of it is ever held, and parts after
/// it are not looked at. The request body limit (2 MiB) bounds the rest.
async fn read_upload(mut form: Multipart) -> ApiResult<Upload> {
    let mut upload = Upload::default();
    while let Some(mut field) = form.next_field().await.map_err(|e| bad_multipart(&e))? {
        let (slot, limit) = match field.name() {
            Some("name") => (&mut upload.name, NAME_READ_LIMIT),
            Some("image") => (&mut upload.image, MAX_EMOJI_BYTES),
            // Skipped: asking for the next part reads past this one.
            _ => continue,
        };
        if slot.is_some() {
            return Err(ApiError::bad_request(
                "Each form field may be sent only once",
            ));
        }
        let part = read_part(&mut field, limit).await?;
        let stop = limit == MAX_EMOJI_BYTES && matches!(part, Part::TooLong);
        *slot = Some(part);
        if stop {
            break;
        }
    }
    Ok(upload)
}

/// The name, checked: present, 1-32 characters, each of `[a-z0-9_-]`.
fn checked_name(part: Option<Part>) -> ApiResult<String> {
    let length = || {
        ApiError::bad_request(format!(
            "Emoji name must be 1-{MAX_EMOJI_NAME_CHARS} characters"
        ))
    };
    let bytes = match part {
        None => return Err(ApiError::bad_request("Emoji name is required")),
        Some(Part::TooLong) => return Err(length()),
        Some(Part::Read(bytes)) => bytes,
    };
    // Bytes that are not UTF-8 count as characters of their own, none of them allowed.
    let text = String::from_utf8_lossy(&bytes);
    if text.is_empty() || text.chars().count() > MAX_EMOJI_NAME_CHARS {
        return Err(length());
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    if !text.chars().all(allowed) {
        return Err(ApiError::bad_request(
            "Emoji name may contain only a-z, 0-9, _ and -",
        ));
    }
    Ok(text.into_owned())
}

#[utoipa::path(
    get,
    path = "/servers/{id}/emojis",
    tag = "servers",
    description = "A server's custom emojis, oldest first.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    responses(
        (status = 200, description = "The emojis.", body = Vec<CustomEmoji>),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn list_emojis(
    State(state): State<AppState>,
    principal: Principal,
    Path(server): Path<ServerId>,
) -> ApiResult<axum::Json<Vec<CustomEmoji>>> {
    access::server_member(&state, server, principal.id())?;
    let emojis = state.store.custom_emojis(server).await?;
    Ok(axum::Json(
        emojis
            .into_iter()
            .map(CustomEmojiRecord::into_dto)
            .collect(),
    ))
}

#[utoipa::path(
    post,
    path = "/servers/{id}/emojis",
    tag = "servers",
    description = "Uploads a custom emoji (owner or ADMINISTRATOR), as \
                   `multipart/form-data` with the parts `name` and `image`. The image's \
                   type is recognised from its bytes. Refusals come in this order: server \
                   and membership, permission, the 50-emoji limit, the form, the name, the \
                   image (missing or empty, too large, wrong type), a taken name. An image \
                   over 256 KiB ends the reading of the form, so only a name sent before it \
                   is checked.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    request_body(content = inline(EmojiUpload), content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The new emoji.", body = CustomEmoji),
        (status = 400, description = "The server already has 50 emojis; the body is not \
                                      `multipart/form-data` or does not parse, or sends a \
                                      field twice; the name is missing, not 1-32 characters \
                                      or not of `[a-z0-9_-]`; the image is missing or empty; \
                                      or the server has an emoji of that name.", body = ErrorBody),
        (status = 403, description = "The caller is neither the owner nor an ADMINISTRATOR.", body = ErrorBody),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
        (status = 413, description = "The image is over 256 KiB, or the body over the \
                                      request body limit (2 MiB).", body = ErrorBody),
        (status = 415, description = "The image is not a JPEG, PNG, GIF or WebP.", body = ErrorBody),
    ),
)]
async fn upload_emoji(
    State(state): State<AppState>,
    principal: Principal,
    Path(server): Path<ServerId>,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let user = principal.id();
    emoji_manager(&state, server, user)?;
    let existing = state.store.custom_emojis(server).await?;
    if existing.len() >= MAX_CUSTOM_EMOJIS as usize {
        return Err(server_full());
    }
    let form = form.map_err(|_| ApiError::bad_request("Expected a multipart/form-data body"))?;
    let Upload { name, image } = read_upload(form).await?;
    if let Some(Part::TooLong) = image {
        // The reading stopped at the image: only a name sent before it was seen.
        if name.is_some() {
            checked_name(name)?;
        }
        return Err(image_too_large());
    }
    let name = checked_name(name)?;
    let image = match image {
        Some(Part::Read(bytes)) if !bytes.is_empty() => bytes,
        Some(Part::Read(_)) => return Err(ApiError::bad_request("Emoji image is empty")),
        _ => return Err(ApiError::bad_request("Emoji image is required")),
    };
    let content_type = sniff_image_type(&image).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Emoji image must be a JPEG, PNG, GIF or WebP image",
        )
    })?;
    if existing.iter().any(|e| e.name == name) {
        return Err(name_taken());
    }

    let record = CustomEmojiRecord {
        id: CustomEmojiId::new(),
        server_id: server,
        created_by: user,
        name,
        content_type: content_type.to_owned(),
        // At most 256 KiB.
        file_size: image.len() as i64,
        created_at: Timestamp::now(),
    };
    state
        .emoji_files
        .put(record.id.get(), Bytes::from(image))
        .await
        .map_err(|err| ApiError::internal(&err))?;
    // The store checks the limit and the name again, atomically with the insert: an
    // upload racing this one may have taken the last slot or the name since.
    let refusal = match state
        .store
        .create_custom_emoji(&record, MAX_CUSTOM_EMOJIS)
        .await
    {
        Ok(EmojiCreation::Created) => None,
        Ok(EmojiCreation::LimitReached) => Some(server_full()),
        Ok(EmojiCreation::NameTaken) => Some(name_taken()),
        // The server was deleted since the membership check.
        Err(StoreError::NotFound) => Some(access::server_not_found()),
        Err(err) => Some(err.into()),
    };
    if let Some(refusal) = refusal {
        delete_files(&state, &[record.id]).await;
        return Err(refusal);
    }
    let emoji = record.into_dto();
    state
        .events
        .dispatch(Audience::Server(server), Event::CustomEmojiCreate, &emoji);
    Ok((StatusCode::CREATED, axum::Json(emoji)).into_response())
}

#[utoipa::path(
    delete,
    path = "/servers/{id}/emojis/{emoji_id}",
    tag = "servers",
    description = "Deletes a custom emoji and its image (owner or ADMINISTRATOR).",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("emoji_id" = CustomEmojiId, Path, description = "The emoji."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "The caller is neither the owner nor an ADMINISTRATOR.", body = ErrorBody),
        (status = 404, description = "No such server, the caller is not a member, or the \
                                      server has no such emoji.", body = ErrorBody),
    ),
)]
async fn delete_emoji(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, emoji)): Path<(ServerId, CustomEmojiId)>,
) -> ApiResult<StatusCode> {
    emoji_manager(&state, server, principal.id())?;
    let deleted = state
        .store
        .delete_custom_emoji(server, emoji)
        .await?
        .ok_or_else(emoji_not_found)?;
    delete_files(&state, &[deleted.id]).await;
    let event = CustomEmojiDelete {
        server_id: server,
        emoji_id: emoji,
    };
    state
        .events
        .dispatch(Audience::Server(server), Event::CustomEmojiDelete, &event);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/emojis/{emoji_id}",
    tag = "servers",
    description = "A custom emoji's image, for anyone (no credentials): the bytes as \
                   uploaded, with the type recognised at upload.",
    params(("emoji_id" = CustomEmojiId, Path, description = "The emoji.")),
    responses(
        (status = 200, description = "The image.",
            content(
                ("image/jpeg"),
                ("image/png"),
                ("image/gif"),
                ("image/webp"),
            ),
            headers(
                ("Cache-Control" = String, description = "`public, max-age=86400`."),
                ("x-content-type-options" = String, description = "`nosniff`."),
            ),
        ),
        (status = 404, description = "No such emoji.", body = ErrorBody),
        (status = 500, description = "The emoji exists but its image is missing or \
                                      unreadable; the cause is logged.", body = ErrorBody),
    ),
)]
async fn emoji_image(
    State(state): State<AppState>,
    Path(emoji): Path<CustomEmojiId>,
) -> ApiResult<Response> {
    let record = state
        .store
        .custom_emoji(emoji)
        .await?
        .ok_or_else(emoji_not_found)?;
    let Some(bytes) = state
        .emoji_files
        .get(emoji.get())
        .await
        .map_err(|err| ApiError::internal(&err))?
    else {
        tracing::error!(%emoji, "custom emoji image missing");
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error",
        ));
    };
    let content_type =
        HeaderValue::from_str(&record.content_type).map_err(|err| ApiError::internal(&err))?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_CONTROL),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_types_come_from_the_first_bytes() {
        let cases: [(&[u8], Option<&str>); 12] = [
            (b"\xFF\xD8\xFF\xE0\x00\x10JFIF", Some("image/jpeg")),
            (b"\xFF\xD8\xFF", Some("image/jpeg")),
            (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", Some("image/png")),
            (b"GIF87a\x01\x00", Some("image/gif")),
            (b"GIF89a\x01\x00", Some("image/gif")),
            (b"RIFF\x24\x00\x00\x00WEBPVP8 ", Some("image/webp")),
            // Near misses.
            (b"\xFF\xD8", None),
            (b"\x89PNG\r\n", None),
            (b"GIF88a", None),
            (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
            (b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>", None),
            (b"", None),
        ];
        for (bytes, expected) in cases {
            assert_eq!(sniff_image_type(bytes), expected, "{bytes:?}");
        }
    }

    #[test]
    fn names_are_checked_in_order() {
        let read = |s: &str| Some(Part::Read(s.as_bytes().to_vec()));
        assert_eq!(
            checked_name(read("party_parrot-2")).unwrap(),
            "party_parrot-2"
        );
        assert_eq!(checked_name(read(&"a".repeat(32))).unwrap(), "a".repeat(32));
        let message = |part| checked_name(part).unwrap_err().message().to_owned();
        assert!(message(None).contains("required"));
        assert!(message(read("")).contains("1-32"));
        assert!(message(read(&"a".repeat(33))).contains("1-32"));
        assert!(message(Some(Part::TooLong)).contains("1-32"));
        for bad in ["Wave", "wave!", "a b", "ünï", "dot.ted"] {
            assert!(message(read(bad)).contains("only"), "{bad}");
        }
        assert!(message(Some(Part::Read(vec![0xFF, 0xFE]))).contains("only"));
    }
}
