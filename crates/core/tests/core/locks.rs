//! A store lock held by another process stalls no one: writes that need it wait for it on
//! blocking threads, while the gateway keeps accepting connections and answering reads, and
//! once the lock is free every write lands. The other process is `flock(1)`, holding the same
//! OS lock the store takes on `<file>.lock`.

use crate::common;

use std::time::{Duration, Instant};

use common::gw::TestGateway;
use common::{HeldLock, State};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_keeps_answering_while_another_process_holds_a_store_lock() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    gw.service.allow_add("telegram", None, "1", "test").unwrap();
    let held = HeldLock::on(&st.file("credentials/telegram-allowFrom.json"));

    // More writers than the runtime has workers, each waiting for the lock.
    let mut writers = Vec::new();
    for sender in ["2", "3", "4", "5"] {
        let mut op = gw.operator().await;
        writers.push(tokio::spawn(async move {
            op.call(
                "allowlist.add",
                json!({ "channel": "telegram", "senderId": sender }),
            )
            .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        writers.iter().all(|w| !w.is_finished()),
        "the writers wait for the lock"
    );

    // Meanwhile new connections are let in and reads are answered at once.
    for _ in 0..5 {
        let started = Instant::now();
        let mut op = tokio::time::timeout(Duration::from_secs(3), gw.operator())
            .await
            .expect("a connect is answered while the lock is held");
        let listed = tokio::time::timeout(
            Duration::from_secs(3),
            op.call("allowlist.list", json!({ "channel": "telegram" })),
        )
        .await
        .expect("a read is answered while the lock is held")
        .unwrap();
        assert_eq!(
            listed["entries"].as_array().map(Vec::len),
            Some(1),
            "{listed}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        op.close().await;
    }

    drop(held);
    for w in writers {
        let r = tokio::time::timeout(Duration::from_secs(10), w)
            .await
            .expect("the writers finish once the lock is free")
            .unwrap();
        assert!(r.is_ok(), "{r:?}");
    }
    let allowed: Vec<String> = gw
        .service
        .allow_list(Some("telegram"))
        .unwrap()
        .into_iter()
        .map(|a| a.sender_id)
        .collect();
    assert_eq!(allowed.len(), 5, "nothing lost: {allowed:?}");
    gw.stop().await;
}
