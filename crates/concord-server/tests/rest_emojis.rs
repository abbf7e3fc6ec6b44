//! Custom emojis over real HTTP and WebSocket (`rest.md` §7.16): upload, list, serve
//! and delete; every refusal in the contract's order, none of which leaves a file in
//! the data directory or a row behind (Concord answers 413 for an image over 256 KiB
//! and 415 for one of an unknown type); the 50-emoji limit; the events reaching the
//! server's members and nobody else; and the images going with their rows (emoji
//! delete, server delete).

mod moderation_support;

use std::path::PathBuf;

use concord_server::perms::Permissions;
use concord_testkit::{Response, TestServer, TestUser, assert_exact_error, assert_keys, str_of};
use moderation_support::{grant, next};
use serde_json::{Value, json};

const EMOJI_KEYS: &[&str] = &[
    "id",
    "server_id",
    "created_by",
    "name",
    "url",
    "content_type",
    "file_size",
    "created_at",
];

const BOUNDARY: &str = "concord-emoji-test-boundary";
const MAX_IMAGE: usize = 256 * 1024;

/// An image of `len` bytes starting with `magic` (the rest is filler: only the first
/// bytes are looked at).
fn image(magic: &[u8], len: usize) -> Vec<u8> {
    let mut bytes = magic.to_vec();
    bytes.extend((0..len.saturating_sub(magic.len())).map(|i| (i % 251) as u8));
    bytes.truncate(len.max(magic.len()));
    bytes
}

fn png(len: usize) -> Vec<u8> {
    image(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", len)
}

fn gif() -> Vec<u8> {
    image(b"GIF89a\x01\x00\x01\x00", 300)
}

fn jpeg() -> Vec<u8> {
    image(b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00", 500)
}

fn webp() -> Vec<u8> {
    image(b"RIFF\xf4\x01\x00\x00WEBPVP8 ", 500)
}

/// One part of a `multipart/form-data` body.
struct Part {
    name: &'static str,
    file_name: Option<&'static str>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

fn text(name: &'static str, value: &str) -> Part {
    Part {
        name,
        file_name: None,
        content_type: None,
        body: value.as_bytes().to_vec(),
    }
}

/// An `image` part declared as PNG whatever it holds (the server ignores the claim).
fn file(bytes: Vec<u8>) -> Part {
    Part {
        name: "image",
        file_name: Some("emoji.png"),
        content_type: Some("image/png"),
        body: bytes,
    }
}

/// The body of a form with these parts, built by hand (no multipart client here).
fn form(parts: &[Part]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", part.name);
        if let Some(file_name) = part.file_name {
            disposition.push_str(&format!("; filename=\"{file_name}\""));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(content_type) = part.content_type {
            body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&part.body);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// Sends `body` with this content type and the user's token.
async fn send(
    user: &TestUser,
    method: reqwest::Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Response {
    user.api
        .raw(method.as_str(), path, content_type, body)
        .await
}

fn emojis_path(server_id: &str) -> String {
    format!("/servers/{server_id}/emojis")
}

/// `POST /servers/{server_id}/emojis` with a form of these parts.
async fn upload(user: &TestUser, server_id: &str, parts: &[Part]) -> Response {
    send(
        user,
        reqwest::Method::POST,
        &emojis_path(server_id),
        Some(&multipart_type()),
        form(parts),
    )
    .await
}

/// Uploads `name` with `bytes`, asserts 201 and returns the emoji.
async fn created(user: &TestUser, server_id: &str, name: &str, bytes: Vec<u8>) -> Value {
    let res = upload(user, server_id, &[text("name", name), file(bytes)]).await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.body
}

/// `GET {path}` without credentials: status, headers and the raw bytes.
async fn fetch(server: &TestServer, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let res = reqwest::get(server.url(path)).await.expect("request");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.expect("body").to_vec())
}

fn emoji_dir(server: &TestServer) -> PathBuf {
    server.state.config.data_dir.join("emojis")
}

/// The file names in the emoji directory, sorted.
fn files_on_disk(server: &TestServer) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(emoji_dir(server))
        .expect("emoji directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn sorted_ids(emojis: &[&Value]) -> Vec<String> {
    let mut ids: Vec<String> = emojis.iter().map(|e| str_of(&e["id"])).collect();
    ids.sort();
    ids
}

fn random_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn emojis_are_uploaded_listed_served_and_deleted_with_events_to_members_only() {
    let server = TestServer::start().await;
    let (alice, bob, carol, dave) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
        server.user("dave").await,
    );
    let hall = alice.create_server("hall").await;
    let other = dave.create_server("other").await;
    bob.join(&hall).await;
    carol.join(&hall).await;
    grant(&server, &hall, &carol, Permissions::ADMINISTRATOR.0).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut dave_gw, _) = server.connect(&dave.ws_query()).await;
    // The emoji directory exists from the start.
    assert!(files_on_disk(&server).is_empty());

    // The owner uploads a PNG.
    let wave_bytes = png(1_000);
    let wave = created(&alice, &hall, "wave", wave_bytes.clone()).await;
    assert_keys(&wave, EMOJI_KEYS);
    let wave_id = str_of(&wave["id"]);
    assert_eq!(wave["server_id"], hall.as_str());
    assert_eq!(wave["created_by"], alice.id.as_str());
    assert_eq!(wave["name"], "wave");
    assert_eq!(wave["url"], format!("/emojis/{wave_id}"));
    assert_eq!(wave["content_type"], "image/png");
    assert_eq!(wave["file_size"], 1_000);
    // The event is the emoji itself, to the members.
    assert_eq!(
        next(&mut bob_gw).await,
        ("CUSTOM_EMOJI_CREATE".to_owned(), wave.clone())
    );
    // dave is no member: the next thing he gets is his own server's emoji (the
    // positive control: he does receive these events, from his own server).
    let dave_own = created(&dave, &other, "mine", png(10)).await;
    assert_eq!(
        next(&mut dave_gw).await,
        ("CUSTOM_EMOJI_CREATE".to_owned(), dave_own.clone())
    );

    // An ADMINISTRATOR uploads too; the declared type (PNG) is ignored for the bytes'.
    let parrot = created(&carol, &hall, "party_parrot-2", gif()).await;
    assert_eq!(parrot["content_type"], "image/gif");
    assert_eq!(parrot["created_by"], carol.id.as_str());
    assert_eq!(next(&mut bob_gw).await.0, "CUSTOM_EMOJI_CREATE");
    let jpeg_emoji = created(&alice, &hall, "photo", jpeg()).await;
    assert_eq!(jpeg_emoji["content_type"], "image/jpeg");
    assert_eq!(next(&mut bob_gw).await.0, "CUSTOM_EMOJI_CREATE");
    let webp_emoji = created(&alice, &hall, "w", webp()).await;
    assert_eq!(webp_emoji["content_type"], "image/webp");
    assert_eq!(next(&mut bob_gw).await.0, "CUSTOM_EMOJI_CREATE");
    // A name is per server.
    created(&dave, &other, "wave", png(20)).await;
    assert_eq!(next(&mut dave_gw).await.0, "CUSTOM_EMOJI_CREATE");

    // Listing: members only, oldest first.
    let listed = bob.api.get(&emojis_path(&hall)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body, json!([wave, parrot, jpeg_emoji, webp_emoji]));
    assert_exact_error(&dave.api.get(&emojis_path(&hall)).await, 404);
    assert_exact_error(&bob.api.get(&emojis_path(&random_id())).await, 404);
    let api_listed = bob.api.get(&format!("/api{}", emojis_path(&hall))).await;
    assert_eq!(api_listed.body, listed.body);

    // One file per emoji, named by its id.
    let everything: Vec<&Value> = listed.body.as_array().unwrap().iter().collect();
    let mut expected = sorted_ids(&everything);
    expected.extend(
        dave.api
            .get(&emojis_path(&other))
            .await
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|e| str_of(&e["id"])),
    );
    expected.sort();
    assert_eq!(files_on_disk(&server), expected);

    // Served to anyone, as uploaded.
    for (emoji, bytes) in [
        (&wave, wave_bytes.clone()),
        (&parrot, gif()),
        (&jpeg_emoji, jpeg()),
        (&webp_emoji, webp()),
    ] {
        let url = str_of(&emoji["url"]);
        for path in [url.clone(), format!("/api{url}")] {
            let (status, headers, body) = fetch(&server, &path).await;
            assert_eq!(status, 200, "{path}");
            assert_eq!(body, bytes, "{path}");
            assert_eq!(
                headers["content-type"],
                emoji["content_type"].as_str().unwrap()
            );
            assert_eq!(headers["cache-control"], "public, max-age=86400");
            assert_eq!(headers["x-content-type-options"], "nosniff");
        }
    }
    let (status, _, body) = fetch(&server, &format!("/emojis/{}", random_id())).await;
    assert_eq!(status, 404);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body, json!({"error": "Emoji not found"}));
    let (status, _, _) = fetch(&server, "/emojis/not-a-uuid").await;
    assert_eq!(status, 400);

    // Deleting: 404 server, 403, 404 emoji, in that order.
    let wave_path = format!("{}/{wave_id}", emojis_path(&hall));
    assert_exact_error(&dave.api.delete(&wave_path).await, 404);
    assert_exact_error(
        &alice
            .api
            .delete(&format!("{}/{wave_id}", emojis_path(&random_id())))
            .await,
        404,
    );
    assert_exact_error(&bob.api.delete(&wave_path).await, 403);
    assert_exact_error(
        &bob.api
            .delete(&format!("{}/{}", emojis_path(&hall), random_id()))
            .await,
        403,
    );
    assert_exact_error(
        &alice
            .api
            .delete(&format!("{}/{}", emojis_path(&hall), random_id()))
            .await,
        404,
    );
    // Another server's emoji is not this server's.
    let foreign = format!("{}/{}", emojis_path(&hall), str_of(&dave_own["id"]));
    assert_exact_error(&alice.api.delete(&foreign).await, 404);
    assert_eq!(fetch(&server, &str_of(&dave_own["url"])).await.0, 200);

    let res = carol.api.delete(&wave_path).await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(
        next(&mut bob_gw).await,
        (
            "CUSTOM_EMOJI_DELETE".to_owned(),
            json!({"server_id": hall, "emoji_id": wave_id})
        )
    );
    // dave again gets only his own server's delete.
    let res = dave
        .api
        .delete(&format!(
            "{}/{}",
            emojis_path(&other),
            str_of(&dave_own["id"])
        ))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(
        next(&mut dave_gw).await,
        (
            "CUSTOM_EMOJI_DELETE".to_owned(),
            json!({"server_id": other, "emoji_id": dave_own["id"]})
        )
    );

    // The files went with the rows; the images are gone.
    let on_disk = files_on_disk(&server);
    assert!(!on_disk.contains(&wave_id), "{on_disk:?}");
    assert!(!on_disk.contains(&str_of(&dave_own["id"])), "{on_disk:?}");
    assert_eq!(on_disk.len(), expected.len() - 2);
    assert_eq!(fetch(&server, &str_of(&wave["url"])).await.0, 404);
    assert_exact_error(&alice.api.delete(&wave_path).await, 404);
    assert_eq!(
        bob.api.get(&emojis_path(&hall)).await.body,
        json!([parrot, jpeg_emoji, webp_emoji])
    );
    server.shutdown().await;
}

#[tokio::test]
async fn refused_uploads_answer_in_the_contracts_order_and_write_nothing() {
    let server = TestServer::start().await;
    let (alice, bob, dave) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("dave").await,
    );
    let hall = alice.create_server("hall").await;
    bob.join(&hall).await;
    let kept = created(&alice, &hall, "kept", png(100)).await;
    let kept_files = files_on_disk(&server);
    assert_eq!(kept_files, [str_of(&kept["id"])]);

    let good = || vec![text("name", "fine"), file(png(100))];
    let over = || png(MAX_IMAGE + 1);
    let cases: Vec<(&str, u16, Response)> = vec![
        // Server and membership, then permission, before the body is looked at.
        ("non-member", 404, upload(&dave, &hall, &good()).await),
        (
            "no server",
            404,
            upload(&alice, &random_id(), &good()).await,
        ),
        ("plain member", 403, upload(&bob, &hall, &good()).await),
        (
            "plain member, bad body",
            403,
            send(
                &bob,
                reqwest::Method::POST,
                &emojis_path(&hall),
                None,
                Vec::new(),
            )
            .await,
        ),
        // The form.
        (
            "JSON body",
            400,
            send(
                &alice,
                reqwest::Method::POST,
                &emojis_path(&hall),
                Some("application/json"),
                br#"{"name": "fine"}"#.to_vec(),
            )
            .await,
        ),
        (
            "no content type",
            400,
            send(
                &alice,
                reqwest::Method::POST,
                &emojis_path(&hall),
                None,
                form(&good()),
            )
            .await,
        ),
        (
            "no boundary",
            400,
            send(
                &alice,
                reqwest::Method::POST,
                &emojis_path(&hall),
                Some("multipart/form-data"),
                form(&good()),
            )
            .await,
        ),
        (
            "truncated form",
            400,
            send(
                &alice,
                reqwest::Method::POST,
                &emojis_path(&hall),
                Some(&multipart_type()),
                {
                    let mut body = form(&good());
                    body.truncate(body.len() - 40);
                    body
                },
            )
            .await,
        ),
        (
            "name twice",
            400,
            upload(
                &alice,
                &hall,
                &[text("name", "a"), text("name", "b"), file(png(10))],
            )
            .await,
        ),
        // The name.
        (
            "no name",
            400,
            upload(&alice, &hall, &[file(png(10))]).await,
        ),
        (
            "empty name",
            400,
            upload(&alice, &hall, &[text("name", ""), file(png(10))]).await,
        ),
        (
            "33 characters",
            400,
            upload(
                &alice,
                &hall,
                &[text("name", &"a".repeat(33)), file(png(10))],
            )
            .await,
        ),
        (
            "a long name part",
            400,
            upload(
                &alice,
                &hall,
                &[text("name", &"a".repeat(5_000)), file(png(10))],
            )
            .await,
        ),
        (
            "capitals",
            400,
            upload(&alice, &hall, &[text("name", "Wave"), file(png(10))]).await,
        ),
        (
            "a space",
            400,
            upload(&alice, &hall, &[text("name", "a b"), file(png(10))]).await,
        ),
        // The name comes before the image.
        ("no name, no image", 400, upload(&alice, &hall, &[]).await),
        (
            "bad name, oversize image after it",
            400,
            upload(&alice, &hall, &[text("name", "Bad!"), file(over())]).await,
        ),
        // The image.
        (
            "no image",
            400,
            upload(&alice, &hall, &[text("name", "fine")]).await,
        ),
        (
            "empty image",
            400,
            upload(&alice, &hall, &[text("name", "fine"), file(Vec::new())]).await,
        ),
        (
            "one byte over",
            413,
            upload(&alice, &hall, &[text("name", "fine"), file(over())]).await,
        ),
        (
            "far over",
            413,
            upload(&alice, &hall, &[text("name", "fine"), file(png(1_500_000))]).await,
        ),
        (
            "oversize image before the name",
            413,
            upload(&alice, &hall, &[file(over()), text("name", "fine")]).await,
        ),
        (
            "text",
            415,
            upload(
                &alice,
                &hall,
                &[text("name", "fine"), file(b"hello".to_vec())],
            )
            .await,
        ),
        (
            "svg",
            415,
            upload(
                &alice,
                &hall,
                &[
                    text("name", "fine"),
                    file(br#"<svg xmlns="http://www.w3.org/2000/svg"/>"#.to_vec()),
                ],
            )
            .await,
        ),
        (
            "oversize and of the wrong type",
            413,
            upload(
                &alice,
                &hall,
                &[text("name", "fine"), file(vec![b'x'; MAX_IMAGE + 1])],
            )
            .await,
        ),
        // A taken name, last.
        (
            "taken name",
            400,
            upload(&alice, &hall, &[text("name", "kept"), file(png(10))]).await,
        ),
        (
            "taken name, wrong type",
            415,
            upload(
                &alice,
                &hall,
                &[text("name", "kept"), file(b"nope".to_vec())],
            )
            .await,
        ),
    ];
    for (what, status, res) in &cases {
        assert_eq!(res.status, *status, "{what}: {}", res.text);
        assert_exact_error(res, *status);
        // Nothing written: no file, no row.
        assert_eq!(files_on_disk(&server), kept_files, "{what}");
    }
    let messages: Vec<&str> = cases
        .iter()
        .map(|(_, _, res)| res.body["error"].as_str().unwrap())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("required")),
        "{messages:?}"
    );
    assert_eq!(alice.api.get(&emojis_path(&hall)).await.body, json!([kept]));

    // Unknown parts are skipped; exactly 256 KiB is allowed.
    let biggest = png(MAX_IMAGE);
    let res = upload(
        &alice,
        &hall,
        &[
            text("comment", "ignored"),
            text("name", "biggest"),
            file(biggest.clone()),
            text("after", "ignored too"),
        ],
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["file_size"], MAX_IMAGE);
    let (status, _, body) = fetch(&server, &str_of(&res.body["url"])).await;
    assert_eq!((status, body), (200, biggest));
    assert_eq!(files_on_disk(&server).len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_server_holds_at_most_fifty_emojis() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let hall = alice.create_server("hall").await;
    let mut first = None;
    for n in 0..50 {
        let emoji = created(&alice, &hall, &format!("e{n}"), png(16 + n)).await;
        first.get_or_insert(emoji);
    }
    assert_eq!(files_on_disk(&server).len(), 50);

    // The 51st is refused, before the form is even read.
    let res = upload(&alice, &hall, &[text("name", "one_more"), file(png(16))]).await;
    assert_exact_error(&res, 400);
    assert!(
        res.body["error"].as_str().unwrap().contains("50"),
        "{}",
        res.text
    );
    let res = upload(&alice, &hall, &[text("name", "Bad!")]).await;
    assert_exact_error(&res, 400);
    assert!(
        res.body["error"].as_str().unwrap().contains("50"),
        "{}",
        res.text
    );
    assert_eq!(files_on_disk(&server).len(), 50);
    let listed = alice.api.get(&emojis_path(&hall)).await.body;
    assert_eq!(listed.as_array().unwrap().len(), 50);
    assert_eq!(listed[0], first.clone().unwrap());
    assert_eq!(listed[49]["name"], "e49");

    // A freed slot can be used again.
    let first = first.unwrap();
    let res = alice
        .api
        .delete(&format!("{}/{}", emojis_path(&hall), str_of(&first["id"])))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    created(&alice, &hall, "one_more", png(16)).await;
    assert_eq!(files_on_disk(&server).len(), 50);
    server.shutdown().await;
}

#[tokio::test]
async fn deleting_a_server_deletes_its_emoji_images() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let doomed = alice.create_server("doomed").await;
    let kept = alice.create_server("kept").await;
    let a = created(&alice, &doomed, "a", png(10)).await;
    let b = created(&alice, &doomed, "b", gif()).await;
    let c = created(&alice, &kept, "a", png(10)).await;
    assert_eq!(files_on_disk(&server), sorted_ids(&[&a, &b, &c]));

    let res = alice.api.delete(&format!("/servers/{doomed}")).await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(files_on_disk(&server), [str_of(&c["id"])]);
    for gone in [&a, &b] {
        assert_eq!(fetch(&server, &str_of(&gone["url"])).await.0, 404);
    }
    assert_eq!(fetch(&server, &str_of(&c["url"])).await.0, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn an_emoji_whose_image_is_missing_answers_500() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let hall = alice.create_server("hall").await;
    let emoji = created(&alice, &hall, "lost", png(10)).await;
    std::fs::remove_file(emoji_dir(&server).join(str_of(&emoji["id"]))).unwrap();
    let (status, headers, body) = fetch(&server, &str_of(&emoji["url"])).await;
    assert_eq!(status, 500);
    assert_eq!(headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body, json!({"error": "Internal server error"}));
    // The row is still there, and deleting it works without its file.
    let res = alice
        .api
        .delete(&format!("{}/{}", emojis_path(&hall), str_of(&emoji["id"])))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(fetch(&server, &str_of(&emoji["url"])).await.0, 404);
    server.shutdown().await;
}
