//! Channel and account names: the one rule a name must pass before it may become part of a
//! path in the state directory, and the two types that can only hold a name that passed it.
//!
//! [`StatePaths`](super::StatePaths) builds the files of a channel from a [`ChannelName`] and
//! an [`AccountId`] only, so a name read from a pairing file, a settings key, a protocol
//! frame or OpenClaw's store cannot reach a path without going through [`ChannelName::parse`]
//! or [`AccountId::parse`] first.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::pairing::dm::DEFAULT_ACCOUNT;

/// The longest channel or account name.
pub const MAX_NAME_LEN: usize = 64;

/// Why a channel or account name was refused. `shown` is the name as it may be printed
/// (control, bidi and zero-width characters stripped, cut to 64 characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} name {shown:?}: use 1-64 characters from a-z, 0-9, '_' and '-', starting with a letter or digit")]
pub struct InvalidName {
    pub kind: &'static str,
    pub shown: String,
}

/// `[a-z0-9][a-z0-9_-]{0,63}`: nothing that could become a path trick (no `.`, `/`, `\`, NUL,
/// uppercase or anything outside ASCII). A `const fn`, so names written in the source are
/// checked when the program is compiled.
const fn is_valid(b: &[u8]) -> bool {
    if b.is_empty() || b.len() > MAX_NAME_LEN {
        return false;
    }
    if !(b[0].is_ascii_lowercase() || b[0].is_ascii_digit()) {
        return false;
    }
    let mut i = 1;
    while i < b.len() {
        let c = b[i];
        if !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-') {
            return false;
        }
        i += 1;
    }
    true
}

fn check(kind: &'static str, name: &str) -> Result<Cow<'static, str>, InvalidName> {
    if is_valid(name.as_bytes()) {
        Ok(Cow::Owned(name.to_string()))
    } else {
        Err(InvalidName {
            kind,
            shown: crate::sanitize::sanitize(name),
        })
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $ty(Cow<'static, str>);

        impl $ty {
            /// What the name is called in errors.
            pub const KIND: &'static str = $kind;

            /// The name, when it passes the rule.
            pub fn parse(name: &str) -> Result<Self, InvalidName> {
                check($kind, name).map($ty)
            }

            /// A name written in the source. Used to define a `const`, an invalid name fails to
            /// compile.
            pub const fn from_static(name: &'static str) -> Self {
                assert!(is_valid(name.as_bytes()), "invalid name in the source");
                $ty(Cow::Borrowed(name))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl From<$ty> for String {
            fn from(n: $ty) -> String {
                n.0.into_owned()
            }
        }
    };
}

name_type!(
    /// A channel's name (`telegram`), checked: safe to put in a file name.
    ChannelName,
    "channel"
);

name_type!(
    /// An account of a channel (`default`, `work`), checked: safe to put in a file name.
    AccountId,
    "account"
);

impl Default for AccountId {
    fn default() -> Self {
        AccountId::DEFAULT
    }
}

impl AccountId {
    /// The account a message or file names when it names none.
    pub const DEFAULT: AccountId = AccountId::from_static(DEFAULT_ACCOUNT);

    pub fn default_account() -> AccountId {
        Self::DEFAULT
    }

    pub fn is_default(&self) -> bool {
        self.as_str() == DEFAULT_ACCOUNT
    }

    /// An optional account as given by a caller: none (or empty) is the default account.
    pub fn parse_or_default(name: Option<&str>) -> Result<AccountId, InvalidName> {
        match name.filter(|a| !a.is_empty()) {
            Some(a) => AccountId::parse(a),
            None => Ok(AccountId::default_account()),
        }
    }
}

/// Whether the prefix of a credentials file name (`<prefix>-pairing.json`,
/// `<prefix>-allowFrom.json`) is a channel, or a channel, a dash and an account, all of whose
/// names pass the rule.
pub fn is_channel_file_prefix(prefix: &str) -> bool {
    ChannelName::parse(prefix).is_ok()
        || prefix.match_indices('-').any(|(i, _)| {
            ChannelName::parse(&prefix[..i]).is_ok() && AccountId::parse(&prefix[i + 1..]).is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names the rule exists for: each would, unchecked, escape `credentials/` or name a
    /// file other than the one meant.
    const PATH_LIKE: &[&str] = &[
        "",
        "..",
        "../x",
        "../../../../escape",
        "a/b",
        "/abs",
        "a\\b",
        "a\0",
        "Tele",
        "-x",
        "_x",
        "x.y",
        "é",
        " x",
    ];

    #[test]
    fn path_like_names_are_refused() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in PATH_LIKE.iter().copied().chain([long.as_str()]) {
            let e = ChannelName::parse(bad).unwrap_err();
            assert_eq!(e.kind, "channel");
            assert!(AccountId::parse(bad).is_err(), "{bad:?} should be refused");
        }
        for good in ["telegram", "x", "a-b_c9", "9", &"a".repeat(MAX_NAME_LEN)] {
            assert_eq!(ChannelName::parse(good).unwrap().as_str(), good);
            assert_eq!(AccountId::parse(good).unwrap().to_string(), good);
        }
    }

    #[test]
    fn refusals_keep_their_wording_and_never_print_raw_control_characters() {
        let e = AccountId::parse("../\u{202E}x\u{0}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid account name \"../x\": use 1-64 characters from a-z, 0-9, '_' and '-', starting with a letter or digit"
        );
    }

    #[test]
    fn no_account_is_the_default_account() {
        assert!(AccountId::parse_or_default(None).unwrap().is_default());
        assert!(AccountId::parse_or_default(Some("")).unwrap().is_default());
        assert_eq!(AccountId::parse_or_default(Some("work")).unwrap(), "work");
        assert!(AccountId::parse_or_default(Some("..")).is_err());
        assert_eq!(AccountId::DEFAULT, AccountId::parse("default").unwrap());
    }

    #[test]
    fn file_prefixes_are_a_channel_or_a_channel_and_an_account() {
        for ok in ["telegram", "telegram-work", "my-chan", "a--b", "a-b-c"] {
            assert!(is_channel_file_prefix(ok), "{ok}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in ["", "..", "evil-..", "-x", "Bad", "a.b-c", long.as_str()] {
            assert!(!is_channel_file_prefix(bad), "{bad}");
        }
    }
}
