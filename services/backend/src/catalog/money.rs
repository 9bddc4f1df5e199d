//! Prices read from decimal strings into `Money` exactly, digit by digit, so
//! that no amount ever passes through a float and loses a cent.

use resilient_catalog::proto::catalog::v1::Money;

/// The most fractional digits an amount may have: `Money::nanos` counts
/// billionths.
const MAX_FRACTION_DIGITS: usize = 9;

/// Why a price from a catalog file was rejected. Each message names the
/// field of the file at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The currency is not an ISO 4217 code.
    #[error(
        "price.currency_code {0:?} is not a three-letter upper-case ISO 4217 code such as \"USD\""
    )]
    Currency(String),
    /// The amount is not a plain non-negative decimal number.
    #[error("price.amount {amount:?} {problem}")]
    Amount {
        /// The amount as written in the file.
        amount: String,
        /// What is wrong with it.
        problem: AmountProblem,
    },
}

/// What is wrong with an amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountProblem {
    /// A minus sign: a price is never negative.
    #[error("is negative; a price must be zero or more")]
    Negative,
    /// Not digits, an optional point and more digits.
    #[error("is not a decimal number such as \"12.34\"")]
    NotDecimal,
    /// More fractional digits than nanos can hold.
    #[error("has more than {MAX_FRACTION_DIGITS} digits after the point")]
    TooPrecise,
    /// More whole units than `Money::units` can hold.
    #[error("is too large")]
    TooLarge,
}

/// Reads a price: `currency_code` must be three upper-case ASCII letters and
/// `amount` a non-negative decimal string with at most nine fractional
/// digits, such as `"12"`, `"0.5"` or `"129.99"`.
pub(crate) fn parse(currency_code: &str, amount: &str) -> Result<Money, MoneyError> {
    if currency_code.len() != 3 || !currency_code.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(MoneyError::Currency(currency_code.to_owned()));
    }
    let (units, nanos) = parse_amount(amount).map_err(|problem| MoneyError::Amount {
        amount: amount.to_owned(),
        problem,
    })?;
    Ok(Money {
        currency_code: currency_code.to_owned(),
        units,
        nanos,
    })
}

/// Splits a decimal string into whole units and nanos.
fn parse_amount(amount: &str) -> Result<(i64, i32), AmountProblem> {
    if amount.starts_with('-') {
        return Err(AmountProblem::Negative);
    }
    let (whole, fraction) = match amount.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (amount, None),
    };
    let is_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !is_digits(whole) || fraction.is_some_and(|f| !is_digits(f)) {
        return Err(AmountProblem::NotDecimal);
    }

    // Only ASCII digits are left, so the one way `parse` can fail is overflow.
    let units = whole.parse::<i64>().map_err(|_| AmountProblem::TooLarge)?;
    let fraction = fraction.unwrap_or("");
    if fraction.len() > MAX_FRACTION_DIGITS {
        return Err(AmountProblem::TooPrecise);
    }
    let nanos = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(MAX_FRACTION_DIGITS)
        .fold(0_i32, |nanos, digit| nanos * 10 + i32::from(digit - b'0'));
    Ok((units, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(s: &str) -> Result<(i64, i32), AmountProblem> {
        parse_amount(s)
    }

    #[test]
    fn amounts_are_read_exactly() {
        assert_eq!(amount("0.5"), Ok((0, 500_000_000)));
        assert_eq!(amount("12"), Ok((12, 0)));
        assert_eq!(amount("12.340"), Ok((12, 340_000_000)));
        assert_eq!(amount("129.99"), Ok((129, 990_000_000)));
        assert_eq!(amount("1.000000001"), Ok((1, 1)));
        assert_eq!(amount("0"), Ok((0, 0)));
        assert_eq!(amount("007.10"), Ok((7, 100_000_000)));
        assert_eq!(
            amount("9223372036854775807.999999999"),
            Ok((i64::MAX, 999_999_999))
        );
    }

    #[test]
    fn bad_amounts_are_rejected_with_the_reason() {
        assert_eq!(amount("-1"), Err(AmountProblem::Negative));
        assert_eq!(amount("-0.5"), Err(AmountProblem::Negative));
        for bad in [
            "1.2.3", "abc", "1e3", "", ".5", "5.", "+5", " 5", "5 ", "1,50", "١٢",
        ] {
            assert_eq!(amount(bad), Err(AmountProblem::NotDecimal), "{bad:?}");
        }
        assert_eq!(amount("1.0000000001"), Err(AmountProblem::TooPrecise));
        assert_eq!(amount("9223372036854775808"), Err(AmountProblem::TooLarge));
    }

    #[test]
    fn currencies_are_three_upper_case_letters() {
        let money = parse("EUR", "24.90").unwrap();
        assert_eq!(
            money,
            Money {
                currency_code: "EUR".into(),
                units: 24,
                nanos: 900_000_000
            }
        );
        for bad in ["usd", "US", "USDX", "U$D", "", "ÉUR"] {
            assert_eq!(
                parse(bad, "1"),
                Err(MoneyError::Currency(bad.into())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn messages_name_the_field_and_the_value() {
        let error = parse("USD", "1.2.3").unwrap_err().to_string();
        assert_eq!(
            error,
            "price.amount \"1.2.3\" is not a decimal number such as \"12.34\""
        );
        let error = parse("usd", "1").unwrap_err().to_string();
        assert!(error.starts_with("price.currency_code \"usd\""), "{error}");
    }
}
