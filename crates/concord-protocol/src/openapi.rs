//! OpenAPI schemas (feature `openapi`) of the types whose serde is written by hand, so
//! that the document says what the wire carries: ids are UUID strings, timestamps are
//! RFC 3339 strings. Everything else derives its schema next to its serde derive
//! (`utoipa` reads `rename`, `default`, `skip_serializing_if`, `flatten` and
//! `deny_unknown_fields` from the serde attributes). One convention on top: an `Option`
//! field of an answer that is always written, `null` when empty, carries
//! `schema(required)`, so the document tells it from a field that is left out.

use std::borrow::Cow;

use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        RefOr,
        schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type},
    },
};

use crate::{Id, Timestamp, id::marker};

fn string_schema(format: KnownFormat, description: &str, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(format)))
        .description(Some(description))
        .examples([example])
        .into()
}

/// Each id kind is a component of its own (`UserId`, `ServerId`, …), all of them a
/// lowercase hyphenated UUID string, as `Id`'s `Serialize` writes it.
macro_rules! id_schemas {
    ($($marker:ident => $name:literal, $what:literal;)*) => {$(
        impl PartialSchema for Id<marker::$marker> {
            fn schema() -> RefOr<Schema> {
                string_schema(
                    KnownFormat::Uuid,
                    concat!("Id of ", $what, " (lowercase hyphenated UUID)."),
                    "0192f4c8-1111-7000-8000-00000000000a",
                )
            }
        }

        impl ToSchema for Id<marker::$marker> {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    )*};
}

id_schemas! {
    User => "UserId", "a user";
    Server => "ServerId", "a server";
    Channel => "ChannelId", "a server channel";
    Message => "MessageId", "a server-channel message";
    DmChannel => "DmChannelId", "a DM channel";
    DirectMessage => "DirectMessageId", "a direct message";
    Role => "RoleId", "a role";
    Override => "OverrideId", "a channel permission override";
    Bot => "BotId", "a bot";
    Poll => "PollId", "a poll";
    PollOption => "PollOptionId", "a poll option";
    Event => "EventId", "a scheduled event";
    // ---- invites and moderation ----
    Invite => "InviteId", "a server invite";
    // ---- custom emojis ----
    CustomEmoji => "CustomEmojiId", "a custom emoji";
}

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        string_schema(
            KnownFormat::DateTime,
            "RFC 3339 date-time; written in UTC with `Z` and six fractional digits, \
             read with any offset.",
            "2023-11-14T22:13:20.123456Z",
        )
    }
}

impl ToSchema for Timestamp {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Timestamp")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChannelId, UserId};

    fn json<T: PartialSchema>() -> serde_json::Value {
        serde_json::to_value(T::schema()).unwrap()
    }

    #[test]
    fn ids_are_uuid_strings_named_after_their_kind() {
        let schema = json::<UserId>();
        assert_eq!(schema["type"], "string");
        assert_eq!(schema["format"], "uuid");
        assert_eq!(UserId::name(), "UserId");
        assert_eq!(ChannelId::name(), "ChannelId");
        // The example is what `Id` really writes.
        let example: UserId = serde_json::from_value(schema["examples"][0].clone()).unwrap();
        assert_eq!(
            serde_json::to_value(example).unwrap(),
            schema["examples"][0]
        );
    }

    #[test]
    fn timestamps_are_date_time_strings() {
        let schema = json::<Timestamp>();
        assert_eq!(schema["type"], "string");
        assert_eq!(schema["format"], "date-time");
        let example: Timestamp = serde_json::from_value(schema["examples"][0].clone()).unwrap();
        assert_eq!(
            serde_json::to_value(example).unwrap(),
            schema["examples"][0]
        );
    }
}
