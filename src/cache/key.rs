//! Cache keys: what was asked, hashed, under a namespace and a schema
//! version.

use std::fmt;

/// Where a cache's keys live: a namespace, so that several deployments can
/// share one Redis, and a schema version, so that a deploy that changes
/// the cached messages never reads old bytes as new ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpace {
    prefix: String,
}

impl KeySpace {
    /// Keys under `{namespace}:{schema}:`.
    pub fn new(namespace: &str, schema: &str) -> Self {
        Self {
            prefix: format!("{namespace}:{schema}:"),
        }
    }

    /// The key of the answer to `request` (its encoded bytes) on `method`
    /// (for example a gRPC path): `{namespace}:{schema}:{method}:{hash}`.
    ///
    /// The hash (xxh3, 128 bits) keeps keys short and keeps request
    /// contents, which may be user data, out of key names.
    pub fn key(&self, method: &str, request: &[u8]) -> CacheKey {
        let hash = xxhash_rust::xxh3::xxh3_128(request);
        CacheKey(format!("{}{method}:{hash:032x}", self.prefix))
    }
}

/// The key of one request's answer; see [`KeySpace::key`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: &str = "/catalog.v1.CatalogService/GetProduct";

    #[test]
    fn keys_depend_on_method_and_request_only() {
        let keys = KeySpace::new("gw", "s1");
        let a = keys.key(GET, b"\x0a\x08sku-1001");
        assert_eq!(a, keys.key(GET, b"\x0a\x08sku-1001"));
        assert_ne!(a, keys.key(GET, b"\x0a\x08sku-1002"));
        assert_ne!(
            a,
            keys.key(
                "/catalog.v1.CatalogService/ListProducts",
                b"\x0a\x08sku-1001"
            )
        );
        assert!(
            a.as_str()
                .starts_with("gw:s1:/catalog.v1.CatalogService/GetProduct:")
        );
        assert!(
            !a.as_str().contains("sku-1001"),
            "no user data in key names"
        );
    }

    #[test]
    fn namespace_and_schema_separate_keys() {
        let request = b"\x0a\x08sku-1001";
        let key = KeySpace::new("gw", "s1").key(GET, request);
        assert_ne!(key, KeySpace::new("other", "s1").key(GET, request));
        assert_ne!(key, KeySpace::new("gw", "s2").key(GET, request));
    }
}
