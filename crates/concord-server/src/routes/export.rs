//! Server export (`rest-extras.md` §5.1): `GET /servers/{id}/export`, the owner's
//! server as a ZIP archive of JSON files, with every DM channel of the owner.
//!
//! *Concord* (X20): the archive is streamed, never held whole. A task reads the store
//! a keyset page at a time ([`PAGE`] rows), hands each page to the ZIP writer on a
//! blocking thread (deflate is CPU work), and sends the compressed bytes in chunks of
//! about [`CHUNK`] bytes through a channel of [`QUEUE`] chunks that the response body
//! drains. Memory is bounded by a page and a few chunks whatever the server's size,
//! and a slow reader holds no thread: the task waits on the channel.
//!
//! Nothing is sent before the first chunk is ready, so an error until then (a small
//! export: any error) is a clean 500 JSON answer. An error after it aborts the body,
//! so the client sees a truncated download rather than a well-formed partial archive;
//! the cause is logged.
//!
//! The export is not one snapshot: each page is its own read. A row that exists for
//! the whole export is written exactly once (keyset paging), in order; what is posted,
//! edited or deleted while the export runs may or may not be in it.

use std::{
    io::{self, Write},
    sync::{Arc, Mutex, PoisonError},
};

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use chrono::{Datelike, Timelike, Utc};
use concord_protocol::{
    ChannelId, ChannelType, ErrorBody, ExportedChannel, ExportedDirectMessage, ExportedMember,
    ExportedMessage, ExportedRole, ExportedServer, ServerDto, ServerId, UserId,
};
use concord_store::{
    ExportCursor, ExportDmChannelRecord, ExportDmMessageRecord, ExportMemberRecord,
    ExportMessageRecord, Store, StoreError,
};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;
use utoipa_axum::{router::OpenApiRouter, routes};
use zip::{
    CompressionMethod, ZipWriter,
    result::ZipError,
    write::{SimpleFileOptions, StreamWriter},
};

use crate::{
    access::server_not_found,
    auth::Principal,
    error::{ApiError, ApiResult},
    extract::Path,
    state::AppState,
};

/// Rows per store read.
const PAGE: i64 = 500;
/// Bytes per body chunk (the last one may be shorter).
const CHUNK: usize = 64 * 1024;
/// Chunks waiting for the client at most.
const QUEUE: usize = 4;

/// The export route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export_server))
}

/// `name` as it appears in file names: Unicode letters, digits and `-` kept, anything
/// else `_`, lowercased.
pub fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// `Content-Disposition` of the archive: `filename` exactly as the reference sends it
/// when the name is ASCII; otherwise an ASCII stand-in (`_` for each other character)
/// plus the exact UTF-8 name as RFC 6266 `filename*`, since a header value holds no
/// raw UTF-8.
fn disposition(filename: &str) -> HeaderValue {
    let value = if filename.is_ascii() {
        format!("attachment; filename=\"{filename}\"")
    } else {
        let ascii: String = filename
            .chars()
            .map(|c| if c.is_ascii() { c } else { '_' })
            .collect();
        let mut exact = String::new();
        for byte in filename.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b'~') {
                exact.push(byte as char);
            } else {
                exact.push_str(&format!("%{byte:02X}"));
            }
        }
        format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{exact}")
    };
    // A slug holds letters, digits, `-` and `_` only, so the value is always valid.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    /// A store read failed.
    #[error("store read failed")]
    Store(#[source] StoreError),
    /// The ZIP writer failed.
    #[error("zip writer failed")]
    Zip(#[source] ZipError),
    /// An entry could not be written.
    #[error("entry write failed")]
    Write(#[source] io::Error),
    /// The writer's blocking task panicked or was cancelled.
    #[error("archive task failed")]
    Task(#[source] tokio::task::JoinError),
    /// The client went away.
    #[error("the client stopped reading")]
    Gone,
}

impl From<StoreError> for ExportError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl From<ZipError> for ExportError {
    fn from(err: ZipError) -> Self {
        Self::Zip(err)
    }
}

impl From<io::Error> for ExportError {
    fn from(err: io::Error) -> Self {
        Self::Write(err)
    }
}

impl From<serde_json::Error> for ExportError {
    fn from(err: serde_json::Error) -> Self {
        Self::Write(err.into())
    }
}

/// What the ZIP writer writes into: memory shared with the task that sends it on.
#[derive(Debug, Clone, Default)]
struct Output(Arc<Mutex<Vec<u8>>>);

impl Output {
    /// Takes the first `CHUNK` bytes when that many are waiting, or everything when
    /// `all`.
    fn take(&self, all: bool) -> Option<Bytes> {
        let mut buf = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if buf.is_empty() || (!all && buf.len() < CHUNK) {
            return None;
        }
        let n = if all { buf.len() } else { CHUNK };
        let rest = buf.split_off(n);
        Some(Bytes::from(std::mem::replace(&mut *buf, rest)))
    }
}

impl Write for Output {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

type Zip = ZipWriter<StreamWriter<Output>>;

/// What the body receives: a chunk, or the error that ends the body early.
type Chunk = Result<Bytes, io::Error>;

/// One export in progress.
struct Archive {
    /// `None` only while a blocking step holds it.
    zip: Option<Zip>,
    output: Output,
    tx: mpsc::Sender<Chunk>,
    /// `<slug>-export/`.
    root: String,
    options: SimpleFileOptions,
}

impl Archive {
    fn new(root: String, tx: mpsc::Sender<Chunk>) -> Self {
        let output = Output::default();
        let now = Utc::now();
        // The archive's entries carry the export time (UTC); the ZIP format keeps
        // 1980..=2107, so a clock outside it leaves the format's default.
        let modified = u16::try_from(now.year()).ok().and_then(|year| {
            zip::DateTime::from_date_and_time(
                year,
                u8::try_from(now.month()).ok()?,
                u8::try_from(now.day()).ok()?,
                u8::try_from(now.hour()).ok()?,
                u8::try_from(now.minute()).ok()?,
                u8::try_from(now.second()).ok()?,
            )
            .ok()
        });
        let mut options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .unix_permissions(0o644)
            // A streamed entry cannot be rewritten once its size is known, so every
            // entry is made ready for more than 4 GiB (a channel's history may be).
            .large_file(true);
        if let Some(modified) = modified {
            options = options.last_modified_time(modified);
        }
        Self {
            zip: Some(ZipWriter::new_stream(output.clone())),
            output,
            tx,
            root,
            options,
        }
    }

    /// Runs `write` on the ZIP writer on a blocking thread, then sends the full
    /// chunks it produced.
    async fn step<F>(&mut self, write: F) -> Result<(), ExportError>
    where
        F: FnOnce(&mut Zip) -> Result<(), ExportError> + Send + 'static,
    {
        let Some(mut zip) = self.zip.take() else {
            return Err(ExportError::Write(io::Error::other("writer lost")));
        };
        let (zip, written) = tokio::task::spawn_blocking(move || {
            let written = write(&mut zip);
            (zip, written)
        })
        .await
        .map_err(ExportError::Task)?;
        self.zip = Some(zip);
        written?;
        self.send(false).await
    }

    /// Sends what is waiting: full chunks, or everything when `all`.
    async fn send(&mut self, all: bool) -> Result<(), ExportError> {
        while let Some(chunk) = self.output.take(all) {
            self.tx
                .send(Ok(chunk))
                .await
                .map_err(|_| ExportError::Gone)?;
        }
        Ok(())
    }

    /// Starts the entry `name` (under the root folder) and writes `value` into it as
    /// pretty JSON.
    async fn json<T: Serialize + Send + 'static>(
        &mut self,
        name: &str,
        value: T,
    ) -> Result<(), ExportError> {
        let (name, options) = (format!("{}{name}", self.root), self.options);
        self.step(move |zip| {
            zip.start_file(name, options)?;
            serde_json::to_writer_pretty(zip, &value)?;
            Ok(())
        })
        .await
    }

    /// Starts the entry `name` (under the root folder), empty.
    async fn start(&mut self, name: &str) -> Result<(), ExportError> {
        let (name, options) = (format!("{}{name}", self.root), self.options);
        self.step(move |zip| Ok(zip.start_file(name, options)?))
            .await
    }

    /// Writes `lines` into the current entry, one JSON object and `\n` each.
    async fn lines<T: Serialize + Send + 'static>(
        &mut self,
        lines: Vec<T>,
    ) -> Result<(), ExportError> {
        self.step(move |zip| {
            for line in &lines {
                serde_json::to_writer(&mut *zip, line)?;
                zip.write_all(b"\n")?;
            }
            Ok(())
        })
        .await
    }

    /// Writes the end of the archive and sends everything left.
    async fn finish(mut self) -> Result<(), ExportError> {
        let Some(zip) = self.zip.take() else {
            return Err(ExportError::Write(io::Error::other("writer lost")));
        };
        tokio::task::spawn_blocking(move || zip.finish().map(drop))
            .await
            .map_err(ExportError::Task)??;
        self.send(true).await
    }
}

/// A pretty JSON array written a page at a time, byte for byte what
/// `serde_json::to_writer_pretty` makes of the whole array.
#[derive(Debug, Default)]
struct PrettyArray {
    started: bool,
}

impl PrettyArray {
    /// The text of `items`, following those already written.
    fn items<T: Serialize>(&mut self, items: &[T]) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::new();
        for item in items {
            out.extend_from_slice(if self.started { b",\n" } else { b"[\n" });
            self.started = true;
            let text = serde_json::to_string_pretty(item)?;
            // Serialised strings escape their newlines, so each line of the text is
            // a line of the layout, indented one level inside the array.
            for (n, line) in text.split('\n').enumerate() {
                if n > 0 {
                    out.push(b'\n');
                }
                out.extend_from_slice(b"  ");
                out.extend_from_slice(line.as_bytes());
            }
        }
        Ok(out)
    }

    /// The closing text.
    fn end(&self) -> &'static [u8] {
        if self.started { b"\n]" } else { b"[]" }
    }
}

/// Whether a page is full, so that another may follow.
fn full<T>(page: &[T]) -> bool {
    i64::try_from(page.len()).is_ok_and(|n| n >= PAGE)
}

/// Writes the whole archive of `server` for its owner `owner`.
async fn write_archive(
    store: &dyn Store,
    server: ServerDto,
    owner: UserId,
    archive: &mut Archive,
) -> Result<(), ExportError> {
    let id = server.server.id;
    let server = server.server;
    archive
        .json(
            "server.json",
            ExportedServer {
                id,
                name: server.name,
                owner_id: server.owner_id,
                icon_url: server.icon_url,
                is_public: server.is_public,
                created_at: server.created_at,
            },
        )
        .await?;

    // A server's channels and roles are few (each is a row the clients load whole).
    let channels = store.channels(id).await?;
    let listed: Vec<ExportedChannel> = channels
        .iter()
        .map(|c| ExportedChannel {
            id: c.id,
            name: c.name.clone(),
            channel_type: c.kind,
            position: c.position,
            category: c.category.clone(),
            topic: c.topic.clone(),
            created_at: c.created_at,
        })
        .collect();
    archive.json("channels.json", listed).await?;

    write_members(store, id, archive).await?;

    let mut roles: Vec<ExportedRole> = store
        .roles_of_servers(&[id])
        .await?
        .into_iter()
        .filter(|r| r.server_id == id)
        .map(|r| ExportedRole {
            id: r.id,
            name: r.name,
            permissions: r.permissions,
            color: r.color,
            position: r.position,
        })
        .collect();
    // The store lists them highest first; the export lowest first.
    roles.reverse();
    roles.sort_by_key(|r| r.position);
    archive.json("roles.json", roles).await?;

    for channel in channels.iter().filter(|c| c.kind == ChannelType::Text) {
        let name = format!("messages/{}-{}.jsonl", slug(&channel.name), channel.id);
        write_messages(store, channel.id, &name, archive).await?;
    }
    write_dms(store, owner, archive).await
}

/// `members.json`: one pretty array, written a page at a time.
async fn write_members(
    store: &dyn Store,
    server: ServerId,
    archive: &mut Archive,
) -> Result<(), ExportError> {
    archive.start("members.json").await?;
    let mut array = PrettyArray::default();
    let mut after: Option<ExportCursor> = None;
    loop {
        let page = store.export_members(server, after.as_ref(), PAGE).await?;
        after = page.last().map(ExportMemberRecord::cursor);
        let more = full(&page);
        let members: Vec<ExportedMember> = page
            .into_iter()
            .map(|m| ExportedMember {
                user_id: m.user_id,
                username: m.username,
                nickname: None,
                joined_at: m.joined_at,
            })
            .collect();
        let text = array.items(&members)?;
        archive.step(move |zip| Ok(zip.write_all(&text)?)).await?;
        if !more {
            break;
        }
    }
    let end = array.end();
    archive.step(move |zip| Ok(zip.write_all(end)?)).await
}

/// The file `name` of a text channel's live messages; none when it has none.
async fn write_messages(
    store: &dyn Store,
    channel: ChannelId,
    name: &str,
    archive: &mut Archive,
) -> Result<(), ExportError> {
    let mut after: Option<ExportCursor> = None;
    loop {
        let page = store.export_messages(channel, after.as_ref(), PAGE).await?;
        if after.is_none() {
            if page.is_empty() {
                return Ok(());
            }
            archive.start(name).await?;
        }
        after = page.last().map(ExportMessageRecord::cursor);
        let more = full(&page);
        let lines: Vec<ExportedMessage> = page
            .into_iter()
            .map(|m| ExportedMessage {
                id: m.id,
                author_id: m.author_id,
                author_username: m.author_username,
                content: m.content,
                reply_to: m.reply_to,
                edited_at: m.edited_at,
                created_at: m.created_at,
            })
            .collect();
        archive.lines(lines).await?;
        if !more {
            return Ok(());
        }
    }
}

/// A file per DM channel of `owner`, instance-wide (empty for a channel without
/// messages).
async fn write_dms(
    store: &dyn Store,
    owner: UserId,
    archive: &mut Archive,
) -> Result<(), ExportError> {
    let mut after_dm: Option<ExportCursor> = None;
    loop {
        let dms = store
            .export_dm_channels(owner, after_dm.as_ref(), PAGE)
            .await?;
        after_dm = dms.last().map(ExportDmChannelRecord::cursor);
        let more_dms = full(&dms);
        for dm in dms {
            let name = format!("dm_messages/{}-{}.jsonl", slug(&dm.partner_username), dm.id);
            archive.start(&name).await?;
            let mut after: Option<ExportCursor> = None;
            loop {
                let page = store
                    .export_dm_messages(dm.id, after.as_ref(), PAGE)
                    .await?;
                after = page.last().map(ExportDmMessageRecord::cursor);
                let more = full(&page);
                let lines: Vec<ExportedDirectMessage> = page
                    .into_iter()
                    .map(|m| ExportedDirectMessage {
                        id: m.id,
                        author_id: m.author_id,
                        author_username: m.author_username,
                        content: m.content,
                        created_at: m.created_at,
                    })
                    .collect();
                archive.lines(lines).await?;
                if !more {
                    break;
                }
            }
        }
        if !more_dms {
            return Ok(());
        }
    }
}

/// Runs the export to its end, ending the body early with an error when it fails.
async fn run(store: Arc<dyn Store>, server: ServerDto, owner: UserId, mut archive: Archive) {
    let server_id = server.server.id;
    let tx = archive.tx.clone();
    let result = match write_archive(&*store, server, owner, &mut archive).await {
        Ok(()) => archive.finish().await,
        Err(err) => Err(err),
    };
    match result {
        Ok(()) => {}
        Err(ExportError::Gone) => {
            tracing::debug!(server = %server_id, "export abandoned by the client");
        }
        Err(err) => {
            tracing::error!(
                server = %server_id,
                error = %err,
                source = ?std::error::Error::source(&err),
                "server export failed"
            );
            // Ends the body without its last chunk: a truncated download, never a
            // well-formed partial archive. Before the first chunk, the route answers
            // 500 instead.
            let _ = tx.send(Err(io::Error::other("export failed"))).await;
        }
    }
}

#[utoipa::path(
    get,
    path = "/servers/{id}/export",
    tag = "servers",
    description = "The server as a ZIP archive (owner only), streamed: `server.json`, \
                   `channels.json`, `members.json`, `roles.json`, a `messages/*.jsonl` \
                   file per text channel with live messages and a `dm_messages/*.jsonl` \
                   file per DM channel of the caller, all under `<slug>-export/`. No \
                   `Content-Length`; a failure after the first bytes ends the download \
                   early.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    responses(
        (status = 200, description = "The archive.", content_type = "application/zip",
            headers(
                ("Content-Disposition" = String, description = "`attachment; filename=\"<slug>-export-<YYYYMMDD>.zip\"` (UTC date)."),
            ),
        ),
        (status = 400, description = "The id is not a UUID.", body = ErrorBody),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 404, description = "No such server, or the caller is not its owner.", body = ErrorBody),
        (status = 500, description = "The export failed before its first bytes; the cause is logged.", body = ErrorBody),
    ),
)]
async fn export_server(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<ServerId>,
) -> ApiResult<Response> {
    let owner = principal.id();
    if state.directory.owner(id) != Some(owner) {
        return Err(server_not_found());
    }
    let server = match state.store.server(id).await {
        Ok(Some(server)) if server.server.owner_id == owner => server,
        Ok(_) => return Err(server_not_found()),
        Err(err) => return Err(ApiError::internal(&err)),
    };
    let slug = slug(&server.server.name);
    let filename = format!("{slug}-export-{}.zip", Utc::now().format("%Y%m%d"));

    let (tx, rx) = mpsc::channel::<Chunk>(QUEUE);
    let archive = Archive::new(format!("{slug}-export/"), tx);
    tokio::spawn(run(state.store.clone(), server, owner, archive));
    respond(&filename, rx).await
}

/// The answer whose body is what arrives on `rx`, once the first chunk has: a failure
/// (or the sender gone) before it is a 500 JSON answer, since nothing is sent yet.
async fn respond(filename: &str, mut rx: mpsc::Receiver<Chunk>) -> ApiResult<Response> {
    let first = match rx.recv().await {
        Some(Ok(first)) => first,
        Some(Err(_)) | None => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error",
            ));
        }
    };
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let body = futures_util::stream::iter([Ok::<_, io::Error>(first)]).chain(rest);

    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    headers.insert(header::CONTENT_DISPOSITION, disposition(filename));
    Ok((headers, Body::from_stream(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_keep_letters_digits_and_dashes() {
        assert_eq!(slug("General Chat"), "general_chat");
        assert_eq!(slug("dev-ops #1!"), "dev-ops__1_");
        assert_eq!(slug("Ünïcödé Café"), "ünïcödé_café");
        assert_eq!(slug("日本語 ok"), "日本語_ok");
        assert_eq!(slug("../../etc/passwd"), "______etc_passwd");
        assert_eq!(slug("a_b.c"), "a_b_c");
    }

    #[test]
    fn dispositions() {
        let text = |v: HeaderValue| v.to_str().unwrap().to_owned();
        assert_eq!(
            text(disposition("hall-export-20260101.zip")),
            "attachment; filename=\"hall-export-20260101.zip\""
        );
        assert_eq!(
            text(disposition("café-export-20260101.zip")),
            "attachment; filename=\"caf_-export-20260101.zip\"; \
             filename*=UTF-8''caf%C3%A9-export-20260101.zip"
        );
    }

    #[test]
    fn a_paged_array_is_laid_out_as_a_whole_one() {
        #[derive(Serialize)]
        struct Row {
            a: i64,
            b: Option<String>,
            c: Vec<i64>,
        }
        let rows: Vec<Row> = (0..5)
            .map(|a| Row {
                a,
                b: (a % 2 == 0).then(|| format!("line\n{a} \"q\"")),
                c: vec![a; usize::try_from(a).unwrap() % 3],
            })
            .collect();
        for page in [1, 2, 5] {
            let mut array = PrettyArray::default();
            let mut out = Vec::new();
            for chunk in rows.chunks(page) {
                out.extend(array.items(chunk).unwrap());
            }
            out.extend_from_slice(array.end());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string_pretty(&rows).unwrap(),
                "pages of {page}"
            );
        }
        let empty: Vec<Row> = Vec::new();
        let mut array = PrettyArray::default();
        let mut out = array.items(&empty).unwrap();
        out.extend_from_slice(array.end());
        assert_eq!(
            out,
            serde_json::to_string_pretty(&empty).unwrap().as_bytes()
        );
    }

    async fn answer(chunks: Vec<Chunk>) -> (StatusCode, Result<Vec<u8>, String>) {
        let (tx, rx) = mpsc::channel(chunks.len().max(1));
        for chunk in chunks {
            tx.send(chunk).await.unwrap();
        }
        drop(tx);
        let response = match respond("x-export-20260101.zip", rx).await {
            Ok(response) => response,
            Err(err) => err.into_response(),
        };
        let status = response.status();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .map(|collected| collected.to_bytes().to_vec())
            .map_err(|err| err.to_string());
        (status, body)
    }

    #[tokio::test]
    async fn a_failure_before_the_first_chunk_is_a_json_500() {
        let json = br#"{"error":"Internal server error"}"#.to_vec();
        for chunks in [
            vec![Err(io::Error::other("store"))],
            vec![
                Err(io::Error::other("store")),
                Ok(Bytes::from_static(b"late")),
            ],
            Vec::new(),
        ] {
            assert_eq!(
                answer(chunks).await,
                (StatusCode::INTERNAL_SERVER_ERROR, Ok(json.clone()))
            );
        }
    }

    #[tokio::test]
    async fn a_failure_after_the_first_chunk_breaks_the_body() {
        // The control: the chunks of a whole export make the body.
        let (status, body) = answer(vec![
            Ok(Bytes::from_static(b"PK")),
            Ok(Bytes::from_static(b"..")),
        ])
        .await;
        assert_eq!((status, body), (StatusCode::OK, Ok(b"PK..".to_vec())));
        let (status, body) = answer(vec![
            Ok(Bytes::from_static(b"PK")),
            Err(io::Error::other("store")),
            Ok(Bytes::from_static(b"never")),
        ])
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.is_err(), "{body:?}");
    }
}
