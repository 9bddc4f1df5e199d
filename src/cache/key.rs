//! Cache keys: what was asked, hashed, under a versioned prefix.

use std::fmt;

/// The key of one request's answer:
/// `lkg:v1:{method}:{hash of the request bytes}`.
///
/// The hash (xxh3, 128 bits) keeps keys short and keeps request contents,
/// which may be user data, out of Redis key names. The `v1` is the format
/// of the stored entries: bump it when they change, and old entries are
/// never read as new ones.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key of the answer to `request` (its encoded bytes) on `method`
    /// (for example a gRPC path).
    pub fn new(method: &str, request: &[u8]) -> Self {
        let hash = xxhash_rust::xxh3::xxh3_128(request);
        Self(format!("lkg:v1:{method}:{hash:032x}"))
    }

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

    #[test]
    fn keys_depend_on_method_and_request_only() {
        let a = CacheKey::new("/catalog.v1.CatalogService/GetProduct", b"\x0a\x08sku-1001");
        assert_eq!(
            a,
            CacheKey::new("/catalog.v1.CatalogService/GetProduct", b"\x0a\x08sku-1001")
        );
        assert_ne!(
            a,
            CacheKey::new("/catalog.v1.CatalogService/GetProduct", b"\x0a\x08sku-1002")
        );
        assert_ne!(
            a,
            CacheKey::new(
                "/catalog.v1.CatalogService/ListProducts",
                b"\x0a\x08sku-1001"
            )
        );
        assert!(
            a.as_str()
                .starts_with("lkg:v1:/catalog.v1.CatalogService/GetProduct:")
        );
        assert!(!a.as_str().contains("sku-1001"));
    }
}
