//! Property-test generators shared by the tests that throw garbage at the gateway.

use proptest::prelude::*;
use serde_json::Value;

/// Arbitrary JSON, with object keys drawn mostly from `keys` (so some garbage hits real fields)
/// and strings up to `longest` characters.
pub fn json_with_keys(
    keys: &'static [&'static str],
    longest: usize,
    depth: u32,
) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        (1usize..=longest.max(1)).prop_map(|n| Value::from("x".repeat(n))),
        Just(Value::from("ws://127.0.0.1:18789/")),
        Just(Value::from("wss://gateway.example/")),
    ];
    leaf.prop_recursive(depth, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(keys).prop_map(String::from),
                    ".{0,8}".prop_map(String::from)
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
