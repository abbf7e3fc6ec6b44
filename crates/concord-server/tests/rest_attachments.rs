//! Attachments over real HTTP (`rest-extras.md` §8 with Concord X1-X5): upload, list
//! and serve (header or signed link), each refusal in order and none leaving a file
//! or row behind, the 10-per-message limit, VIEW_CHANNEL on list and serve, and the
//! files going with their message (soft delete) and channel.

use std::path::{Path, PathBuf};

use concord_server::perms::Permissions;
use concord_testkit::{Response, TestServer, TestUser, assert_exact_error, assert_keys, str_of};
use serde_json::Value;

const BOUNDARY: &str = "concord-attachment-test-boundary";
const KEYS: &[&str] = &[
    "id",
    "message_id",
    "filename",
    "file_size",
    "mime_type",
    "url",
    "width",
    "height",
    "created_at",
];

fn png(len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec();
    bytes.extend((0..len.saturating_sub(bytes.len())).map(|i| (i % 251) as u8));
    bytes
}

fn pdf() -> Vec<u8> {
    b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n".to_vec()
}

/// A part: field name, file name, bytes (declared as PNG whatever they are).
type Part<'a> = (&'a str, Option<&'a str>, Vec<u8>);

fn form(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file_name, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{name}\"");
        if let Some(file_name) = file_name {
            disposition.push_str(&format!("; filename=\"{file_name}\""));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\nContent-Type: image/png\r\n\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn path_of(message: &str) -> String {
    format!("/messages/{message}/attachments")
}

async fn upload(user: &TestUser, message: &str, parts: &[Part<'_>]) -> Response {
    user.api
        .raw(
            "POST",
            &path_of(message),
            Some(&format!("multipart/form-data; boundary={BOUNDARY}")),
            form(parts),
        )
        .await
}

fn attachment_dir(server: &TestServer) -> PathBuf {
    server.state.config.data_dir.join("attachments")
}

/// Every file under `dir`, temporaries included, as `folder/name`.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(folders) = std::fs::read_dir(dir) else {
        return out;
    };
    for folder in folders {
        let folder = folder.unwrap();
        if folder.path().is_dir() {
            for file in std::fs::read_dir(folder.path()).unwrap() {
                out.push(format!(
                    "{}/{}",
                    folder.file_name().to_string_lossy(),
                    file.unwrap().file_name().to_string_lossy()
                ));
            }
        } else {
            out.push(folder.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

/// A raw GET of `url` (relative), with an optional bearer token: status, headers, bytes.
async fn fetch(
    server: &TestServer,
    url: &str,
    token: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = reqwest::Client::new().get(server.url(url));
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.unwrap().to_vec())
}

struct World {
    server: TestServer,
    owner: TestUser,
    member: TestUser,
    guild: String,
    channel: String,
    message: String,
}

async fn world() -> World {
    let server = TestServer::start().await;
    let owner = server.user("owner").await;
    let member = server.user("member").await;
    let guild = owner.create_server("files").await;
    member.join(&guild).await;
    let channel = owner.create_channel(&guild, "general", "text").await;
    let message = str_of(&owner.post(&channel, "\u{200b}").await["id"]);
    World {
        server,
        owner,
        member,
        guild,
        channel,
        message,
    }
}

#[tokio::test]
async fn upload_list_and_serve_by_header_and_signed_link() {
    let w = world().await;
    let text = "h\u{e9}llo, <b>world</b>\n".as_bytes().to_vec();
    let res = upload(
        &w.owner,
        &w.message,
        &[
            ("files", Some("cat (1).png"), png(70_000)),
            ("note", None, b"skipped".to_vec()),
            ("files", Some("notes.txt"), text.clone()),
            ("files", None, pdf()),
        ],
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.body);
    let created = res.body.as_array().unwrap().clone();
    assert_eq!(created.len(), 3);
    for a in &created {
        assert_keys(a, KEYS);
        assert_eq!(a["message_id"], Value::String(w.message.clone()));
        assert!(a["width"].is_null() && a["height"].is_null());
    }
    let summary: Vec<_> = created
        .iter()
        .map(|a| {
            (
                str_of(&a["filename"]),
                str_of(&a["mime_type"]),
                a["file_size"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("cat (1).png".to_owned(), "image/png".to_owned(), 70_000),
            (
                "notes.txt".to_owned(),
                "text/plain".to_owned(),
                text.len() as i64
            ),
            (
                "unknown".to_owned(),
                "application/pdf".to_owned(),
                pdf().len() as i64
            ),
        ]
    );
    // The edited_at of the message is untouched.
    let message = w.owner.api.get(&format!("/messages/{}", w.message)).await;
    assert!(message.body["edited_at"].is_null(), "{}", message.body);

    // Another member lists them, with links signed for them.
    let listed = w.member.api.get(&path_of(&w.message)).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let listed = listed.body.as_array().unwrap().clone();
    let ids = |v: &[Value]| v.iter().map(|a| str_of(&a["id"])).collect::<Vec<_>>();
    assert_eq!(ids(&listed), ids(&created));
    assert_ne!(listed[0]["url"], created[0]["url"]);

    // The signed link works with no header at all.
    let url = str_of(&listed[0]["url"]);
    assert!(
        url.starts_with(&format!("/files/{}/", w.message)) && url.contains("sig="),
        "{url}"
    );
    let (status, headers, bytes) = fetch(&w.server, &url, None).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, png(70_000));
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["cache-control"], "private");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["content-disposition"],
        "inline; filename=\"cat (1).png\"; filename*=UTF-8''cat%20%281%29.png"
    );
    // Under /api too.
    assert_eq!(fetch(&w.server, &format!("/api{url}"), None).await.0, 200);

    // The bare path needs the header.
    let bare = url.split_once('?').unwrap().0.to_owned();
    let (status, _, _) = fetch(&w.server, &bare, None).await;
    assert_eq!(status, 401);
    let (status, headers, bytes) = fetch(&w.server, &bare, Some(&w.member.token)).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, png(70_000));
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline;")
    );
    let text_url = str_of(&listed[1]["url"]);
    let (status, headers, bytes) = fetch(&w.server, &text_url, None).await;
    assert_eq!((status, bytes), (200, text));
    assert_eq!(headers["content-type"], "text/plain");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );

    // A tampered or re-targeted link is refused.
    let tampered = url.replace("sig=", "sig=A");
    assert_eq!(fetch(&w.server, &tampered, None).await.0, 401);
    let other_user = url.replace(&w.member.id, &w.owner.id);
    assert_eq!(fetch(&w.server, &other_user, None).await.0, 401);
    let pdf_path = str_of(&listed[2]["url"])
        .split_once('?')
        .unwrap()
        .0
        .to_owned();
    let moved = format!("{pdf_path}?{}", url.split_once('?').unwrap().1);
    assert_eq!(fetch(&w.server, &moved, None).await.0, 401);
    // An unknown name of a real message.
    let unknown = format!("/files/{}/nothing_here.png", w.message);
    let (status, _, body) = fetch(&w.server, &unknown, Some(&w.owner.token)).await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    w.server.shutdown().await;
}

#[tokio::test]
async fn refusals_in_order_leave_nothing_behind() {
    let w = world().await;
    let dir = attachment_dir(&w.server);
    let stranger = w.server.user("stranger").await;
    let ok = || vec![("files", Some("a.png"), png(100))];

    let res = w
        .owner
        .api
        .raw("POST", &path_of(&w.message), Some("text/plain"), b"x")
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    let res = upload(&w.owner, "not-a-uuid", &ok()).await;
    assert_eq!(res.status, 400);
    let res = upload(&w.owner, &uuid::Uuid::new_v4().to_string(), &ok()).await;
    assert_exact_error(&res, 404);
    assert_eq!(res.body["error"], "Message not found");
    let res = upload(&stranger, &w.message, &ok()).await;
    assert_eq!(
        (res.status, str_of(&res.body["error"])),
        (404, "Server not found".to_owned())
    );
    let res = upload(&w.member, &w.message, &ok()).await;
    assert_eq!(
        (res.status, str_of(&res.body["error"])),
        (
            403,
            "Only the message author can add attachments".to_owned()
        )
    );
    let member_message = str_of(&w.member.post(&w.channel, "mine").await["id"]);
    w.server
        .deny(&w.channel, &w.member, Permissions::ATTACH_FILES.0)
        .await;
    let res = upload(&w.member, &member_message, &ok()).await;
    assert_eq!(
        (res.status, str_of(&res.body["error"])),
        (
            403,
            "You don't have permission to attach files in this channel".to_owned()
        )
    );

    let error_of = |res: &Response| (res.status, str_of(&res.body["error"]));
    let res = upload(
        &w.owner,
        &w.message,
        &[("files", Some("e.png"), Vec::new())],
    )
    .await;
    assert_eq!(error_of(&res), (400, "Files must not be empty".to_owned()));
    let res = upload(&w.owner, &w.message, &[("other", Some("x"), png(10))]).await;
    assert_eq!(
        error_of(&res),
        (
            400,
            "No files provided — include at least one field named \"files\"".to_owned()
        )
    );
    for (bytes, message) in [
        (
            b"<!DOCTYPE html><script>x</script>".to_vec(),
            "File type 'text/html' is not allowed",
        ),
        (
            b"#!/bin/sh\necho".to_vec(),
            "File type 'text/x-shellscript' is not allowed",
        ),
        (
            b"PK\x03\x04zipzip".to_vec(),
            "File type 'application/zip' is not allowed",
        ),
    ] {
        // A good file first: all or nothing.
        let res = upload(
            &w.owner,
            &w.message,
            &[ok().remove(0), ("files", Some("b"), bytes)],
        )
        .await;
        assert_eq!(error_of(&res), (400, message.to_owned()));
    }
    let res = upload(
        &w.owner,
        &w.message,
        &[ok().remove(0), ("files", Some("b"), vec![0, 1, 0xFE, 0xFF])],
    )
    .await;
    assert_eq!(res.status, 400);
    assert!(
        str_of(&res.body["error"]).starts_with("File type could not be determined."),
        "{}",
        res.body
    );
    // A malformed body after a good file.
    let mut broken = form(&ok());
    broken.truncate(broken.len() - 10);
    let res = w
        .owner
        .api
        .raw(
            "POST",
            &path_of(&w.message),
            Some(&format!("multipart/form-data; boundary={BOUNDARY}")),
            broken,
        )
        .await;
    assert_eq!(error_of(&res), (400, "Invalid multipart data".to_owned()));

    // Eleven at once: refused at the eleventh, nothing kept.
    let eleven: Vec<Part<'_>> = (0..11).map(|_| ("files", Some("p.png"), png(64))).collect();
    let res = upload(&w.owner, &w.message, &eleven).await;
    assert_eq!(
        error_of(&res),
        (
            400,
            "Messages may not have more than 10 attachments".to_owned()
        )
    );

    // Nothing of all that is on disk or listed.
    assert!(files_under(&dir).is_empty(), "{:?}", files_under(&dir));
    let listed = w.owner.api.get(&path_of(&w.message)).await;
    assert_eq!(listed.body, Value::Array(vec![]));

    // Ten pass in two uploads, the eleventh does not.
    let seven: Vec<Part<'_>> = (0..7).map(|_| ("files", Some("p.png"), png(64))).collect();
    assert_eq!(upload(&w.owner, &w.message, &seven).await.status, 201);
    let four: Vec<Part<'_>> = (0..4).map(|_| ("files", Some("p.png"), png(64))).collect();
    let res = upload(&w.owner, &w.message, &four).await;
    assert_eq!(
        error_of(&res),
        (
            400,
            "Messages may not have more than 10 attachments".to_owned()
        )
    );
    assert_eq!(files_under(&dir).len(), 7, "{:?}", files_under(&dir));
    let three: Vec<Part<'_>> = (0..3).map(|_| ("files", Some("p.png"), png(64))).collect();
    assert_eq!(upload(&w.owner, &w.message, &three).await.status, 201);
    let res = upload(&w.owner, &w.message, &ok()).await;
    assert_eq!(res.status, 400);
    assert_eq!(files_under(&dir).len(), 10);
    w.server.shutdown().await;
}

#[tokio::test]
async fn a_file_over_50_mib_is_413_and_leaves_nothing() {
    let w = world().await;
    let big = png(52_428_801);
    let res = upload(&w.owner, &w.message, &[("files", Some("big.png"), big)]).await;
    assert_eq!(res.status, 413, "{}", res.text);
    assert_eq!(res.body["error"], "File size exceeds the 50 MB limit");
    assert!(files_under(&attachment_dir(&w.server)).is_empty());
    // A body over the route's own limit is refused before it is read; the global
    // 2 MiB limit does not apply to this route (the 50 MiB file above was read).
    let res = w
        .owner
        .api
        .raw(
            "POST",
            &path_of(&w.message),
            Some(&format!("multipart/form-data; boundary={BOUNDARY}")),
            vec![b'x'; 50 * 1024 * 1024 + 64 * 1024 + 1],
        )
        .await;
    assert_eq!(res.status, 413, "{}", res.text);
    w.server.shutdown().await;
}

#[tokio::test]
async fn view_channel_is_needed_to_list_and_serve() {
    let w = world().await;
    let res = upload(&w.owner, &w.message, &[("files", Some("a.png"), png(100))]).await;
    assert_eq!(res.status, 201);
    let listed = w.member.api.get(&path_of(&w.message)).await;
    let url = str_of(&listed.body[0]["url"]);
    assert_eq!(fetch(&w.server, &url, None).await.0, 200);

    w.server
        .deny(&w.channel, &w.member, Permissions::VIEW_CHANNEL.0)
        .await;
    let res = w.member.api.get(&path_of(&w.message)).await;
    assert_eq!(res.status, 403, "{}", res.body);
    // The link they got before is re-checked when used.
    assert_eq!(fetch(&w.server, &url, None).await.0, 403);
    let bare = url.split_once('?').unwrap().0;
    assert_eq!(fetch(&w.server, bare, Some(&w.member.token)).await.0, 403);
    // A stranger: not a member.
    let stranger = w.server.user("stranger").await;
    let res = stranger.api.get(&path_of(&w.message)).await;
    assert_eq!(
        (res.status, str_of(&res.body["error"])),
        (404, "Server not found".to_owned())
    );
    assert_eq!(fetch(&w.server, bare, Some(&stranger.token)).await.0, 404);
    w.server.shutdown().await;
}

#[tokio::test]
async fn files_go_with_their_message_and_channel() {
    let w = world().await;
    let dir = attachment_dir(&w.server);
    let res = upload(
        &w.owner,
        &w.message,
        &[
            ("files", Some("a.png"), png(100)),
            ("files", Some("b.txt"), b"hi".to_vec()),
        ],
    )
    .await;
    assert_eq!(res.status, 201);
    let url = str_of(&res.body[0]["url"]);
    let other = str_of(&w.owner.post(&w.channel, "second").await["id"]);
    assert_eq!(
        upload(&w.owner, &other, &[("files", Some("c.png"), png(100))])
            .await
            .status,
        201
    );
    assert_eq!(files_under(&dir).len(), 3);

    // Soft delete: the message's files go, the other's stay.
    let res = w
        .owner
        .api
        .delete(&format!("/messages/{}", w.message))
        .await;
    assert_eq!(res.status, 204, "{}", res.body);
    let left = files_under(&dir);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with(&other), "{left:?}");
    assert_eq!(fetch(&w.server, &url, None).await.0, 404);
    let res = w.owner.api.get(&path_of(&w.message)).await;
    assert_eq!(
        (res.status, str_of(&res.body["error"])),
        (404, "Message not found".to_owned())
    );

    // Channel delete takes the rest.
    let res = w
        .owner
        .api
        .delete(&format!("/servers/{}/channels/{}", w.guild, w.channel))
        .await;
    assert_eq!(res.status, 204, "{}", res.body);
    assert!(files_under(&dir).is_empty(), "{:?}", files_under(&dir));
    w.server.shutdown().await;
}
