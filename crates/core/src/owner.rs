//! What the owner can ask for, as types: every decision and list the window, the tray, the
//! notifications and the CLI make, defined once.
//!
//! A request becomes a gateway method and its params in one place ([`OwnerRequest::method`],
//! [`OwnerRequest::params`]), so nothing outside the method table names a method as a string.
//! Both backends match it exhaustively: ClawPair's own ([`crate::rpc`], through the method
//! name) and the OpenClaw mapping in companion mode (`attach::remote`), which has no wildcard
//! arm, so a new action does not compile until companion mode decides what it does there.

use serde::Serialize;

use crate::approval::ExecDecision;
use serde_json::Value;

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
