//! The dashboard: one page at `/` (HTML, JS and CSS embedded in the
//! binary, no request leaves rivr) fed by a server-sent events stream at
//! `/events` with one JSON snapshot per second (docs/api.md, "Dashboard").
//!
//! Signing in: `/?token=T` (a link an operator can bookmark or share) or
//! the sign-in form (`POST /`, so a typed token never sits in a URL) sets
//! an HttpOnly, SameSite=Strict `rivr_token` cookie — the cookie the API's
//! guard accepts — and answers 303 to `/`, so the token leaves the address
//! bar and the history. The page's own script never sees the token.

pub mod errors;
mod snapshot;

use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tokio_stream::wrappers::WatchStream;
use tokio_stream::{Stream, StreamExt};

pub use snapshot::Feed;

use super::auth::{cookie_token, role_of};
use super::ApiState;

const PAGE: &str = include_str!("dashboard/index.html");
const SIGN_IN: &str = include_str!("dashboard/signin.html");
const SCRIPT: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/style.css");

/// Only rivr itself: no CDN, no inline script, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self'; form-action 'self'; \
                   base-uri 'none'; frame-ancestors 'none'";

/// The page's open routes; `/events` is added to the guarded ones.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(page).post(sign_in))
        .route("/signout", post(sign_out))
        .route("/dashboard.js", get(|| asset(SCRIPT, "text/javascript")))
        .route("/dashboard.css", get(|| asset(STYLE, "text/css")))
}

/// `GET /events`: the snapshots, one per second, each an SSE `data:` line.
pub async fn events(
    State(s): State<ApiState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = s.dashboard.subscribe(&s);
    let stream = WatchStream::new(rx)
        .filter_map(|v| v.map(|json| Ok(Event::default().event("snapshot").data(&*json))));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[derive(Deserialize)]
pub struct TokenParam {
    token: Option<String>,
}

/// `GET /`: signs in with `?token=`, else the dashboard for a valid
/// cookie, else the sign-in page.
async fn page(
    State(s): State<ApiState>,
    Query(q): Query<TokenParam>,
    headers: HeaderMap,
) -> Response {
    if let Some(token) = q.token {
        return signed_in(&s, &token);
    }
    let valid = cookie_token(&headers).is_some_and(|t| role_of(&s.tokens, t).is_some());
    if valid {
        html(StatusCode::OK, PAGE.to_string())
    } else {
        sign_in_page(StatusCode::OK, "")
    }
}

/// `POST /` from the sign-in form.
async fn sign_in(
    State(s): State<ApiState>,
    form: Result<Form<TokenParam>, axum::extract::rejection::FormRejection>,
) -> Response {
    let token = form.ok().and_then(|Form(f)| f.token).unwrap_or_default();
    signed_in(&s, &token)
}

/// `POST /signout`: forgets the cookie.
async fn sign_out() -> Response {
    let mut r = see_other();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("rivr_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

/// The cookie and a 303 to `/` for a known token; the sign-in page with
/// the reason otherwise.
fn signed_in(s: &ApiState, token: &str) -> Response {
    let token = token.trim();
    if role_of(&s.tokens, token).is_none() {
        return sign_in_page(
            StatusCode::UNAUTHORIZED,
            "That token is not one of [[http.token]].",
        );
    }
    let cookie = HeaderValue::from_str(&format!(
        "rivr_token={token}; Path=/; HttpOnly; SameSite=Strict"
    ));
    match cookie {
        Ok(c) if token.bytes().all(cookie_octet) => {
            let mut r = see_other();
            r.headers_mut().insert(header::SET_COOKIE, c);
            r
        }
        _ => sign_in_page(
            StatusCode::BAD_REQUEST,
            "That token has a character a cookie cannot hold (a quote, comma, semicolon or \
             backslash); give the dashboard a token without one.",
        ),
    }
}

/// RFC 6265's cookie-octet: what a cookie value may hold unquoted.
fn cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

fn see_other() -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/"));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The sign-in page with `message` (one of ours, never request text).
fn sign_in_page(status: StatusCode, message: &'static str) -> Response {
    html(status, SIGN_IN.replace("{{MESSAGE}}", message))
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // `/?token=` must not travel on in a Referer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn asset(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_octets_exclude_what_breaks_a_cookie() {
        for b in [b' ', b'"', b',', b';', b'\\', 0x7F, 0x00] {
            assert!(!cookie_octet(b), "{b:#x}");
        }
        for b in b"abcXYZ019-_.~!#$%&'()*+/:<=>?@[]^`{|}" {
            assert!(cookie_octet(*b), "{:?}", *b as char);
        }
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for (name, text) in [
            ("index.html", PAGE),
            ("signin.html", SIGN_IN),
            ("app.js", SCRIPT),
            ("style.css", STYLE),
        ] {
            for bad in [
                "http://",
                "https://",
                "//cdn",
                "<script>",
                " onclick=",
                "@import",
            ] {
                assert!(!text.contains(bad), "{name} has {bad:?}");
            }
        }
    }
}
