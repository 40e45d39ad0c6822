//! Unit tests: the example section parses and validates, validation names keys, JSON mappings
//! produce the expected line protocol, and batches write through a real engine.

use serde::Deserialize;

use crate::config::{CompiledMapping, JsonMapping, SubscriptionConfig};
use crate::mapping::map_message;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    mqtt: Vec<SubscriptionConfig>,
}

fn parse(toml_text: &str) -> Vec<SubscriptionConfig> {
    toml::from_str::<File>(toml_text).expect("parses").mqtt
}

fn mapping(toml_text: &str) -> CompiledMapping {
    let m: JsonMapping = toml::from_str(toml_text).expect("mapping parses");
    m.compile().expect("mapping compiles")
}

fn rows(m: &CompiledMapping, topic: &str, payload: &str) -> Result<String, String> {
    let mut out = String::new();
    map_message(m, topic, payload.as_bytes(), 7, &mut out).map(|_| out)
}

#[test]
fn the_example_parses_and_validates() {
    let subs = parse(crate::EXAMPLE_TOML);
    assert_eq!(subs.len(), 1);
    let s = &subs[0];
    assert_eq!(s.name, "factory");
    assert_eq!(s.batch_max_messages, 1000);
    assert_eq!(s.effective_client_id(), "hourglass-factory");
    s.validate().expect("the example is valid");
}

#[test]
fn defaults_and_unknown_keys() {
    let subs = parse("[[mqtt]]\nname='a'\nurl='mqtt://h'\ntopics=['t/#']\ndatabase='db'\n");
    let s = &subs[0];
    assert_eq!(s.format, crate::PayloadFormat::LineProtocol);
    assert_eq!(s.broker().unwrap(), ("h".to_string(), 1883, false));
    s.validate().unwrap();
    let s = &parse("[[mqtt]]\nname='a'\nurl='mqtt://h'\ntopics=['t']\ndatabase='db'\nusername='u'\npassword='hunter2'\n")[0];
    assert_eq!(s.password.as_ref().unwrap().0, "hunter2");
    assert!(!format!("{s:?}").contains("hunter2"));
    let err = toml::from_str::<File>(
        "[[mqtt]]\nname='a'\nurl='mqtt://h'\ntopics=['t']\ndatabase='db'\ntopic='x'\n",
    )
    .err()
    .expect("unknown key refused")
    .to_string();
    assert!(err.contains("topic"), "{err}");
    let err = toml::from_str::<File>(
        "[[mqtt]]\nname='a'\nurl='mqtt://h'\ntopics=['t']\ndatabase='db'\nformat='json'\n[mqtt.json]\ntable='t'\ntime_unit='hours'\n",
    )
    .err()
    .expect("bad unit refused")
    .to_string();
    assert!(err.contains("hours"), "{err}");
}

#[test]
fn validation_names_the_key() {
    let base = "[[mqtt]]\nname='a'\ntopics=['t']\ndatabase='db'\n";
    let cases = [
        ("url='http://h'\n", "mqtt[a].url"),
        ("url='mqtt://u:p@h'\n", "mqtt[a].url"),
        ("url='mqtt://h/x'\n", "mqtt[a].url"),
        ("url='mqtt://h'\nprecision='hours'\n", "mqtt[a].precision"),
        ("url='mqtt://h'\n[mqtt.tls]\nca_file='x'\n", "mqtt[a].tls"),
        ("url='mqtt://h'\nformat='json'\n", "mqtt[a].json"),
        (
            "url='mqtt://h'\nformat='json'\n[mqtt.json]\ntable='t'\ntopic_template='a/{x'\n",
            "mqtt[a].json.topic_template",
        ),
        (
            "url='mqtt://h'\nformat='json'\n[mqtt.json]\ntable='{site}'\n",
            "mqtt[a].json.table",
        ),
        (
            "url='mqtt://h'\nformat='json'\n[mqtt.json]\ntable='t'\ntime_path='a..b'\n",
            "mqtt[a].json.time_path",
        ),
        (
            "url='mqtt://h'\ndead_letter_topic='dl/#'\n",
            "mqtt[a].dead_letter_topic",
        ),
    ];
    for (extra, key) in cases {
        let text = format!("{base}{extra}");
        let s = &parse(&text)[0];
        let err = s.validate().expect_err(extra);
        assert!(err.starts_with(key), "{extra}: {err}");
    }
    let s = &parse("[[mqtt]]\nname='a'\ntopics=['a/+x']\ndatabase='db'\nurl='mqtt://h'\n")[0];
    assert!(s.validate().unwrap_err().starts_with("mqtt[a].topics"));
    let s = &parse("[[mqtt]]\nname='a'\ntopics=['t']\ndatabase='_x'\nurl='mqtts://h:1'\n")[0];
    assert!(s.validate().unwrap_err().starts_with("mqtt[a].database"));
}

#[test]
fn topic_template_and_payload_paths() {
    let m = mapping(
        "table='telemetry'\ntopic_template='factory/{site}/{device}/telemetry'\n\
         time_path='ts'\ntime_unit='ms'\n[dimensions]\nline='meta.line'\n[measures]\n\
         temperature='temp'\nok='status.ok'\n",
    );
    let out = rows(
        &m,
        "factory/berlin/press 7/telemetry",
        r#"{"ts": 1700000000123, "temp": 21.5, "meta": {"line": "L,1"}, "status": {"ok": true}, "x": 1}"#,
    )
    .unwrap();
    assert_eq!(
        out,
        "telemetry,site=berlin,device=press\\ 7,line=L\\,1 ok=true,temperature=21.5 1700000000123000000\n"
    );
    let err = rows(&m, "factory/berlin/telemetry", r#"{"ts": 1, "temp": 1}"#).unwrap_err();
    assert!(err.contains("fewer levels"), "{err}");
    let err = rows(&m, "factory/a/b/telemetry", r#"{"temp": 1}"#).unwrap_err();
    assert!(err.contains("time_path 'ts' not found"), "{err}");
    let err = rows(&m, "factory/a/b/telemetry", "{not json").unwrap_err();
    assert!(err.contains("not JSON"), "{err}");
    let err = rows(&m, "factory/a/b/telemetry", r#"{"ts": 1, "other": 1}"#).unwrap_err();
    assert!(err.contains("no measure values"), "{err}");
}

#[test]
fn every_other_scalar_becomes_a_measure() {
    let m = mapping("table='{kind}'\ntopic_template='plant/{kind}/+'\ntime_path='t'\ntime_unit='s'\n[dimensions]\ndevice='id'\n");
    let out = rows(
        &m,
        "plant/boiler/x",
        r#"{"t": 1.5, "id": "b1", "p": 2, "on": false, "note": "a \"q\"\\", "env": {"h": 40}, "list": [1], "n": null}"#,
    )
    .unwrap();
    assert_eq!(
        out,
        "boiler,device=b1 env_h=40.0,note=\"a \\\"q\\\"\\\\\",on=false,p=2.0 1500000000\n"
    );
}

#[test]
fn arrays_of_readings_share_the_envelope() {
    let m = mapping(
        "table='r'\nrecords_path='readings'\ntime_path='ts'\ntime_unit='rfc3339'\nnumbers='infer'\n\
         [dimensions]\ndevice='$.device'\nsensor='sensor'\n",
    );
    let out = rows(
        &m,
        "any",
        r#"{"device": "d1", "battery": 3, "readings": [
            {"sensor": "a", "ts": "2024-01-01T00:00:00Z", "v": 1, "w": 1.25},
            {"sensor": "b", "ts": "2024-01-01T00:00:01.5+01:00", "v": -2}]}"#,
    )
    .unwrap();
    assert_eq!(
        out,
        "r,device=d1,sensor=a v=1i,w=1.25 1704067200000000000\n\
         r,device=d1,sensor=b v=-2i 1704063601500000000\n"
    );
    let err = rows(
        &m,
        "any",
        r#"{"readings": [{"v": 1, "ts": "2024-01-01T00:00:00Z"}, 5]}"#,
    )
    .unwrap_err();
    assert!(err.contains("reading 1"), "{err}");
    let err = rows(&m, "any", r#"{"readings": {"v": 1}}"#).unwrap_err();
    assert!(err.contains("not an array"), "{err}");
    // Explicit measures may come from the envelope; arrival time when no time path.
    let m = mapping("table='r'\nrecords_path='rs'\n[measures]\nv='v'\nbattery='battery'\n");
    let out = rows(&m, "t", r#"{"battery": 3.5, "rs": [{"v": 1}, {"v": 2}]}"#).unwrap();
    assert_eq!(out, "r battery=3.5,v=1.0 7\nr battery=3.5,v=2.0 7\n");
}

#[test]
fn time_units() {
    for (unit, value, expect) in [
        ("s", "17", 17_000_000_000i64),
        ("ms", "17", 17_000_000),
        ("us", "17", 17_000),
        ("ns", "17", 17),
        ("ms", "\"17\"", 17_000_000),
        ("s", "1.000000001", 1_000_000_001),
    ] {
        let m = mapping(&format!("table='t'\ntime_path='t'\ntime_unit='{unit}'\n"));
        let out = rows(&m, "x", &format!(r#"{{"t": {value}, "v": 1}}"#)).unwrap();
        assert_eq!(out, format!("t v=1.0 {expect}\n"), "{unit} {value}");
    }
    let m = mapping("table='t'\ntime_path='t'\ntime_unit='s'\n");
    assert!(rows(&m, "x", r#"{"t": 1e30, "v": 1}"#).is_err());
    assert!(rows(&m, "x", r#"{"t": true, "v": 1}"#).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_writes_and_maps_line_errors_back_to_messages() {
    use crate::batch::{write_batch, Message};
    let dir = tempfile::tempdir().unwrap();
    let clock: hourglass_core::SharedClock = std::sync::Arc::new(hourglass_core::SystemClock);
    let engine =
        hourglass_storage::Engine::open(hourglass_storage::EngineConfig::new(dir.path()), clock)
            .await
            .unwrap();
    let now = 1_700_000_000_000_000_000i64;
    let msg = |topic: &str, payload: &str| Message {
        topic: topic.to_string(),
        payload: bytes::Bytes::from(payload.to_string()),
        arrival_ns: now,
    };
    let t = engine.clock.now_nanos();
    let messages = vec![
        msg("a", &format!("m,d=1 v=1 {t}\nm,d=2 v=2 {t}")),
        msg("b", &format!("m,d=3 v=\"text\" {t}\n")),
        msg("c", "   "),
        msg("d", &format!("m,d=4 v=4 {t}\nbroken line\n")),
    ];
    let engine2 = engine.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        write_batch(
            &engine2,
            "db",
            hourglass_core::time::Precision::Nanosecond,
            None,
            &messages,
        )
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(outcome.rows, 3);
    assert!(outcome.rejected[0].is_none());
    let b = outcome.rejected[1].as_deref().unwrap();
    assert!(b.starts_with("row 1:"), "{b}");
    assert!(outcome.rejected[2].as_deref().unwrap().contains("empty"));
    let d = outcome.rejected[3].as_deref().unwrap();
    assert!(d.starts_with("row 2:"), "{d}");
    engine.shutdown();
}
