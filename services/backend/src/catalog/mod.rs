//! The products the backend serves, read once from JSON and kept sorted by
//! id, so that lookups and pages are cheap and always in the same order.

mod calls;
mod money;
mod page_token;
mod service;

pub use calls::CallCounter;
pub use money::{AmountProblem, MoneyError};
pub use service::CatalogApi;

use std::path::{Path, PathBuf};

use resilient_catalog::{proto::catalog::v1::Product, validate};
use serde::Deserialize;

/// The catalog that ships with the backend, served when no `--catalog` file
/// is given.
const BUNDLED: &str = include_str!("../../catalog.json");

/// The name given to the bundled catalog in error messages.
const BUNDLED_NAME: &str = "<bundled catalog.json>";

/// A read-only product catalog, sorted by id, with unique ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Catalog {
    /// Sorted by id, so that a lookup is a binary search and a page is a
    /// slice.
    products: Vec<Product>,
}

/// One page of [`Catalog::page`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Page<'a> {
    /// The products of the page, in id order.
    pub products: &'a [Product],
    /// Whether products follow this page: false on the last page, so that
    /// a client is never sent to a trailing empty page.
    pub more: bool,
}

impl Catalog {
    /// The catalog bundled with the backend: 36 products across six
    /// categories, ids `sku-1001` to `sku-1036`.
    pub fn bundled() -> Self {
        Self::parse(BUNDLED, Path::new(BUNDLED_NAME))
            .expect("the bundled catalog is valid, as a unit test checks")
    }

    /// Reads a catalog file: a JSON object whose `products` array holds
    /// objects such as
    ///
    /// ```json
    /// {"id": "sku-1001", "title": "...", "description": "...", "category": "audio",
    ///  "price": {"currency_code": "USD", "amount": "129.99"},
    ///  "updated_at": "2026-03-14T09:30:00Z"}
    /// ```
    ///
    /// Every field is required and unknown fields are refused, so that a
    /// misspelt field is reported rather than silently dropped. Ids must be
    /// unique and valid request ids. A catalog with no products is refused
    /// too: a backend that can only answer `NOT_FOUND` was almost always
    /// given the wrong file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CatalogError> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            file: path.to_owned(),
            source,
        })?;
        Self::parse(&json, path)
    }

    /// Parses and checks catalog JSON; `file` names it in errors.
    fn parse(json: &str, file: &Path) -> Result<Self, CatalogError> {
        let document: CatalogFile =
            serde_json::from_str(json).map_err(|source| CatalogError::Json {
                file: file.to_owned(),
                source,
            })?;
        if document.products.is_empty() {
            return Err(CatalogError::Empty {
                file: file.to_owned(),
            });
        }

        let mut products = document
            .products
            .into_iter()
            .enumerate()
            .map(|(index, entry)| {
                let id = entry.id.clone();
                entry
                    .into_product()
                    .map(|product| (index, product))
                    .map_err(|problem| CatalogError::Product {
                        file: file.to_owned(),
                        index,
                        id,
                        problem,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;

        // A stable sort keeps duplicates in file order, so the error names
        // the first and the second occurrence.
        products.sort_by(|(_, a), (_, b)| a.id.cmp(&b.id));
        if let Some(pair) = products
            .windows(2)
            .find(|pair| pair[0].1.id == pair[1].1.id)
        {
            return Err(CatalogError::DuplicateId {
                file: file.to_owned(),
                id: pair[0].1.id.clone(),
                first: pair[0].0,
                second: pair[1].0,
            });
        }

        Ok(Self {
            products: products.into_iter().map(|(_, product)| product).collect(),
        })
    }

    /// The product with this id.
    pub fn get(&self, id: &str) -> Option<&Product> {
        self.products
            .binary_search_by(|product| product.id.as_str().cmp(id))
            .ok()
            .map(|index| &self.products[index])
    }

    /// Up to `size` products, in id order, starting after the product
    /// `after` (from the start when `None`). The id need not still be in the
    /// catalog: the page starts at the next id in order.
    pub fn page(&self, after: Option<&str>, size: usize) -> Page<'_> {
        let start = after.map_or(0, |after| {
            self.products
                .partition_point(|product| product.id.as_str() <= after)
        });
        let end = start.saturating_add(size).min(self.products.len());
        Page {
            products: &self.products[start..end],
            more: end < self.products.len(),
        }
    }

    /// Every product, in id order.
    pub fn products(&self) -> &[Product] {
        &self.products
    }

    /// The number of products.
    pub fn len(&self) -> usize {
        self.products.len()
    }

    /// Whether the catalog has no products; never true of a loaded one.
    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
    }
}

/// Why a catalog file was refused. Every message names the file, and the
/// product and field at fault.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read.
    #[error("cannot read catalog {}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not JSON of the catalog's shape.
    #[error("catalog {} is not a valid catalog: {source}", file.display())]
    Json {
        /// The file.
        file: PathBuf,
        /// What is wrong and where (line and column).
        source: serde_json::Error,
    },
    /// The file lists no products.
    #[error("catalog {} has no products", file.display())]
    Empty {
        /// The file.
        file: PathBuf,
    },
    /// One product has a bad value.
    #[error("catalog {}: products[{index}] (id {id:?}): {problem}", file.display())]
    Product {
        /// The file.
        file: PathBuf,
        /// The position of the product in the `products` array, from 0.
        index: usize,
        /// The id of the product, as written.
        id: String,
        /// What is wrong with it.
        problem: ProductProblem,
    },
    /// Two products share an id.
    #[error(
        "catalog {}: products[{first}] and products[{second}] have the same id {id:?}",
        file.display()
    )]
    DuplicateId {
        /// The file.
        file: PathBuf,
        /// The shared id.
        id: String,
        /// The position of its first occurrence.
        first: usize,
        /// The position of its second occurrence.
        second: usize,
    },
}

/// What is wrong with one product of a catalog file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProductProblem {
    /// The id would be refused in a request, so the product could never be
    /// asked for.
    #[error("id: {0}")]
    Id(String),
    /// The price does not parse.
    #[error(transparent)]
    Price(#[from] MoneyError),
    /// `updated_at` is not a timestamp.
    #[error("updated_at {0:?} is not an RFC 3339 timestamp such as \"2026-03-14T09:30:00Z\"")]
    UpdatedAt(String),
}

/// The shape of a catalog file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    /// The products, in any order.
    products: Vec<ProductEntry>,
}

/// One product as written in a catalog file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductEntry {
    /// Becomes `Product::id`.
    id: String,
    /// Becomes `Product::title`.
    title: String,
    /// Becomes `Product::description`.
    description: String,
    /// Becomes `Product::category`.
    category: String,
    /// Becomes `Product::price`.
    price: PriceEntry,
    /// Becomes `Product::update_time`.
    updated_at: String,
}

/// A price as written in a catalog file: the amount is a string, so that it
/// is never read as a float.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceEntry {
    /// An ISO 4217 code such as `USD`.
    currency_code: String,
    /// A decimal string such as `"129.99"`.
    amount: String,
}

impl ProductEntry {
    /// Checks the entry and turns it into the proto message served.
    fn into_product(self) -> Result<Product, ProductProblem> {
        validate::product_id(&self.id)
            .map_err(|status| ProductProblem::Id(status.message().into()))?;
        let price = money::parse(&self.price.currency_code, &self.price.amount)?;
        let update_time = self
            .updated_at
            .parse::<prost_types::Timestamp>()
            .map_err(|_| ProductProblem::UpdatedAt(self.updated_at.clone()))?;
        Ok(Product {
            id: self.id,
            title: self.title,
            description: self.description,
            category: self.category,
            price: Some(price),
            update_time: Some(update_time),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A catalog file written to a fresh temporary directory.
    struct CatalogFixture {
        /// Removed, with the file, when the fixture drops.
        _dir: tempfile::TempDir,
        /// The file.
        path: PathBuf,
    }

    impl CatalogFixture {
        fn new(json: &str) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("catalog.json");
            std::fs::write(&path, json).unwrap();
            Self { _dir: dir, path }
        }

        fn load_error(&self) -> String {
            let error = Catalog::load(&self.path).unwrap_err().to_string();
            let file = self.path.display().to_string();
            assert!(error.contains(&file), "{error:?} does not name {file}");
            error
        }
    }

    /// A product entry, with one field replaced by `(name, value)`.
    fn entry(id: &str, replace: Option<(&str, serde_json::Value)>) -> serde_json::Value {
        let mut product = serde_json::json!({
            "id": id,
            "title": "Kettle",
            "description": "Boils water.",
            "category": "kitchen",
            "price": {"currency_code": "USD", "amount": "19.99"},
            "updated_at": "2026-03-14T09:30:00Z",
        });
        if let Some((name, value)) = replace {
            product[name] = value;
        }
        product
    }

    fn file(products: &[serde_json::Value]) -> String {
        serde_json::json!({ "products": products }).to_string()
    }

    #[test]
    fn the_bundled_catalog_is_valid_and_sorted() {
        let catalog = Catalog::parse(BUNDLED, Path::new(BUNDLED_NAME)).unwrap();
        assert_eq!(catalog.len(), 36);
        let ids: Vec<_> = catalog.products().iter().map(|p| p.id.clone()).collect();
        let expected: Vec<_> = (1001..=1036).map(|n| format!("sku-{n}")).collect();
        assert_eq!(ids, expected);
        assert!(
            catalog
                .products()
                .iter()
                .any(|p| p.price.as_ref().unwrap().currency_code == "EUR")
        );
        assert_eq!(Catalog::bundled(), catalog);
    }

    #[test]
    fn a_file_is_loaded_sorted_with_exact_prices() {
        let fixture = CatalogFixture::new(&file(&[
            entry("b", None),
            entry(
                "a",
                Some((
                    "price",
                    serde_json::json!({"currency_code": "EUR", "amount": "0.5"}),
                )),
            ),
        ]));
        let catalog = Catalog::load(&fixture.path).unwrap();
        assert_eq!(catalog.products()[0].id, "a");
        assert_eq!(catalog.products()[1].id, "b");
        let a = catalog.get("a").unwrap();
        let price = a.price.as_ref().unwrap();
        assert_eq!((price.units, price.nanos), (0, 500_000_000));
        assert_eq!(a.update_time.unwrap().seconds, 1_773_480_600);
        assert_eq!(catalog.get("c"), None);
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.json");
        let error = Catalog::load(&path).unwrap_err();
        assert!(matches!(error, CatalogError::Read { .. }), "{error:?}");
        assert!(error.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn json_errors_name_the_file_and_the_field() {
        let error = CatalogFixture::new("{\"products\": [").load_error();
        assert!(error.contains("not a valid catalog"), "{error}");

        let error = CatalogFixture::new("[]").load_error();
        assert!(error.contains("not a valid catalog"), "{error}");

        let mut misspelt = entry("a", None);
        misspelt["updatedAt"] = misspelt["updated_at"].take();
        misspelt.as_object_mut().unwrap().remove("updated_at");
        let error = CatalogFixture::new(&file(&[misspelt])).load_error();
        assert!(error.contains("updatedAt"), "{error}");

        let error = CatalogFixture::new(&file(&[entry(
            "a",
            Some((
                "price",
                serde_json::json!({"currency_code": "USD", "amount": 12.5}),
            )),
        )]))
        .load_error();
        assert!(error.contains("expected a string"), "{error}");
    }

    #[test]
    fn an_empty_catalog_is_refused() {
        let error = CatalogFixture::new(r#"{"products": []}"#).load_error();
        assert!(error.ends_with("has no products"), "{error}");
    }

    #[test]
    fn bad_products_are_named_with_their_field() {
        let price = |currency: &str, amount: &str| {
            Some((
                "price",
                serde_json::json!({"currency_code": currency, "amount": amount}),
            ))
        };
        let cases = [
            (entry("ok", price("USD", "1.2.3")), "price.amount \"1.2.3\""),
            (entry("ok", price("USD", "-1")), "is negative"),
            (
                entry("ok", price("usd", "1")),
                "price.currency_code \"usd\"",
            ),
            (
                entry("ok", Some(("updated_at", "yesterday".into()))),
                "updated_at \"yesterday\"",
            ),
            (entry("", None), "id: id must not be empty"),
            (entry(&"x".repeat(129), None), "id: id is 129 bytes long"),
        ];
        for (bad, expected) in cases {
            let id = bad["id"].as_str().unwrap().to_owned();
            let error = CatalogFixture::new(&file(&[entry("first", None), bad])).load_error();
            assert!(
                error.contains(&format!("products[1] (id {id:?}): ")),
                "{error}"
            );
            assert!(error.contains(expected), "{error} lacks {expected}");
        }
    }

    #[test]
    fn duplicate_ids_are_named_with_both_positions() {
        let error = CatalogFixture::new(&file(&[
            entry("a", None),
            entry("b", None),
            entry("a", None),
        ]))
        .load_error();
        assert!(
            error.ends_with("products[0] and products[2] have the same id \"a\""),
            "{error}"
        );
    }

    #[test]
    fn pages_start_after_the_last_id_even_if_it_is_gone() {
        let catalog = Catalog::parse(
            &file(&[entry("a", None), entry("c", None), entry("e", None)]),
            Path::new("test"),
        )
        .unwrap();
        fn ids(page: Page<'_>) -> (Vec<&str>, bool) {
            let ids = page.products.iter().map(|p| p.id.as_str()).collect();
            (ids, page.more)
        }
        assert_eq!(ids(catalog.page(None, 2)), (vec!["a", "c"], true));
        assert_eq!(ids(catalog.page(Some("c"), 2)), (vec!["e"], false));
        // The page ends exactly at the last product: no trailing page.
        assert_eq!(ids(catalog.page(Some("a"), 2)), (vec!["c", "e"], false));
        // "b" is not in the catalog: the page starts at the next id.
        assert_eq!(ids(catalog.page(Some("b"), 1)), (vec!["c"], true));
        assert_eq!(ids(catalog.page(Some("z"), 5)), (vec![], false));
        assert_eq!(ids(catalog.page(None, usize::MAX)).0.len(), 3);
    }
}
