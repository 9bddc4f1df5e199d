//! Page tokens that remember the last id served rather than an offset, so
//! that the next page starts in the right place even if the catalog changed
//! between two calls.
//!
//! A token is `"v1:" + last_id` in URL-safe base64 without padding. Clients
//! treat it as opaque; the version prefix lets a later format be told apart.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use resilient_catalog::validate;

/// Marks the token format, and tells our tokens from random base64.
const PREFIX: &str = "v1:";

/// The token of the page that follows the product `last_id`.
pub(crate) fn encode(last_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{PREFIX}{last_id}"))
}

/// The id after which the page of `token` starts, or `None` if this service
/// did not issue `token`.
pub(crate) fn decode(token: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let last_id = text.strip_prefix(PREFIX)?;
    validate::product_id(last_id).ok()?;
    Some(last_id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for id in ["sku-1001", "a", "ids/with+odd=chars?", &"x".repeat(128)] {
            let token = encode(id);
            assert!(!token.contains(['=', '+', '/']), "{token}");
            assert_eq!(decode(&token).as_deref(), Some(id));
        }
    }

    #[test]
    fn tokens_we_did_not_issue_are_refused() {
        let forged = [
            "",
            "not base64!",
            "sku-1001",
            &URL_SAFE_NO_PAD.encode("v2:sku-1001"),
            &URL_SAFE_NO_PAD.encode("v1:"),
            &URL_SAFE_NO_PAD.encode(format!("v1:{}", "x".repeat(129))),
            &URL_SAFE_NO_PAD.encode([b'v', b'1', b':', 0xff]),
            &base64::engine::general_purpose::STANDARD.encode("v1:sku-1001"),
        ];
        for token in forged {
            assert_eq!(decode(token), None, "{token:?}");
        }
    }
}
