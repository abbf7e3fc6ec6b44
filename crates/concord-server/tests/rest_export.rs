//! The server export over real HTTP (`rest-extras.md` §5.1, X20): the archive is
//! unzipped and every entry checked against what the API answered when the data was
//! made; names are slugged; the download is streamed (no `Content-Length`) and pages
//! of the store (500 rows) join up in order; only the owner gets it.

use std::io::{Cursor, Read};

use concord_protocol::{
    ChannelId, DirectMessage, DirectMessageId, MessageId, ServerId, Status, Timestamp, UserId,
};
use concord_store::{DmChannelRecord, NewMessage, NewUser};
use concord_testkit::{TestServer, TestUser, assert_exact_error, str_of};
use serde_json::{Value, json};

/// An export as downloaded.
struct Download {
    status: u16,
    headers: reqwest::header::HeaderMap,
    bytes: Vec<u8>,
}

async fn download(server: &TestServer, user: &TestUser, id: &str) -> Download {
    let res = reqwest::Client::new()
        .get(server.url(&format!("/servers/{id}/export")))
        .bearer_auth(&user.token)
        .send()
        .await
        .expect("export request");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.expect("export body").to_vec();
    Download {
        status,
        headers,
        bytes,
    }
}

/// The entries of a ZIP archive in order: (name, text). Every entry is deflated.
fn unzip(bytes: &[u8]) -> Vec<(String, String)> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("a ZIP archive");
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        let name = entry.name().expect("entry name").into_owned();
        assert_eq!(
            entry.compression(),
            zip::CompressionMethod::Deflated,
            "{name}"
        );
        let mut text = String::new();
        entry.read_to_string(&mut text).expect("UTF-8 entry");
        out.push((name, text));
    }
    out
}

/// The owner's export of `id`, asserted 200 and unzipped.
async fn export(server: &TestServer, owner: &TestUser, id: &str) -> Vec<(String, String)> {
    let got = download(server, owner, id).await;
    assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.bytes));
    unzip(&got.bytes)
}

fn entry<'a>(entries: &'a [(String, String)], name: &str) -> &'a str {
    entries
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, text)| text.as_str())
        .unwrap_or_else(|| panic!("no entry {name} in {:?}", names(entries)))
}

fn names(entries: &[(String, String)]) -> Vec<&str> {
    entries.iter().map(|(n, _)| n.as_str()).collect()
}

/// The lines of a `.jsonl` entry, each parsed; every line ends with `\n`.
fn lines(text: &str) -> Vec<Value> {
    if text.is_empty() {
        return Vec::new();
    }
    assert!(text.ends_with('\n'), "{text:?}");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON")
}

fn message_line(message: &Value, author: &TestUser) -> Value {
    json!({
        "id": message["id"],
        "author_id": author.id,
        "author_username": author.username,
        "content": message["content"],
        "reply_to": message["reply_to"],
        "edited_at": message["edited_at"],
        "created_at": message["created_at"],
    })
}

fn dm_line(message: &Value, author: &TestUser) -> Value {
    json!({
        "id": message["id"],
        "author_id": author.id,
        "author_username": author.username,
        "content": message["content"],
        "created_at": message["created_at"],
    })
}

async fn post(user: &TestUser, path: &str, body: Value) -> Value {
    let res = user.api.post(path, &body).await;
    assert_eq!(res.status, 201, "{path}: {}", res.text);
    res.body
}

async fn open_dm(user: &TestUser, with: &TestUser) -> String {
    let res = user
        .api
        .post("/dm-channels", &json!({"user_id": with.id}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    str_of(&res.body["id"])
}

#[tokio::test]
async fn the_archive_holds_every_entry_exactly() {
    let server = TestServer::start().await;
    let (alice, bob, carol) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("Carol").await,
    );
    let created = alice
        .create_server_with(&json!({"name": "Hall Of Fame!", "is_public": true}))
        .await;
    let hall = str_of(&created["id"]);
    bob.join(&hall).await;
    let members = alice.api.get(&format!("/servers/{hall}/members")).await;
    assert_eq!(members.status, 200, "{}", members.text);

    // Channels: two text channels with messages, one without, one voice channel.
    let mut channels = Vec::new();
    for (name, kind, topic) in [
        ("general", "text", None),
        ("Dev Ops #1", "text", Some("builds")),
        ("quiet", "text", None),
        ("Lounge", "voice", None),
    ] {
        let mut body = json!({"name": name, "type": kind});
        if let Some(topic) = topic {
            body["topic"] = json!(topic);
        }
        channels.push(post(&alice, &format!("/servers/{hall}/channels"), body).await);
    }
    let (general, devops) = (str_of(&channels[0]["id"]), str_of(&channels[1]["id"]));

    // Roles, made out of position order; one without a colour.
    let mut roles = Vec::new();
    for body in [
        json!({"name": "mods", "permissions": 8, "color": "#ff0000", "position": 5}),
        json!({"name": "helpers", "permissions": 2, "position": 2}),
    ] {
        roles.push(post(&alice, &format!("/servers/{hall}/roles"), body).await);
    }

    // Messages: an edited one, a reply, a thread reply, one to be deleted.
    let hello = alice.post(&general, "hello").await;
    let reply = post(
        &bob,
        &format!("/channels/{general}/messages"),
        json!({"content": "hi back", "reply_to": hello["id"]}),
    )
    .await;
    let doomed = bob.post(&general, "oops").await;
    let in_thread = post(
        &bob,
        &format!(
            "/channels/{general}/messages/{}/thread",
            str_of(&hello["id"])
        ),
        json!({"content": "threaded"}),
    )
    .await;
    let edited = alice
        .api
        .patch(
            &format!("/messages/{}", str_of(&hello["id"])),
            &json!({"content": "hello, edited"}),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    let edited = edited.body;
    assert!(edited["edited_at"].is_string(), "{edited}");
    let build = alice.post(&devops, "build green").await;

    // DMs: with bob (two messages), with carol (none); bob and carol's own is not
    // alice's.
    let with_bob = open_dm(&alice, &bob).await;
    let dm1 = post(
        &alice,
        &format!("/dm-channels/{with_bob}/messages"),
        json!({"content": "psst"}),
    )
    .await;
    let dm2 = post(
        &bob,
        &format!("/dm-channels/{with_bob}/messages"),
        json!({"content": "what?"}),
    )
    .await;
    let with_carol = open_dm(&alice, &carol).await;
    let theirs = open_dm(&bob, &carol).await;
    let private = post(
        &bob,
        &format!("/dm-channels/{theirs}/messages"),
        json!({"content": "not for alice"}),
    )
    .await;

    // Before the delete, the doomed message is exported (the control of its absence).
    let before = export(&server, &alice, &hall).await;
    let general_file = format!("hall_of_fame_-export/messages/general-{general}.jsonl");
    let ids: Vec<Value> = lines(entry(&before, &general_file))
        .iter()
        .map(|l| l["id"].clone())
        .collect();
    assert!(ids.contains(&doomed["id"]), "{ids:?}");
    let deleted = bob
        .api
        .delete(&format!("/messages/{}", str_of(&doomed["id"])))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);

    let got = download(&server, &alice, &hall).await;
    assert_eq!(got.status, 200);
    let entries = unzip(&got.bytes);
    let root = "hall_of_fame_-export";
    assert_eq!(
        names(&entries),
        [
            format!("{root}/server.json"),
            format!("{root}/channels.json"),
            format!("{root}/members.json"),
            format!("{root}/roles.json"),
            general_file.clone(),
            format!("{root}/messages/dev_ops__1-{devops}.jsonl"),
            format!("{root}/dm_messages/bob-{with_bob}.jsonl"),
            format!("{root}/dm_messages/carol-{with_carol}.jsonl"),
        ]
    );

    let server_json = entry(&entries, &format!("{root}/server.json"));
    assert_eq!(
        parse(server_json),
        json!({
            "id": hall,
            "name": "Hall Of Fame!",
            "owner_id": alice.id,
            "icon_url": null,
            "is_public": true,
            "created_at": created["created_at"],
        })
    );
    // Pretty JSON, keys in the documented order.
    assert_eq!(
        server_json,
        format!(
            "{{\n  \"id\": \"{hall}\",\n  \"name\": \"Hall Of Fame!\",\n  \"owner_id\": \"{}\",\n  \
             \"icon_url\": null,\n  \"is_public\": true,\n  \"created_at\": {}\n}}",
            alice.id, created["created_at"]
        )
    );

    let want_channels: Vec<Value> = channels
        .iter()
        .map(|c| {
            json!({
                "id": c["id"],
                "name": c["name"],
                "channel_type": c["type"],
                "position": c["position"],
                "category": c["category"],
                "topic": c["topic"],
                "created_at": c["created_at"],
            })
        })
        .collect();
    assert_eq!(
        parse(entry(&entries, &format!("{root}/channels.json"))),
        json!(want_channels)
    );

    let want_members: Vec<Value> = members
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            json!({
                "user_id": m["user_id"],
                "username": m["username"],
                "nickname": null,
                "joined_at": m["joined_at"],
            })
        })
        .collect();
    assert_eq!(want_members.len(), 2);
    assert_eq!(
        parse(entry(&entries, &format!("{root}/members.json"))),
        json!(want_members)
    );

    let mut want_roles: Vec<Value> = roles
        .iter()
        .map(|r| {
            json!({
                "id": r["id"],
                "name": r["name"],
                "permissions": r["permissions"],
                "color": r["color"],
                "position": r["position"],
            })
        })
        .collect();
    want_roles.reverse();
    assert_eq!(
        parse(entry(&entries, &format!("{root}/roles.json"))),
        json!(want_roles)
    );

    assert_eq!(
        lines(entry(&entries, &general_file)),
        [
            message_line(&edited, &alice),
            message_line(&reply, &bob),
            message_line(&in_thread, &bob),
        ]
    );
    assert_eq!(
        lines(entry(
            &entries,
            &format!("{root}/messages/dev_ops__1-{devops}.jsonl")
        )),
        [message_line(&build, &alice)]
    );
    assert_eq!(
        lines(entry(
            &entries,
            &format!("{root}/dm_messages/bob-{with_bob}.jsonl")
        )),
        [dm_line(&dm1, &alice), dm_line(&dm2, &bob)]
    );
    assert_eq!(
        entry(
            &entries,
            &format!("{root}/dm_messages/carol-{with_carol}.jsonl")
        ),
        ""
    );

    // Bob's and carol's DM is in bob's export of a server of his own (the control of
    // its absence from alice's).
    let bobs = bob.create_server("bobs").await;
    let his = export(&server, &bob, &bobs).await;
    assert_eq!(
        lines(entry(
            &his,
            &format!("bobs-export/dm_messages/carol-{theirs}.jsonl")
        )),
        [dm_line(&private, &bob)]
    );
    assert!(
        names(&his).contains(&format!("bobs-export/dm_messages/alice-{with_bob}.jsonl").as_str()),
        "{:?}",
        names(&his)
    );
    server.shutdown().await;
}

/// `YYYYMMDD` of today (UTC).
fn today() -> String {
    chrono::Utc::now().format("%Y%m%d").to_string()
}

#[tokio::test]
async fn names_are_slugged_and_the_headers_name_the_file() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let hall = alice.create_server("hall").await;

    let day = today();
    let got = download(&server, &alice, &hall).await;
    let after = today();
    assert_eq!(got.status, 200);
    assert_eq!(got.headers["content-type"], "application/zip");
    // Streamed: no length up front.
    assert!(
        got.headers.get("content-length").is_none(),
        "{:?}",
        got.headers
    );
    let disposition = got.headers["content-disposition"].to_str().unwrap();
    assert!(
        [day, after]
            .iter()
            .any(|d| disposition == format!("attachment; filename=\"hall-export-{d}.zip\"")),
        "{disposition}"
    );
    // A server with no channel, roles or DMs still has its four files.
    let entries = unzip(&got.bytes);
    assert_eq!(
        names(&entries),
        [
            "hall-export/server.json",
            "hall-export/channels.json",
            "hall-export/members.json",
            "hall-export/roles.json",
        ]
    );
    assert_eq!(entry(&entries, "hall-export/channels.json"), "[]");
    assert_eq!(entry(&entries, "hall-export/roles.json"), "[]");

    // Unicode letters and digits stay (lowercased), anything else is `_`.
    let cafe = alice
        .create_server_with(&json!({"name": "Café Ünï 9/10"}))
        .await;
    let cafe = str_of(&cafe["id"]);
    let channel = str_of(
        &post(
            &alice,
            &format!("/servers/{cafe}/channels"),
            json!({"name": "Ünïcode-Ch@t.ROOM", "type": "text"}),
        )
        .await["id"],
    );
    alice.post(&channel, "bonjour").await;
    let got = download(&server, &alice, &cafe).await;
    assert_eq!(got.status, 200);
    let disposition = got.headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"caf___n__9_10-export-")
            && disposition.contains("; filename*=UTF-8''caf%C3%A9_%C3%BCn%C3%AF_9_10-export-"),
        "{disposition}"
    );
    let entries = unzip(&got.bytes);
    assert_eq!(
        names(&entries)[4],
        format!("café_ünï_9_10-export/messages/ünïcode-ch_t_room-{channel}.jsonl")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn only_the_owner_gets_the_export() {
    // Refused: a member, a member with ADMINISTRATOR, a stranger, a missing server.
    let server = TestServer::start().await;
    let (alice, bob, carol) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
    );
    let hall = alice.create_server("hall").await;
    bob.join(&hall).await;
    carol.join(&hall).await;
    // Carol holds ADMINISTRATOR, which does not make her the owner.
    let admins = post(
        &alice,
        &format!("/servers/{hall}/roles"),
        json!({"name": "admins", "permissions": 8192}),
    )
    .await;
    let assign = format!(
        "/servers/{hall}/members/{}/roles/{}",
        carol.id,
        str_of(&admins["id"])
    );
    assert_eq!(alice.api.put(&assign).await.status, 204);
    let dave = server.user("dave").await;
    let path = format!("/servers/{hall}/export");

    // The owner's answer is the control of the refusals below.
    assert_eq!(download(&server, &alice, &hall).await.status, 200);
    for (who, path) in [
        (&bob, path.clone()),
        (&carol, path.clone()),
        (&dave, path.clone()),
        (&alice, format!("/servers/{}/export", ServerId::new())),
    ] {
        let res = who.api.get(&path).await;
        assert_exact_error(&res, 404);
        assert_eq!(res.body, json!({"error": "Server not found"}), "{path}");
    }
    let res = server.api().get(&path).await;
    assert_exact_error(&res, 401);
    let res = alice.api.get("/servers/not-a-uuid/export").await;
    assert_eq!(res.status, 400, "{}", res.text);
    server.shutdown().await;
}

/// Far more than one store page (500) of members, messages, DM channels and DMs:
/// everything comes back once, in order, across several body chunks.
#[tokio::test]
async fn several_pages_round_trip_in_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let hall = alice.create_server("hall").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    let store = server.state.store.clone();
    let hall_id: ServerId = hall.parse().unwrap();
    let general_id: ChannelId = general.parse().unwrap();
    let base = Timestamp::now().as_micros();

    // 520 more members, joined in this order (one tie, told apart by id).
    let mut member_ids = vec![alice.id.clone()];
    for i in 0..520_i64 {
        let user = store
            .create_user(&NewUser {
                id: UserId::new(),
                username: format!("member{i:04}"),
                email: None,
                password_hash: None,
                status: Status::Offline,
                created_at: Timestamp::from_micros(base),
                admin_if_first: false,
                is_bot: false,
            })
            .await
            .unwrap();
        let joined = if i == 0 { 1 } else { i };
        store
            .add_member(hall_id, user.id, Timestamp::from_micros(base + joined))
            .await
            .unwrap();
        member_ids.push(user.id.to_string());
    }
    // The two joined at the same time come by id.
    if member_ids[1] > member_ids[2] {
        member_ids.swap(1, 2);
    }

    // 1,100 messages with content that does not compress away (several chunks of
    // 64 KiB), posted in order.
    let author: UserId = alice.id.parse().unwrap();
    let mut message_ids = Vec::new();
    for i in 0..1_100_i64 {
        let id = MessageId::new();
        store
            .create_message(&NewMessage {
                id,
                channel_id: general_id,
                author_id: author,
                content: format!("{i} {} {}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4()),
                reply_to: None,
                mention_user_ids: Vec::new(),
                mention_everyone: false,
                thread_id: None,
                created_at: Timestamp::from_micros(base + i),
                node: None,
            })
            .await
            .unwrap();
        message_ids.push(id.to_string());
    }

    // 505 DM channels, the first with 1,050 messages.
    let mut dm_ids = Vec::new();
    for i in 0..505_i64 {
        let partner = store
            .create_user(&NewUser {
                id: UserId::new(),
                username: format!("Pal{i:04}"),
                email: None,
                password_hash: None,
                status: Status::Offline,
                created_at: Timestamp::from_micros(base),
                admin_if_first: false,
                is_bot: false,
            })
            .await
            .unwrap();
        let (dm, created) = store
            .open_dm_channel(&DmChannelRecord {
                id: concord_protocol::DmChannelId::new(),
                user_a: author,
                user_b: partner.id,
                created_at: Timestamp::from_micros(base + i),
            })
            .await
            .unwrap();
        assert!(created);
        dm_ids.push((dm.id.to_string(), format!("pal{i:04}")));
    }
    let first_dm = dm_ids[0].0.parse().unwrap();
    let mut dm_message_ids = Vec::new();
    for i in 0..1_050_i64 {
        let id = DirectMessageId::new();
        store
            .create_dm_message(
                &DirectMessage {
                    id,
                    channel_id: first_dm,
                    author_id: Some(author),
                    content: format!("dm {i}"),
                    edited_at: None,
                    created_at: Timestamp::from_micros(base + i),
                },
                None,
            )
            .await
            .unwrap();
        dm_message_ids.push(id.to_string());
    }

    let got = download(&server, &alice, &hall).await;
    assert_eq!(got.status, 200);
    assert!(
        got.bytes.len() > 3 * 64 * 1024,
        "only {} bytes",
        got.bytes.len()
    );
    let entries = unzip(&got.bytes);

    let members = parse(entry(&entries, "hall-export/members.json"));
    let got_members: Vec<String> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| str_of(&m["user_id"]))
        .collect();
    assert_eq!(got_members, member_ids);
    // Across the page boundary the layout is that of one pretty array.
    let text = entry(&entries, "hall-export/members.json");
    let typed: Vec<concord_protocol::ExportedMember> = serde_json::from_str(text).unwrap();
    assert_eq!(text, serde_json::to_string_pretty(&typed).unwrap());

    let got_messages: Vec<String> = lines(entry(
        &entries,
        &format!("hall-export/messages/general-{general}.jsonl"),
    ))
    .iter()
    .map(|l| str_of(&l["id"]))
    .collect();
    assert_eq!(got_messages, message_ids);

    let dm_files: Vec<String> = names(&entries)
        .into_iter()
        .filter(|n| n.starts_with("hall-export/dm_messages/"))
        .map(str::to_owned)
        .collect();
    let want_files: Vec<String> = dm_ids
        .iter()
        .map(|(id, slug)| format!("hall-export/dm_messages/{slug}-{id}.jsonl"))
        .collect();
    assert_eq!(dm_files, want_files);
    let got_dms: Vec<String> = lines(entry(&entries, &want_files[0]))
        .iter()
        .map(|l| str_of(&l["id"]))
        .collect();
    assert_eq!(got_dms, dm_message_ids);

    // A client that stops after the first chunk ends its export; the next one is
    // whole and the same.
    let mut abandoned = reqwest::Client::new()
        .get(server.url(&format!("/servers/{hall}/export")))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(abandoned.status(), 200);
    assert!(abandoned.chunk().await.unwrap().is_some());
    drop(abandoned);
    let again = download(&server, &alice, &hall).await;
    assert_eq!(again.status, 200);
    assert_eq!(unzip(&again.bytes), entries);
    server.shutdown().await;
}
