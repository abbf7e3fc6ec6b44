//! Extractors that keep the framework's status codes (`rest.md` §3.2) but answer with
//! the JSON error body.

use std::marker::PhantomData;

use axum::{
    extract::{FromRequest, FromRequestParts, Request, rejection::JsonRejection},
    http::request::Parts,
};
use serde::{
    Deserialize, Deserializer,
    de::{DeserializeOwned, MapAccess, Visitor, value::MapAccessDeserializer},
};

use crate::error::ApiError;

/// A JSON body: 400 bad syntax, 422 wrong shape, 415 wrong content type, 413 too big.
///
/// The body must be a JSON object. serde's derived structs also accept a JSON array of
/// their fields in order (`["name"]` for `{"name": "name"}`), a form no request body of
/// the API has: it is refused with 422 like any other wrong shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<Object<T>>::from_request(req, state).await {
            Ok(axum::Json(Object(value))) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

/// `T`, read only from a JSON object.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

struct ObjectVisitor<T>(PhantomData<fn() -> T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = Object<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Object)
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    let message = match rejection {
        JsonRejection::JsonDataError(e) => format!("Invalid request body: {}", e.body_text()),
        JsonRejection::JsonSyntaxError(_) => "Malformed JSON body".to_string(),
        JsonRejection::MissingJsonContentType(_) => {
            "Expected Content-Type: application/json".to_string()
        }
        other => other.body_text(),
    };
    ApiError::new(rejection.status(), message)
}

/// Path parameters: anything that does not parse is 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(_) => Err(ApiError::bad_request("Invalid path parameter")),
        }
    }
}

/// Query parameters: anything that does not parse is 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(_) => Err(ApiError::bad_request("Invalid query parameter")),
        }
    }
}

/// An optional JSON body: an empty body (with or without a content type) or a JSON
/// `null` is `None`; anything else is read as [`Json`] reads it, with the same
/// rejections.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalJson<T>(pub Option<T>);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes =
            axum::body::Bytes::from_request(Request::from_parts(parts.clone(), body), state)
                .await
                .map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes.clone()));
        if bytes.trim_ascii() == b"null" {
            // Still a JSON body: the content type must say so.
            return axum::Json::<serde::de::IgnoredAny>::from_request(req, state)
                .await
                .map(|_| Self(None))
                .map_err(|rejection| json_rejection(&rejection));
        }
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(value)| Self(Some(value)))
    }
}

#[cfg(test)]
mod tests {
    use concord_protocol::{CreateServer, UpdateVoice};

    use super::*;

    fn read<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
        serde_json::from_str::<Object<T>>(text).map(|Object(value)| value)
    }

    #[test]
    fn only_objects_are_bodies() {
        assert_eq!(read::<CreateServer>(r#"{"name":"a"}"#).unwrap().name, "a");
        // serde alone takes the array form of a struct; the body extractor does not.
        assert!(serde_json::from_str::<CreateServer>(r#"["a"]"#).is_ok());
        for text in [r#"["a"]"#, "[]", "null", "5", r#""a""#] {
            let err = read::<CreateServer>(text).unwrap_err();
            assert!(err.is_data(), "{text}: {err}");
        }
    }

    #[test]
    fn field_rules_still_apply_inside_the_object() {
        assert!(read::<CreateServer>("{}").unwrap_err().is_data());
        assert!(read::<UpdateVoice>(r#"{"self_mute":true,"extra":1}"#).is_err());
        assert_eq!(
            read::<UpdateVoice>(r#"{"self_mute":true}"#)
                .unwrap()
                .self_mute,
            Some(true)
        );
    }
}
