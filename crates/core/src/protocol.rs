//! The protocol's vocabulary as types: the versions served, the error codes of answers and
//! refusals, and the outcomes events report. Each serialises to its wire string (docs/PROTOCOL.md)
//! and code decides by matching variants, never strings. A leaf: every layer may use it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The protocol versions served: 3 (OpenClaw before 2026.9, and ClawPair's first clients) and
/// 4 (OpenClaw 2026.9's clients). 4 adds only optional fields; pairing is the same in both.
pub const MIN_PROTOCOL: u32 = 3;
pub const MAX_PROTOCOL: u32 = 4;

/// Protocol versions, as a range a method or a feature exists in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub first: u32,
    pub last: u32,
}

impl Versions {
    /// Every version served.
    pub const ALL: Versions = Versions {
        first: MIN_PROTOCOL,
        last: MAX_PROTOCOL,
    };

    pub fn contains(self, version: u32) -> bool {
        (self.first..=self.last).contains(&version)
    }
}

/// `Display`, serde and comparison with a string, for a type with `as_str`.
macro_rules! str_like {
    ($name:ty) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

/// An enum whose variants are wire strings: `as_str`, `from_wire`, `Display`, serde as the
/// string, and comparison with a string (so a test can say `assert_eq!(e.code, "NOT_FOUND")`).
macro_rules! wire_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)*
                }
            }

            /// The variant with this wire string, if there is one.
            pub fn from_wire(s: &str) -> Option<$name> {
                match s {
                    $($wire => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        str_like!($name);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let s = String::deserialize(d)?;
                $name::from_wire(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!("unknown {} {s:?}", stringify!($name)))
                })
            }
        }
    };
}

wire_enum! {
    /// What the owner may answer an exec approval (OpenClaw's `exec.approval.resolve`).
    pub enum ExecDecision {
        /// This one run.
        AllowOnce = "allow-once",
        /// This command from now on (where the gateway offers it).
        AllowAlways = "allow-always",
        Deny = "deny",
    }
}

impl ExecDecision {
    /// The words on its button.
    pub fn label(self) -> &'static str {
        match self {
            ExecDecision::AllowOnce => "Allow once",
            ExecDecision::AllowAlways => "Always allow",
            ExecDecision::Deny => "Deny",
        }
    }
}

wire_enum! {
    /// The `code` of an error answer or a refused `connect` (docs/PROTOCOL.md, Errors).
    pub enum Code {
        /// Bad params, an unknown method, a malformed `connect`.
        InvalidRequest = "INVALID_REQUEST",
        /// A missing scope or role; new requests paused.
        Forbidden = "FORBIDDEN",
        /// An unknown (or gone) request or device; `details.reason` says which.
        NotFound = "NOT_FOUND",
        /// The device must wait for the owner's approval.
        NotPaired = "NOT_PAIRED",
        /// Too many device requests wait already.
        PairingQueueFull = "PAIRING_QUEUE_FULL",
        /// The owner rejected the request a `waitForApproval` connection waited on.
        PairingRejected = "PAIRING_REJECTED",
        /// The request a `waitForApproval` connection waited on expired.
        PairingExpired = "PAIRING_EXPIRED",
        /// No valid credential; `details.code` says which failed.
        AuthFailed = "AUTH_FAILED",
        /// Too many failed authentications from this address.
        RateLimited = "RATE_LIMITED",
        /// The store could not be read or written, or the gateway could not decide.
        Unavailable = "UNAVAILABLE",
        /// Companion mode: the attached gateway has no way to do this.
        Unsupported = "UNSUPPORTED",
    }
}

/// An error code as an answer carries it: one of ours, or one another gateway sent (companion
/// mode, the client) that this build does not know, kept as it came.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Known(Code),
    Other(String),
}

impl ErrorCode {
    pub fn from_wire(s: &str) -> ErrorCode {
        Code::from_wire(s)
            .map(ErrorCode::Known)
            .unwrap_or_else(|| ErrorCode::Other(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::Known(c) => c.as_str(),
            ErrorCode::Other(s) => s,
        }
    }
    /// Whether this is `code`.
    pub fn is(&self, code: Code) -> bool {
        *self == ErrorCode::Known(code)
    }
}

impl From<Code> for ErrorCode {
    fn from(c: Code) -> Self {
        ErrorCode::Known(c)
    }
}

str_like!(ErrorCode);

impl PartialEq<Code> for ErrorCode {
    fn eq(&self, other: &Code) -> bool {
        self.is(*other)
    }
}

wire_enum! {
    /// How a pending request (a device's or a chat sender's) ended: `decision` of
    /// `device.pair.resolved` and `pairing.resolved`.
    pub enum Resolution {
        Approved = "approved",
        Rejected = "rejected",
        Expired = "expired",
        /// The same device sent a different request, which replaced this one.
        Superseded = "superseded",
        /// Companion mode: settled on the attached gateway, how is not known.
        Resolved = "resolved",
    }
}

wire_enum! {
    /// What happened to a paired device: `change` of `device.changed`.
    pub enum DeviceChange {
        /// Forgotten: its record, tokens and requests (its sockets close).
        Removed = "removed",
        /// A role's token replaced (that role's sockets close).
        Rotated = "rotated",
        /// A role's token revoked (that role's sockets close).
        Revoked = "revoked",
        /// Added by `clawpair import --from-openclaw`.
        Imported = "imported",
    }
}

wire_enum! {
    /// What happened to the setup codes: `change` of `setup.changed`.
    pub enum SetupChange {
        Created = "created",
        /// Every code not used up was revoked (`device.setup.cleanup`).
        Cleanup = "cleanup",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips_through_its_wire_string() {
        for c in Code::ALL {
            let v = serde_json::to_value(c).unwrap();
            assert_eq!(v, c.as_str());
            assert_eq!(serde_json::from_value::<Code>(v).unwrap(), *c);
            assert_eq!(ErrorCode::from_wire(c.as_str()), ErrorCode::Known(*c));
        }
        for r in Resolution::ALL {
            assert_eq!(Resolution::from_wire(r.as_str()), Some(*r));
        }
        for d in DeviceChange::ALL {
            assert_eq!(DeviceChange::from_wire(d.as_str()), Some(*d));
        }
        assert_eq!(
            serde_json::to_string(&Resolution::Superseded).unwrap(),
            "\"superseded\""
        );
    }

    #[test]
    fn a_code_from_another_gateway_is_kept_as_it_came() {
        let c = ErrorCode::from_wire("SOMETHING_NEW");
        assert_eq!(c, ErrorCode::Other("SOMETHING_NEW".into()));
        assert_eq!(serde_json::to_value(&c).unwrap(), "SOMETHING_NEW");
        assert!(ErrorCode::from_wire("NOT_FOUND").is(Code::NotFound));
        assert_eq!(ErrorCode::from(Code::Forbidden), "FORBIDDEN");
    }

    #[test]
    fn versions_cover_what_is_negotiated() {
        assert!(Versions::ALL.contains(3) && Versions::ALL.contains(4));
        assert!(!Versions::ALL.contains(2) && !Versions::ALL.contains(5));
    }
}
