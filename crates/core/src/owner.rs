//! What the owner can ask for, as types: every decision and list the window, the tray, the
//! notifications and the CLI make, defined once.
//!
//! A request becomes a gateway method and its params in one place ([`OwnerRequest::method`],
//! [`OwnerRequest::params`]), so nothing outside the method table names a method as a string.
//! What each one answers is named by the request too ([`OwnerRequest::answer_kind`]) and read as
//! a type ([`Answer`]): callers get typed listings and decisions, whichever backend answered.
//! Both backends match it exhaustively: ClawPair's own ([`crate::rpc`], through the method
//! name) and the OpenClaw mapping in companion mode (`attach::remote`), which has no wildcard
//! arm, so a new action does not compile until companion mode decides what it does there.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::approval::{ExecDecision, PendingExec};
use crate::events::DmRequestView;
use crate::pairing::node::PendingNode;
use crate::protocol::Code;
use crate::rpc::RpcError;
use crate::service::{AllowView, DeviceList, DmApproved, PairedDeviceView, SetupCode};

/// One owner action. Serialised as `{"method": …, "params": {…}}`, in the gateway's names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "method", content = "params")]
pub enum OwnerRequest {
    #[serde(rename = "device.pair.list")]
    DeviceList {},
    #[serde(rename = "device.pair.approve", rename_all = "camelCase")]
    DeviceApprove {
        request_id: String,
        /// Grant what it asked for less `operator.admin`.
        without_admin: bool,
    },
    #[serde(rename = "device.pair.reject", rename_all = "camelCase")]
    DeviceReject { request_id: String },
    #[serde(rename = "device.pair.remove", rename_all = "camelCase")]
    DeviceRemove { device_id: String },
    #[serde(rename = "device.pair.rename", rename_all = "camelCase")]
    DeviceRename { device_id: String, label: String },
    /// Every paired device (and, with `pending`, every waiting request).
    #[serde(rename = "device.pair.clear", rename_all = "camelCase")]
    DeviceClear { pending: bool },
    #[serde(rename = "device.token.rotate", rename_all = "camelCase")]
    TokenRotate { device_id: String, role: String },
    #[serde(rename = "device.token.revoke", rename_all = "camelCase")]
    TokenRevoke { device_id: String, role: String },
    #[serde(rename = "device.setup.create", rename_all = "camelCase")]
    SetupCreate {
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// Revoke the live codes this caller made before (the window's "New code").
        retire_previous: bool,
    },
    #[serde(rename = "device.setup.cleanup")]
    SetupCleanup {},
    /// Nodes waiting for their capabilities or commands to be approved, and paired nodes.
    #[serde(rename = "node.pair.list")]
    NodeList {},
    #[serde(rename = "node.pair.approve", rename_all = "camelCase")]
    NodeApprove { request_id: String },
    #[serde(rename = "node.pair.reject", rename_all = "camelCase")]
    NodeReject { request_id: String },
    /// Commands agents wait to run (exec approvals).
    #[serde(rename = "exec.approval.list")]
    ExecList {},
    /// Answers one exec approval, named by its id.
    #[serde(rename = "exec.approval.resolve")]
    ExecResolve { id: String, decision: ExecDecision },
    #[serde(rename = "pairing.list", rename_all = "camelCase")]
    DmList {
        #[serde(skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
    },
    #[serde(rename = "pairing.approve", rename_all = "camelCase")]
    DmApprove {
        #[serde(skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        code: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
        /// Ask the channel to tell the sender.
        notify: bool,
    },
    #[serde(rename = "pairing.reject", rename_all = "camelCase")]
    DmReject {
        #[serde(skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        code: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
    },
    #[serde(rename = "allowlist.list", rename_all = "camelCase")]
    AllowList {
        #[serde(skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
    },
    #[serde(rename = "allowlist.add", rename_all = "camelCase")]
    AllowAdd {
        channel: String,
        sender_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
    },
    #[serde(rename = "allowlist.remove", rename_all = "camelCase")]
    AllowRemove {
        channel: String,
        sender_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
    },
    #[serde(rename = "audit.tail")]
    AuditTail { limit: usize },
    /// A new admin token; every session that used the old one is closed.
    #[serde(rename = "gateway.token.rotate")]
    AdminTokenRotate {},
}

impl OwnerRequest {
    /// The gateway method that carries it (one of [`crate::rpc::METHODS`]).
    pub fn method(&self) -> &'static str {
        match self {
            OwnerRequest::DeviceList {} => "device.pair.list",
            OwnerRequest::DeviceApprove { .. } => "device.pair.approve",
            OwnerRequest::DeviceReject { .. } => "device.pair.reject",
            OwnerRequest::DeviceRemove { .. } => "device.pair.remove",
            OwnerRequest::DeviceRename { .. } => "device.pair.rename",
            OwnerRequest::DeviceClear { .. } => "device.pair.clear",
            OwnerRequest::TokenRotate { .. } => "device.token.rotate",
            OwnerRequest::TokenRevoke { .. } => "device.token.revoke",
            OwnerRequest::SetupCreate { .. } => "device.setup.create",
            OwnerRequest::SetupCleanup {} => "device.setup.cleanup",
            OwnerRequest::NodeList {} => "node.pair.list",
            OwnerRequest::NodeApprove { .. } => "node.pair.approve",
            OwnerRequest::NodeReject { .. } => "node.pair.reject",
            OwnerRequest::ExecList {} => "exec.approval.list",
            OwnerRequest::ExecResolve { .. } => "exec.approval.resolve",
            OwnerRequest::DmList { .. } => "pairing.list",
            OwnerRequest::DmApprove { .. } => "pairing.approve",
            OwnerRequest::DmReject { .. } => "pairing.reject",
            OwnerRequest::AllowList { .. } => "allowlist.list",
            OwnerRequest::AllowAdd { .. } => "allowlist.add",
            OwnerRequest::AllowRemove { .. } => "allowlist.remove",
            OwnerRequest::AuditTail { .. } => "audit.tail",
            OwnerRequest::AdminTokenRotate {} => "gateway.token.rotate",
        }
    }

    /// What it answers.
    pub fn answer_kind(&self) -> AnswerKind {
        use AnswerKind as K;
        match self {
            OwnerRequest::DeviceList {} => K::Devices,
            OwnerRequest::DeviceApprove { .. } => K::DeviceApproved,
            OwnerRequest::SetupCreate { .. } => K::SetupCode,
            OwnerRequest::NodeList {} => K::Nodes,
            OwnerRequest::ExecList {} => K::Execs,
            OwnerRequest::DmList { .. } => K::DmRequests,
            OwnerRequest::DmApprove { .. } => K::DmApproved,
            OwnerRequest::AllowList { .. } => K::Allowlist,
            OwnerRequest::AllowAdd { .. } => K::AllowAdded,
            OwnerRequest::AllowRemove { .. } => K::AllowRemoved,
            OwnerRequest::DeviceReject { .. }
            | OwnerRequest::DeviceRemove { .. }
            | OwnerRequest::DeviceRename { .. }
            | OwnerRequest::DeviceClear { .. }
            | OwnerRequest::TokenRotate { .. }
            | OwnerRequest::TokenRevoke { .. }
            | OwnerRequest::SetupCleanup {}
            | OwnerRequest::NodeApprove { .. }
            | OwnerRequest::NodeReject { .. }
            | OwnerRequest::ExecResolve { .. }
            | OwnerRequest::DmReject { .. }
            | OwnerRequest::AuditTail { .. }
            | OwnerRequest::AdminTokenRotate {} => K::Done,
        }
    }

    /// Its params, as the method takes them.
    pub fn params(&self) -> Value {
        serde_json::to_value(self)
            .ok()
            .and_then(|mut v| v.get_mut("params").map(Value::take))
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::Object(Default::default()))
    }

    /// Whether it only reads (a list): nothing to record as a decision.
    pub fn reads_only(&self) -> bool {
        matches!(
            self,
            OwnerRequest::DeviceList {}
                | OwnerRequest::NodeList {}
                | OwnerRequest::ExecList {}
                | OwnerRequest::DmList { .. }
                | OwnerRequest::AllowList { .. }
                | OwnerRequest::AuditTail { .. }
        )
    }

    /// One of each, for tests that must see every action.
    pub fn examples() -> Vec<OwnerRequest> {
        let s = |x: &str| x.to_string();
        vec![
            OwnerRequest::DeviceList {},
            OwnerRequest::DeviceApprove {
                request_id: s("r1"),
                without_admin: true,
            },
            OwnerRequest::DeviceReject {
                request_id: s("r1"),
            },
            OwnerRequest::DeviceRemove { device_id: s("d1") },
            OwnerRequest::DeviceRename {
                device_id: s("d1"),
                label: s("Phone"),
            },
            OwnerRequest::DeviceClear { pending: true },
            OwnerRequest::TokenRotate {
                device_id: s("d1"),
                role: s("node"),
            },
            OwnerRequest::TokenRevoke {
                device_id: s("d1"),
                role: s("node"),
            },
            OwnerRequest::SetupCreate {
                url: Some(s("ws://192.168.1.2:18789/")),
                retire_previous: true,
            },
            OwnerRequest::SetupCleanup {},
            OwnerRequest::NodeList {},
            OwnerRequest::NodeApprove {
                request_id: s("n1"),
            },
            OwnerRequest::NodeReject {
                request_id: s("n1"),
            },
            OwnerRequest::ExecList {},
            OwnerRequest::ExecResolve {
                id: s("e1"),
                decision: ExecDecision::AllowOnce,
            },
            OwnerRequest::DmList {
                channel: Some(s("telegram")),
            },
            OwnerRequest::DmApprove {
                channel: Some(s("telegram")),
                code: s("ABCDEFGH"),
                account_id: None,
                notify: true,
            },
            OwnerRequest::DmReject {
                channel: None,
                code: s("ABCDEFGH"),
                account_id: Some(s("work")),
            },
            OwnerRequest::AllowList { channel: None },
            OwnerRequest::AllowAdd {
                channel: s("telegram"),
                sender_id: s("42"),
                account_id: None,
            },
            OwnerRequest::AllowRemove {
                channel: s("telegram"),
                sender_id: s("42"),
                account_id: None,
            },
            OwnerRequest::AuditTail { limit: 10 },
            OwnerRequest::AdminTokenRotate {},
        ]
    }
}

/// The kinds of answer ([`OwnerRequest::answer_kind`]); each is one [`Answer`] type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    Devices,
    DeviceApproved,
    SetupCode,
    Nodes,
    Execs,
    DmRequests,
    DmApproved,
    Allowlist,
    AllowAdded,
    AllowRemoved,
    /// Done, with nothing a caller reads (a CLI prints it as it came, for scripts).
    Done,
}

/// An answer read as a type: implemented once per [`AnswerKind`].
pub trait Answer: DeserializeOwned {
    const KIND: AnswerKind;

    /// Reads the answer to `req`, which must be of this kind: a caller asking for the wrong
    /// type, or a backend answering out of shape, is an error naming the method.
    fn read(req: &OwnerRequest, v: Value) -> Result<Self, RpcError> {
        if req.answer_kind() != Self::KIND {
            return Err(RpcError::new(
                Code::Unavailable,
                format!(
                    "{} answers {:?}, not {:?}",
                    req.method(),
                    req.answer_kind(),
                    Self::KIND
                ),
            ));
        }
        serde_json::from_value(v).map_err(|e| {
            RpcError::new(
                Code::Unavailable,
                format!(
                    "the answer to {} is not what it should be: {e}",
                    req.method()
                ),
            )
        })
    }
}

/// `device.pair.approve`: the device as paired now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceApproved {
    pub request_id: String,
    pub device: PairedDeviceView,
}

/// A paired node and what it may expose.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PairedNodeView {
    pub node_id: String,
    pub display_name: String,
    pub platform: String,
    pub caps: Vec<String>,
    pub commands: Vec<String>,
}

/// `node.pair.list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeList {
    pub pending: Vec<PendingNode>,
    #[serde(default)]
    pub paired: Vec<PairedNodeView>,
}

/// `pairing.list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DmRequests {
    pub requests: Vec<DmRequestView>,
}

/// `allowlist.list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Allowlist {
    pub entries: Vec<AllowView>,
}

/// `allowlist.add`: whether the sender was not there before.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AllowAdded {
    pub added: bool,
}

/// `allowlist.remove`: whether the sender was there.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AllowRemoved {
    pub removed: bool,
}

/// An action done, whatever it answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Done;

impl<'de> Deserialize<'de> for Done {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Done)
    }
}

/// Each kind's type, in one list: the [`Answer`] impls and [`AnswerKind::check`] both come
/// from it.
macro_rules! answers {
    ($($t:ty => $k:ident),* $(,)?) => {
        $(impl Answer for $t {
            const KIND: AnswerKind = AnswerKind::$k;
        })*

        impl AnswerKind {
            /// Whether `v` reads as this kind's type (`Err`: what does not fit).
            pub fn check(self, v: &Value) -> Result<(), String> {
                fn fits<A: DeserializeOwned>(v: &Value) -> Result<(), String> {
                    A::deserialize(v).map(|_| ()).map_err(|e| e.to_string())
                }
                match self {
                    $(AnswerKind::$k => fits::<$t>(v),)*
                }
            }
        }
    };
}

answers! {
    DeviceList => Devices,
    DeviceApproved => DeviceApproved,
    SetupCode => SetupCode,
    NodeList => Nodes,
    Vec<PendingExec> => Execs,
    DmRequests => DmRequests,
    DmApproved => DmApproved,
    Allowlist => Allowlist,
    AllowAdded => AllowAdded,
    AllowRemoved => AllowRemoved,
    Done => Done,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_action_is_a_method_of_the_table_under_its_own_name() {
        let all = OwnerRequest::examples();
        let names: std::collections::BTreeSet<&str> = all.iter().map(|r| r.method()).collect();
        assert_eq!(names.len(), all.len(), "one example of each, no two alike");
        for r in &all {
            assert!(
                crate::rpc::method(r.method()).is_some(),
                "{} is not in the method table",
                r.method()
            );
            let v = serde_json::to_value(r).unwrap();
            assert_eq!(v["method"], r.method(), "the serialised name is the method");
            assert!(
                r.params().is_object(),
                "{}: params are an object",
                r.method()
            );
        }
    }

    #[test]
    fn params_are_the_gateways_own_names() {
        let r = OwnerRequest::DeviceApprove {
            request_id: "r1".into(),
            without_admin: false,
        };
        assert_eq!(
            r.params(),
            json!({ "requestId": "r1", "withoutAdmin": false })
        );
        assert_eq!(OwnerRequest::DeviceList {}.params(), json!({}));
        let r = OwnerRequest::DmApprove {
            channel: None,
            code: "C".into(),
            account_id: None,
            notify: false,
        };
        assert_eq!(r.params(), json!({ "code": "C", "notify": false }));
    }
}
