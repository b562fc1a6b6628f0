//! The typed owner API on ClawPair's own backend: every action, with real requests waiting,
//! answers what its kind says, so the window, tray, notifications and CLI can read it as a type.

use crate::common;

use std::collections::BTreeSet;

use clawpair_core::approval::ExecDecision;
use clawpair_core::attach::Backend;
use clawpair_core::owner::{AnswerKind, DmRequests, OwnerRequest};
use clawpair_core::protocol::Code;
use clawpair_core::service::DeviceList;
use common::gw::TestGateway;
use common::State;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_answers_as_its_kind() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let backend = Backend::Local(gw.service.clone());
    let (_, waiting) = gw.device_request("operator", &["operator.read"]).await;
    let (_, other) = gw.device_request("operator", &["operator.read"]).await;
    let (phone, _) = gw.paired_phone().await;
    let mut bridge = gw.operator().await;
    for sender in ["1001", "1002"] {
        bridge
            .call(
                "channel.inbound",
                json!({ "channel": "telegram", "senderId": sender, "text": "hi" }),
            )
            .await
            .expect("a decision");
    }
    let dms: DmRequests = backend
        .ask("window", &OwnerRequest::DmList { channel: None })
        .await
        .expect("the requests, typed");
    let [first, second] = &dms.requests[..] else {
        panic!("two chat-sender requests: {dms:?}")
    };
    let listed: DeviceList = backend
        .ask("window", &OwnerRequest::DeviceList {})
        .await
        .expect("the devices, typed");
    assert_eq!(listed.pending.len(), 2);
    assert_eq!(listed.paired.len(), 1);

    let s = |x: &str| x.to_string();
    let telegram = Some(s("telegram"));
    let device = phone.device_id();
    // Every action once, in an order in which each one finds what it acts on.
    let actions = vec![
        OwnerRequest::DeviceList {},
        OwnerRequest::DeviceApprove {
            request_id: waiting,
            without_admin: false,
        },
        OwnerRequest::DeviceReject { request_id: other },
        OwnerRequest::DeviceRename {
            device_id: device.clone(),
            label: s("Phone"),
        },
        OwnerRequest::TokenRotate {
            device_id: device.clone(),
            role: s("node"),
        },
        OwnerRequest::TokenRevoke {
            device_id: device.clone(),
            role: s("node"),
        },
        OwnerRequest::DeviceRemove { device_id: device },
        OwnerRequest::SetupCreate {
            url: Some(s("ws://192.168.1.2:18789/")),
            retire_previous: true,
        },
        OwnerRequest::SetupCleanup {},
        OwnerRequest::DeviceClear { pending: true },
        OwnerRequest::NodeList {},
        OwnerRequest::ExecList {},
        OwnerRequest::DmList {
            channel: telegram.clone(),
        },
        OwnerRequest::DmApprove {
            channel: telegram.clone(),
            code: first.code.clone(),
            account_id: None,
            notify: false,
        },
        OwnerRequest::DmReject {
            channel: telegram.clone(),
            code: second.code.clone(),
            account_id: None,
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
        OwnerRequest::AuditTail { limit: 5 },
        OwnerRequest::AdminTokenRotate {},
    ];
    // ClawPair's own gateway has no nodes asking for capabilities and no agents asking to run
    // commands: deciding one is refused as unknown (attached, OpenClaw answers them).
    let none_here = [
        OwnerRequest::NodeApprove {
            request_id: s("n1"),
        },
        OwnerRequest::NodeReject {
            request_id: s("n1"),
        },
        OwnerRequest::ExecResolve {
            id: s("e1"),
            decision: ExecDecision::Deny,
        },
    ];
    for req in &none_here {
        let e = backend
            .call("window", None, req)
            .await
            .expect_err("nothing to decide");
        assert_eq!(e.code, Code::NotFound, "{}: {}", req.method(), e.message);
    }
    let every: BTreeSet<&str> = OwnerRequest::examples()
        .iter()
        .map(|r| r.method())
        .collect();
    let here: BTreeSet<&str> = actions
        .iter()
        .chain(&none_here)
        .map(|r| r.method())
        .collect();
    assert_eq!(here, every, "every action is tried");
    for req in &actions {
        let v = backend
            .call("window", None, req)
            .await
            .unwrap_or_else(|e| panic!("{}: {}", req.method(), e.message));
        let kind = req.answer_kind();
        if let Err(e) = kind.check(&v) {
            panic!("{} does not answer {kind:?}: {e}\n{v:#}", req.method());
        }
    }
    // Asking for the wrong type is refused, named, not misread.
    let wrong = backend
        .ask::<DmRequests>("window", &OwnerRequest::DeviceList {})
        .await
        .expect_err("a device list is not a chat-sender list");
    assert!(
        wrong.message.contains("device.pair.list") && wrong.message.contains("Devices"),
        "{}",
        wrong.message
    );
    assert_eq!(AnswerKind::Done.check(&json!(null)), Ok(()));
    gw.stop().await;
}
