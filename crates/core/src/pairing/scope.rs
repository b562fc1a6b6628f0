//! Roles and scopes as types. A `connect` names its role and scopes as strings; they are parsed
//! here once, where they arrive, and refused with the reason when they are not exactly a name
//! this gateway knows: nothing is trimmed, lowercased or stripped into a known name, so a scope
//! the owner declined cannot come back in another spelling.
//!
//! The vocabulary: OpenClaw's closed set of operator scopes, the channel bridges'
//! `channel.ingest`, and namespaced custom scopes (`camera.snap`) that only nodes hold.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest scope name.
pub const MAX_SCOPE_LEN: usize = 64;

pub const ROLE_OPERATOR: &str = "operator";
pub const ROLE_NODE: &str = "node";

pub const SCOPE_ADMIN: &str = "operator.admin";
pub const SCOPE_PAIRING: &str = "operator.pairing";
pub const SCOPE_READ: &str = "operator.read";
pub const SCOPE_WRITE: &str = "operator.write";
pub const SCOPE_APPROVALS: &str = "operator.approvals";
pub const SCOPE_SESSIONS_READ: &str = "operator.sessions.read";
pub const SCOPE_SESSIONS_WRITE: &str = "operator.sessions.write";
pub const SCOPE_QUESTIONS: &str = "operator.questions";
pub const SCOPE_TALK: &str = "operator.talk";
pub const SCOPE_TALK_SECRETS: &str = "operator.talk.secrets";
pub const SCOPE_CHANNEL_INGEST: &str = "channel.ingest";

/// Every operator scope there is (OpenClaw 2026.9's closed set). An `operator.` name outside
/// it is refused rather than kept as a custom scope: the namespace is the protocol's.
pub const OPERATOR_SCOPES: [&str; 10] = [
    SCOPE_ADMIN,
    SCOPE_READ,
    SCOPE_WRITE,
    SCOPE_SESSIONS_READ,
    SCOPE_SESSIONS_WRITE,
    SCOPE_APPROVALS,
    SCOPE_QUESTIONS,
    SCOPE_PAIRING,
    SCOPE_TALK,
    SCOPE_TALK_SECRETS,
];

/// Why a role or scope name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("role {0:?} is not a role: use operator or node")]
    UnknownRole(String),
    #[error("a scope name cannot be empty")]
    EmptyScope,
    #[error("scope {shown:?} is longer than {MAX_SCOPE_LEN} bytes")]
    ScopeTooLong { shown: String },
    #[error("scope {shown:?} has {what} at byte {at}: scope names are made of a-z, 0-9, '.', '_' and '-' only")]
    ScopeCharacter {
        shown: String,
        what: String,
        at: usize,
    },
    #[error("scope {0:?} must be namespaced, as in \"camera.snap\": words of a-z, 0-9, '_' or '-' joined by single dots")]
    ScopeShape(String),
    #[error("scope {0:?} is not an operator scope this gateway knows")]
    UnknownOperatorScope(String),
}

/// A name as it may be shown in an error: printable ASCII kept, anything else escaped, so the
/// refusal shows exactly what was sent (a hidden character included).
fn shown(s: &str) -> String {
    s.chars()
        .take(MAX_SCOPE_LEN + 8)
        .flat_map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                vec![c]
            } else {
                c.escape_unicode().collect()
            }
        })
        .collect()
}

/// A connection's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Operator,
    Node,
}

impl Role {
    pub fn parse(s: &str) -> Result<Role, NameError> {
        match s {
            ROLE_OPERATOR => Ok(Role::Operator),
            ROLE_NODE => Ok(Role::Node),
            other => Err(NameError::UnknownRole(shown(other))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => ROLE_OPERATOR,
            Role::Node => ROLE_NODE,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Role {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Role {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Role {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Role::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A scope name that passed [`Scope::parse`]: a known scope, or a namespaced custom one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

impl Scope {
    /// Accepts exactly the vocabulary: `[a-z0-9._-]`, namespaced (`word.word…`, no empty
    /// word), at most [`MAX_SCOPE_LEN`] bytes; in the `operator.` namespace, only the known
    /// names.
    pub fn parse(s: &str) -> Result<Scope, NameError> {
        if s.is_empty() {
            return Err(NameError::EmptyScope);
        }
        if let Some((at, c)) = s
            .char_indices()
            .find(|(_, c)| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-'))
        {
            let what = if c.is_ascii_graphic() {
                format!("{c:?}")
            } else {
                format!("the character U+{:04X}", c as u32)
            };
            return Err(NameError::ScopeCharacter {
                shown: shown(s),
                what,
                at,
            });
        }
        if s.len() > MAX_SCOPE_LEN {
            return Err(NameError::ScopeTooLong { shown: shown(s) });
        }
        let mut words = s.split('.');
        let well_formed =
            s.contains('.') && words.all(|w| w.starts_with(|c: char| c.is_ascii_alphanumeric()));
        if !well_formed {
            return Err(NameError::ScopeShape(s.to_string()));
        }
        if s.starts_with("operator.") && !OPERATOR_SCOPES.contains(&s) {
            return Err(NameError::UnknownOperatorScope(s.to_string()));
        }
        Ok(Scope(s.to_string()))
    }

    pub fn admin() -> Scope {
        Scope(SCOPE_ADMIN.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The role that may hold it: operators hold `operator.*` and the bridges'
    /// `channel.ingest`, nodes hold every other (custom) scope.
    pub fn holder(&self) -> Role {
        holder_of(&self.0)
    }
}

/// [`Scope::holder`] for a stored name.
pub fn holder_of(scope: &str) -> Role {
    if scope.starts_with("operator.") || scope == SCOPE_CHANNEL_INGEST {
        Role::Operator
    } else {
        Role::Node
    }
}

impl AsRef<str> for Scope {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Scope {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Scope {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Scope::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Parses a list of scope names; the first refused one says why.
pub fn parse_scopes<S: AsRef<str>>(names: &[S]) -> Result<Vec<Scope>, NameError> {
    names.iter().map(|s| Scope::parse(s.as_ref())).collect()
}

/// The scopes `held` implies besides itself, as OpenClaw reads them: admin implies every
/// scope; write implies read, talk and both session scopes; read and sessions.write imply
/// sessions.read.
fn implies(held: &str, wanted: &str) -> bool {
    held == wanted
        || held == SCOPE_ADMIN
        || (held == SCOPE_WRITE
            && matches!(
                wanted,
                SCOPE_READ | SCOPE_TALK | SCOPE_SESSIONS_READ | SCOPE_SESSIONS_WRITE
            ))
        || ((held == SCOPE_READ || held == SCOPE_SESSIONS_WRITE) && wanted == SCOPE_SESSIONS_READ)
}

/// Whether `held` grants `wanted`.
pub fn scope_granted<S: AsRef<str>>(held: &[S], wanted: &str) -> bool {
    held.iter().any(|h| implies(h.as_ref(), wanted))
}

/// Whether `held` grants every one of `wanted`.
pub fn scopes_within<S: AsRef<str>, T: AsRef<str>>(held: &[S], wanted: &[T]) -> bool {
    wanted.iter().all(|w| scope_granted(held, w.as_ref()))
}

/// The first of `wanted` that `held` does not grant.
pub fn first_missing<'a, S: AsRef<str>, T: AsRef<str>>(
    held: &[S],
    wanted: &'a [T],
) -> Option<&'a str> {
    wanted
        .iter()
        .map(AsRef::as_ref)
        .find(|w| !scope_granted(held, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_scope_parses_and_keeps_its_spelling() {
        for s in OPERATOR_SCOPES.iter().chain([&SCOPE_CHANNEL_INGEST]) {
            assert_eq!(Scope::parse(s).unwrap().as_str(), *s);
        }
        assert_eq!(Scope::parse("camera.snap").unwrap().holder(), Role::Node);
        assert_eq!(Scope::parse("system.run-v2").unwrap().holder(), Role::Node);
        assert_eq!(
            Scope::parse(SCOPE_PAIRING).unwrap().holder(),
            Role::Operator
        );
        assert_eq!(
            Scope::parse(SCOPE_CHANNEL_INGEST).unwrap().holder(),
            Role::Operator
        );
    }

    #[test]
    fn a_known_scope_in_another_spelling_is_refused_not_normalised() {
        for bad in [
            "operator.admin ",
            " operator.admin",
            "operator.admin\u{200B}",
            "operator.\u{00AD}admin",
            "Operator.Admin",
            "OPERATOR.ADMIN",
            "operator.admin\n",
            "operator\u{2024}admin",
            "operator.adm\u{0131}n",
        ] {
            let e = Scope::parse(bad).unwrap_err();
            assert!(
                matches!(e, NameError::ScopeCharacter { .. }),
                "{bad:?}: {e:?}"
            );
            // The reason shows the hidden character, escaped.
            assert!(e.to_string().contains("a-z, 0-9"), "{e}");
        }
        let e = Scope::parse("operator.\u{00AD}admin").unwrap_err();
        assert!(e.to_string().contains("U+00AD"), "{e}");
    }

    #[test]
    fn names_must_be_namespaced_and_operator_names_known() {
        for bad in [
            "admin",
            "operator.",
            ".admin",
            "operator..admin",
            "a.-b",
            "x",
        ] {
            assert!(
                matches!(Scope::parse(bad), Err(NameError::ScopeShape(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            Scope::parse("operator.root"),
            Err(NameError::UnknownOperatorScope("operator.root".into()))
        );
        assert_eq!(Scope::parse(""), Err(NameError::EmptyScope));
        let long = format!("a.{}", "b".repeat(MAX_SCOPE_LEN));
        assert!(matches!(
            Scope::parse(&long),
            Err(NameError::ScopeTooLong { .. })
        ));
        assert!(Scope::parse("operator.admin,operator.read").is_err());
        assert!(Scope::parse("a|b.c").is_err());
    }

    #[test]
    fn roles_are_exactly_operator_or_node() {
        assert_eq!(Role::parse("operator"), Ok(Role::Operator));
        assert_eq!(Role::parse("node"), Ok(Role::Node));
        for bad in ["Operator", "node ", "admin", ""] {
            assert!(Role::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn implications_follow_openclaw() {
        let admin = [SCOPE_ADMIN];
        let write = [SCOPE_WRITE];
        let read = [SCOPE_READ];
        assert!(OPERATOR_SCOPES.iter().all(|s| scope_granted(&admin, s)));
        assert!(scope_granted(&admin, SCOPE_CHANNEL_INGEST));
        assert!(scope_granted(&admin, "camera.snap"));
        for s in [
            SCOPE_READ,
            SCOPE_TALK,
            SCOPE_SESSIONS_READ,
            SCOPE_SESSIONS_WRITE,
        ] {
            assert!(scope_granted(&write, s), "{s}");
        }
        assert!(!scope_granted(&write, SCOPE_PAIRING));
        assert!(!scope_granted(&write, SCOPE_ADMIN));
        assert!(scope_granted(&read, SCOPE_SESSIONS_READ));
        assert!(!scope_granted(&read, SCOPE_WRITE));
        assert!(!scope_granted(&[SCOPE_PAIRING], SCOPE_ADMIN));
        assert_eq!(
            first_missing(&[SCOPE_PAIRING], &[SCOPE_PAIRING, SCOPE_READ]),
            Some(SCOPE_READ)
        );
    }
}
