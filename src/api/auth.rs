//! Bearer tokens: `Authorization: Bearer TOKEN` against `[[http.token]]`,
//! compared in constant time. No token or an unknown one is 401; a read
//! token on a route that changes something is 403.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::ApiState;
use crate::config::{Role, Token};

/// The role of the token `presented`, if it is one of `tokens`. Every
/// token is compared, whatever matched, so the time taken says nothing
/// about which prefix was right.
pub fn role_of(tokens: &[Token], presented: &str) -> Option<Role> {
    let mut found = None;
    for t in tokens {
        let same: bool = t.token.as_bytes().ct_eq(presented.as_bytes()).into();
        if same {
            found = Some(t.role);
        }
    }
    found
}

/// The token of a request: the `Authorization: Bearer` header, or the
/// `rivr_token` cookie the dashboard sets.
fn presented(req: &Request) -> Option<&str> {
    let h = req.headers();
    if let Some(v) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = v.trim().split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim());
    }
    cookie_token(h)
}

/// The `rivr_token` cookie's value, if the request has one.
pub fn cookie_token(h: &HeaderMap) -> Option<&str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("rivr_token="))
}

/// The middleware in front of every route but `/health` and `/ready`.
pub async fn require_token(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let role = presented(&req)
        .and_then(|t| role_of(&state.tokens, t))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "a bearer token from [[http.token]] is needed",
            )
        })?;
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD);
    if writes && role != Role::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this token is read-only; the request needs an admin token",
        ));
    }
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_found_by_the_whole_token() {
        let tokens = vec![
            Token {
                token: "admin-token-0123456789".into(),
                role: Role::Admin,
            },
            Token {
                token: "read-token-0123456789".into(),
                role: Role::Read,
            },
        ];
        assert_eq!(
            role_of(&tokens, "admin-token-0123456789"),
            Some(Role::Admin)
        );
        assert_eq!(role_of(&tokens, "read-token-0123456789"), Some(Role::Read));
        assert_eq!(role_of(&tokens, "read-token-012345678"), None);
        assert_eq!(role_of(&tokens, "read-token-01234567890"), None);
        assert_eq!(role_of(&tokens, ""), None);
        assert_eq!(role_of(&[], "anything-at-all-here"), None);
    }
}
