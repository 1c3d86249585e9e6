//! The body of a delivery: the event's own fields as its node-host raised them, under the
//! common fields the scheduler sets itself (the tenant's node id is the one whose
//! node-host called, never what the event says).

use serde_json::{Map, Value};
use skylight_proto::outbox::OutboxEvent;

/// The payload version, Greenlight's `version` field.
pub const VERSION: u64 = 1;

/// The event types a node-host may raise.
pub const EVENT_TYPES: &[&str] = &["invoice_payment", "signer_needed", "node_stuck"];

/// The most an event's own fields may take.
pub const MAX_FIELDS: usize = 16 * 1024;

/// The most bytes of an event id.
const MAX_EVENT_ID: usize = 64;

/// The common fields, which an event's own may not replace.
const COMMON: &[&str] = &["version", "event_id", "node_id", "event_type", "timestamp"];

/// The JSON body for `event` of the tenant `node_id`, or why it is not taken.
pub fn body(node_id: &[u8; 33], event: &OutboxEvent) -> Result<String, String> {
    if !EVENT_TYPES.contains(&event.event_type.as_str()) {
        return Err(format!("unknown event type {:?}", event.event_type));
    }
    if event.event_id.is_empty()
        || event.event_id.len() > MAX_EVENT_ID
        || !event
            .event_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "event id {:?} is not a short token",
            event.event_id
        ));
    }
    if event.fields_json.len() > MAX_FIELDS {
        return Err(format!("its fields take more than {MAX_FIELDS} bytes"));
    }
    let fields: Map<String, Value> = serde_json::from_str(&event.fields_json)
        .map_err(|e| format!("its fields are not a JSON object: {e}"))?;
    let mut body = Map::new();
    body.insert("version".into(), VERSION.into());
    body.insert("event_id".into(), event.event_id.clone().into());
    body.insert("node_id".into(), hex::encode(node_id).into());
    body.insert("event_type".into(), event.event_type.clone().into());
    body.insert("timestamp".into(), event.timestamp.into());
    for (k, v) in fields {
        if !COMMON.contains(&k.as_str()) {
            body.insert(k, v);
        }
    }
    serde_json::to_string(&Value::Object(body)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, fields: &str) -> OutboxEvent {
        OutboxEvent {
            seq: 1,
            event_id: "7263".into(),
            event_type: event_type.into(),
            timestamp: 1_700_000_000,
            fields_json: fields.into(),
        }
    }

    #[test]
    fn the_body_has_the_common_fields_the_scheduler_knows_and_the_events_own() {
        let node = [2u8; 33];
        let b = body(
            &node,
            &event(
                "invoice_payment",
                r#"{"amount_msat":1000,"label":"x","node_id":"forged"}"#,
            ),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["event_id"], "7263");
        assert_eq!(v["node_id"], hex::encode(node), "never the event's own");
        assert_eq!(v["event_type"], "invoice_payment");
        assert_eq!(v["timestamp"], 1_700_000_000u64);
        assert_eq!(v["amount_msat"], 1000);
        assert_eq!(v["label"], "x");
    }

    #[test]
    fn an_unknown_type_a_bad_id_or_fields_that_are_not_an_object_are_refused() {
        let node = [2u8; 33];
        assert!(body(&node, &event("rm_rf", "{}")).is_err());
        assert!(body(&node, &event("signer_needed", "[1]")).is_err());
        let mut e = event("signer_needed", "{}");
        e.event_id = "a b".into();
        assert!(body(&node, &e).is_err());
        let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(MAX_FIELDS));
        assert!(body(&node, &event("signer_needed", &big)).is_err());
    }
}
