//! Message search over real HTTP (`rest-extras.md` §7): the errors in the reference's
//! order, English full-text matching of live messages, pages that neither skip nor
//! repeat (X7), the caller's viewable channels only, hits and total alike (X8), and a
//! highlight that is escaped HTML with `<mark>` added (X6).

use std::collections::HashSet;

use concord_testkit::{TestServer, TestUser, assert_exact_error, assert_keys, str_of};
use serde_json::{Value, json};

/// VIEW_CHANNEL (`rest.md` §5.1).
const VIEW_CHANNEL: i64 = 1;

/// alice owns "hall" with the text channel "general"; bob is a member.
async fn hall() -> (TestServer, TestUser, TestUser, String, String) {
    let server = TestServer::start().await;
    let (alice, bob) = (server.user("alice").await, server.user("bob").await);
    let hall = alice.create_server("hall").await;
    bob.join(&hall).await;
    let general = alice.create_channel(&hall, "general", "text").await;
    (server, alice, bob, hall, general)
}

/// `GET /servers/{hall}/search{query}` as `user`, asserting 200.
async fn search(user: &TestUser, hall: &str, query: &str) -> Value {
    let res = user
        .api
        .get(&format!("/servers/{hall}/search{query}"))
        .await;
    assert_eq!(res.status, 200, "{query}: {}", res.text);
    res.body
}

fn hit_ids(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|hit| str_of(&hit["id"]))
        .collect()
}

#[tokio::test]
async fn errors_come_in_the_reference_order() {
    let (server, alice, bob, hall, _general) = hall().await;
    let anonymous = server.api();
    let path = format!("/servers/{hall}/search");

    // The query is read first, before the credentials.
    assert_exact_error(&anonymous.get(&path).await, 400);
    for bad in ["?q=ab&limit=x", "?q=ab&channel_id=nope", "?q=ab&before=1"] {
        assert_exact_error(&anonymous.get(&format!("{path}{bad}")).await, 400);
        assert_exact_error(&alice.api.get(&format!("{path}{bad}")).await, 400);
    }
    // Then the credentials, then the path, then the lengths and limits.
    assert_exact_error(&anonymous.get(&format!("{path}?q=ab")).await, 401);
    assert_exact_error(&anonymous.get(&format!("{path}?q=a")).await, 401);
    assert_exact_error(&alice.api.get("/servers/not-a-uuid/search?q=ab").await, 400);
    let long = "é".repeat(201);
    for bad in [
        "?q=a".to_owned(),
        "?q=".to_owned(),
        format!("?q={long}"),
        "?q=ab&limit=0".to_owned(),
        "?q=ab&limit=101".to_owned(),
        "?q=ab&limit=-1".to_owned(),
    ] {
        let res = alice.api.get(&format!("{path}{bad}")).await;
        assert_exact_error(&res, 400);
        assert!(
            [
                "q: Query must be 2–200 characters",
                "limit: Limit must be 1–100"
            ]
            .contains(&res.body["error"].as_str().unwrap()),
            "{}",
            res.text
        );
    }
    // Lengths count characters: 2 and 200 (of two bytes each) are fine, as are the
    // bounds of `limit`.
    let longest = "é".repeat(200);
    for good in [
        "?q=%C3%A9%C3%A9".to_owned(),
        format!("?q={longest}"),
        "?q=ab&limit=1".to_owned(),
        "?q=ab&limit=100".to_owned(),
    ] {
        search(&alice, &hall, &good).await;
    }

    // Membership last: a non-member gets a bad query refused, a good one 404.
    let carol = server.user("carol").await;
    assert_exact_error(&carol.api.get(&format!("{path}?q=a")).await, 400);
    let res = carol.api.get(&format!("{path}?q=ab")).await;
    assert_exact_error(&res, 404);
    assert_eq!(res.body["error"], "Server not found");
    let missing = format!("/servers/{}/search?q=ab", uuid::Uuid::new_v4());
    let res = alice.api.get(&missing).await;
    assert_exact_error(&res, 404);
    assert_eq!(res.body["error"], "Server not found");
    // Positive control: members get a page.
    search(&bob, &hall, "?q=ab").await;
    server.shutdown().await;
}

#[tokio::test]
async fn hits_are_live_messages_matched_in_english() {
    let (server, alice, bob, hall, general) = hall().await;
    let running = alice.post(&general, "Running late, sorry").await;
    let runs = bob.post(&general, "she runs the meeting").await;
    alice.post(&general, "nothing to see").await;

    let page = search(&bob, &hall, "?q=run").await;
    assert_keys(&page, &["results", "total", "has_more", "next_cursor"]);
    assert_eq!(page["total"], 2);
    assert_eq!(page["has_more"], false);
    assert_eq!(page["next_cursor"], Value::Null);
    let ids: HashSet<String> = hit_ids(&page).into_iter().collect();
    assert_eq!(
        ids,
        HashSet::from([str_of(&running["id"]), str_of(&runs["id"])])
    );
    let hit = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|hit| hit["id"] == runs["id"])
        .unwrap();
    assert_keys(
        hit,
        &[
            "id",
            "channel_id",
            "author_id",
            "author_username",
            "content",
            "highlight",
            "created_at",
            "rank",
        ],
    );
    assert_eq!(hit["channel_id"], json!(general));
    assert_eq!(hit["author_id"], json!(bob.id));
    assert_eq!(hit["author_username"], "bob");
    assert_eq!(hit["content"], "she runs the meeting");
    assert_eq!(hit["highlight"], "she <mark>runs</mark> the meeting");
    assert_eq!(hit["created_at"], runs["created_at"]);
    assert!(hit["rank"].as_f64().unwrap() > 0.0, "{hit}");

    // Stop words alone match nothing; FTS syntax is plain words.
    let page = search(&bob, &hall, "?q=the%20to").await;
    assert_eq!(page["total"], 0);
    assert!(hit_ids(&page).is_empty());
    let page = search(&bob, &hall, "?q=%22late%22%20OR%20*").await;
    assert_eq!(hit_ids(&page), [str_of(&running["id"])]);
    // Thread replies are found too.
    let root = str_of(&running["id"]);
    let res = bob
        .api
        .post(
            &format!("/channels/{general}/messages/{root}/thread"),
            &json!({"content": "running is healthy"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(search(&bob, &hall, "?q=healthy").await["total"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn pages_follow_the_cursor_without_skips_or_repeats() {
    let (server, alice, _bob, hall, general) = hall().await;
    // 23 hits of equal rank (the order among them is the conformance suite's
    // business), one better hit, and noise.
    let mut posted = Vec::new();
    for _ in 0..23 {
        posted.push(str_of(
            &alice.post(&general, "deploy the build").await["id"],
        ));
    }
    let best = str_of(&alice.post(&general, "deploy deploy").await["id"]);
    alice.post(&general, "unrelated chatter").await;

    let everything = search(&alice, &hall, "?q=deploy&limit=100").await;
    let all = hit_ids(&everything);
    assert_eq!(all.len(), 24);
    assert_eq!(all[0], best);
    let rest: HashSet<&String> = all[1..].iter().collect();
    assert_eq!(rest, posted.iter().collect());
    let ranks: Vec<f64> = everything["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["rank"].as_f64().unwrap())
        .collect();
    assert!(ranks[0] > ranks[1], "{ranks:?}");
    assert!(ranks[1..].iter().all(|&r| r == ranks[1]), "{ranks:?}");

    let mut seen = Vec::new();
    let mut query = "?q=deploy&limit=10".to_owned();
    let mut pages = 0;
    loop {
        let page = search(&alice, &hall, &query).await;
        pages += 1;
        assert_eq!(page["total"], 24);
        let ids = hit_ids(&page);
        seen.extend(ids.clone());
        if page["has_more"] == false {
            assert_eq!(page["next_cursor"], Value::Null);
            break;
        }
        assert_eq!(ids.len(), 10);
        assert_eq!(page["next_cursor"], json!(ids.last().unwrap()));
        query = format!("?q=deploy&limit=10&before={}", str_of(&page["next_cursor"]));
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, all);

    // A cursor that is not a hit of this search: an empty page.
    let noise = format!("?q=deploy&before={}", uuid::Uuid::new_v4());
    let page = search(&alice, &hall, &noise).await;
    assert!(hit_ids(&page).is_empty());
    assert_eq!(page["has_more"], false);
    assert_eq!(page["total"], 24);
    server.shutdown().await;
}

#[tokio::test]
async fn hidden_channels_are_never_searched() {
    let (server, alice, bob, hall, general) = hall().await;
    let secret = alice.create_channel(&hall, "secret", "text").await;
    let open = alice.post(&general, "launch party on friday").await;
    let hidden = alice.post(&secret, "launch codes are 1234").await;
    server.deny(&secret, &bob, VIEW_CHANNEL).await;

    // Positive control: the owner sees both.
    let page = search(&alice, &hall, "?q=launch").await;
    assert_eq!(page["total"], 2);
    assert_eq!(hit_ids(&page).len(), 2);
    assert_eq!(
        hit_ids(&search(&alice, &hall, &format!("?q=codes&channel_id={secret}")).await),
        [str_of(&hidden["id"])]
    );

    let page = search(&bob, &hall, "?q=launch").await;
    assert_eq!(hit_ids(&page), [str_of(&open["id"])]);
    assert_eq!(page["total"], 1);
    let page = search(&bob, &hall, "?q=codes").await;
    assert!(hit_ids(&page).is_empty());
    assert_eq!(page["total"], 0);
    let page = search(&bob, &hall, &format!("?q=launch&channel_id={secret}")).await;
    assert!(hit_ids(&page).is_empty());
    assert_eq!(page["total"], 0);
    // A hidden message is no cursor either.
    let page = search(
        &bob,
        &hall,
        &format!("?q=launch&before={}", str_of(&hidden["id"])),
    )
    .await;
    assert!(hit_ids(&page).is_empty());
    // The channel filter works for channels bob sees.
    let page = search(&bob, &hall, &format!("?q=launch&channel_id={general}")).await;
    assert_eq!(hit_ids(&page), [str_of(&open["id"])]);

    // A channel of another server: nothing, even for its owner.
    let elsewhere = alice.create_server("elsewhere").await;
    let far = alice.create_channel(&elsewhere, "far", "text").await;
    alice.post(&far, "launch elsewhere").await;
    let page = search(&alice, &hall, &format!("?q=launch&channel_id={far}")).await;
    assert!(hit_ids(&page).is_empty());
    assert_eq!(page["total"], 0);
    assert_eq!(search(&alice, &elsewhere, "?q=launch").await["total"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn highlights_are_escaped_html_with_marks() {
    let (server, alice, bob, hall, general) = hall().await;
    alice
        .post(
            &general,
            "<script>alert('deploy')</script> & <b>deployed</b> \"now\"",
        )
        .await;
    let page = search(&bob, &hall, "?q=deploy").await;
    let hit = &page["results"][0];
    assert_eq!(
        hit["content"],
        "<script>alert('deploy')</script> & <b>deployed</b> \"now\""
    );
    assert_eq!(
        hit["highlight"],
        "&lt;script&gt;alert(&#39;<mark>deploy</mark>&#39;)&lt;/script&gt; &amp; \
         &lt;b&gt;<mark>deployed</mark>&lt;/b&gt; &quot;now&quot;"
    );

    // A long text is cut to 35 words around the first match.
    let words: Vec<String> = (0..60).map(|i| format!("word{i}")).collect();
    let mut text = words.clone();
    text[40] = "needle".to_owned();
    alice.post(&general, &text.join(" ")).await;
    let page = search(&bob, &hall, "?q=needle").await;
    let highlight = page["results"][0]["highlight"].as_str().unwrap();
    let shown: Vec<&str> = highlight.split(' ').collect();
    assert_eq!(shown.len(), 35, "{highlight}");
    assert!(shown.contains(&"<mark>needle</mark>"), "{highlight}");
    server.shutdown().await;
}

#[tokio::test]
async fn edits_and_deletes_are_reflected() {
    let (server, alice, bob, hall, general) = hall().await;
    let message = bob.post(&general, "the quarterly report").await;
    let id = str_of(&message["id"]);
    let kept = bob.post(&general, "another report").await;
    assert_eq!(search(&alice, &hall, "?q=report").await["total"], 2);

    let res = bob
        .api
        .patch(
            &format!("/messages/{id}"),
            &json!({"content": "the yearly summary"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        hit_ids(&search(&alice, &hall, "?q=report").await),
        [str_of(&kept["id"])]
    );
    let page = search(&alice, &hall, "?q=yearly").await;
    assert_eq!(hit_ids(&page), std::slice::from_ref(&id));
    assert_eq!(page["results"][0]["content"], "the yearly summary");

    let res = bob.api.delete(&format!("/messages/{id}")).await;
    assert!(res.status == 200 || res.status == 204, "{}", res.text);
    let page = search(&alice, &hall, "?q=yearly").await;
    assert!(hit_ids(&page).is_empty());
    assert_eq!(page["total"], 0);
    // Positive control: the other message is still found.
    assert_eq!(search(&alice, &hall, "?q=report").await["total"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn bots_search_like_members() {
    let (server, alice, _bob, hall, general) = hall().await;
    let res = alice.api.post("/bots", &json!({"name": "finder"})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let as_bot = server.api().bot(res.body["token"].as_str().unwrap());
    let path = format!("/servers/{hall}/search?q=invoice");
    alice.post(&general, "invoice sent").await;

    // Not a member yet: 404; once joined, the same search answers.
    assert_exact_error(&as_bot.get(&path).await, 404);
    let res = as_bot.post_empty(&format!("/servers/{hall}/join")).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let res = as_bot.get(&path).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["total"], 1);
    server.shutdown().await;
}
