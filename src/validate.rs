//! The request rules of `catalog.v1`, in one place, so that the backend and
//! the gateway give the same `INVALID_ARGUMENT` for the same bad input, and
//! the gateway can reject it even while the backend is down.

use tonic::Status;

/// The longest product id accepted, in bytes.
pub const MAX_PRODUCT_ID_LEN: usize = 128;

/// The page size used when a request asks for 0.
pub const DEFAULT_PAGE_SIZE: usize = 20;

/// The largest page size; larger requests are served this many products.
pub const MAX_PAGE_SIZE: usize = 100;

/// Checks the `id` of a `GetProductRequest`.
pub fn product_id(id: &str) -> Result<(), Status> {
    if id.is_empty() {
        return Err(Status::invalid_argument("id must not be empty"));
    }
    if id.len() > MAX_PRODUCT_ID_LEN {
        return Err(Status::invalid_argument(format!(
            "id is {} bytes long; the limit is {MAX_PRODUCT_ID_LEN}",
            id.len()
        )));
    }
    Ok(())
}

/// Checks the `page_size` of a `ListProductsRequest` and returns the number
/// of products to serve: 0 means the default, and sizes above the maximum are
/// served the maximum, as the public API design guides recommend.
pub fn page_size(page_size: i32) -> Result<usize, Status> {
    match usize::try_from(page_size) {
        Err(_) => Err(Status::invalid_argument(format!(
            "page_size must not be negative, got {page_size}"
        ))),
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(size) => Ok(size.min(MAX_PAGE_SIZE)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn product_ids_must_be_present_and_bounded() {
        assert!(product_id("sku-1001").is_ok());
        assert!(product_id(&"x".repeat(MAX_PRODUCT_ID_LEN)).is_ok());

        let empty = product_id("").unwrap_err();
        assert_eq!(empty.code(), Code::InvalidArgument);
        assert_eq!(empty.message(), "id must not be empty");

        let long = product_id(&"x".repeat(MAX_PRODUCT_ID_LEN + 1)).unwrap_err();
        assert_eq!(long.code(), Code::InvalidArgument);
        assert!(long.message().contains("129 bytes"), "{}", long.message());
    }

    #[test]
    fn page_sizes_default_clamp_and_reject_negatives() {
        assert_eq!(page_size(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(7).unwrap(), 7);
        assert_eq!(page_size(10_000).unwrap(), MAX_PAGE_SIZE);
        assert_eq!(page_size(-1).unwrap_err().code(), Code::InvalidArgument);
    }
}
