//! The payloads and bodies of threads, reactions, pins, polls and scheduled events
//! round-trip through JSON with exactly the keys the contract lists.

use concord_protocol::*;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) -> Value {
    let json = serde_json::to_value(value).unwrap();
    let back: T = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(&back, value);
    json
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[test]
fn event_payloads_have_exactly_their_keys() {
    let (message_id, channel_id, user_id) = (MessageId::new(), ChannelId::new(), UserId::new());
    let reaction = round_trip(&ReactionEvent {
        message_id,
        channel_id,
        user_id,
        emoji: "👍".into(),
    });
    assert_eq!(
        reaction,
        json!({"message_id": message_id, "channel_id": channel_id, "user_id": user_id, "emoji": "👍"})
    );
    let pin = round_trip(&MessagePin {
        message_id,
        channel_id,
        pinned_by: user_id,
    });
    assert_eq!(keys(&pin), ["channel_id", "message_id", "pinned_by"]);
    let unpin = round_trip(&MessageUnpin {
        message_id,
        channel_id,
        unpinned_by: user_id,
    });
    assert_eq!(keys(&unpin), ["channel_id", "message_id", "unpinned_by"]);

    let option = PollOption {
        id: PollOptionId::new(),
        text: "pizza".into(),
        votes: 1,
    };
    let vote = round_trip(&PollVote {
        poll_id: PollId::new(),
        channel_id,
        updated_poll: Poll {
            id: PollId::new(),
            question: "Lunch?".into(),
            options: vec![option],
            total_votes: 1,
            user_vote: None,
        },
    });
    assert_eq!(keys(&vote), ["channel_id", "poll_id", "updated_poll"]);
    assert_eq!(
        keys(&vote["updated_poll"]),
        ["id", "options", "question", "total_votes", "user_vote"]
    );
    assert_eq!(
        vote["updated_poll"]["user_vote"],
        Value::Null,
        "present as null"
    );
    assert_eq!(
        keys(&vote["updated_poll"]["options"][0]),
        ["id", "text", "votes"]
    );

    let count = round_trip(&ReactionCount {
        emoji: ":custom:".into(),
        count: 2,
        me: true,
    });
    assert_eq!(count, json!({"emoji": ":custom:", "count": 2, "me": true}));
}

#[test]
fn request_bodies_read_what_clients_send() {
    let event: CreateServerEvent =
        serde_json::from_value(json!({"name": "Party", "starts_at": "2099-01-01T01:00:00+01:00"}))
            .unwrap();
    assert_eq!(event.description, None, "description may be left out");
    assert_eq!(event.starts_at.to_string(), "2099-01-01T00:00:00.000000Z");
    assert!(serde_json::from_value::<CreateServerEvent>(json!({"name": "Party"})).is_err());

    let poll: CreatePoll =
        serde_json::from_value(json!({"question": "Q?", "options": ["a", "b"], "extra": 1}))
            .unwrap();
    assert_eq!(poll.options, ["a", "b"], "unknown fields are ignored");
    let option = PollOptionId::new();
    let vote: CastVote = serde_json::from_value(json!({"option_id": option})).unwrap();
    assert_eq!(vote.option_id, option);
    let reply: CreateThreadReply = serde_json::from_value(json!({"content": "re"})).unwrap();
    assert_eq!(reply.content, "re");

    let query: ThreadQuery = serde_json::from_value(json!({"limit": 1000})).unwrap();
    assert_eq!(query.clamped_limit(), 100);
    assert_eq!(ThreadQuery::default().clamped_limit(), 50);
    let query: ThreadQuery = serde_json::from_value(json!({"limit": -3})).unwrap();
    assert_eq!(query.clamped_limit(), 1);
}
