//! SPIRE connection strings: no panic on any text, for either engine; an accepted string
//! becomes a URL the `url` crate parses, and translating that URL again gives it back
//! unchanged; redaction never panics.
#![no_main]

use lanyard_datastore::connstr::{ConnEngine, redact, to_url};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Connection strings come from a UTF-8 config file; other bytes never reach the translator.
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };

    for engine in [ConnEngine::Postgres, ConnEngine::Mysql] {
        if let Ok(url) = to_url(engine, s) {
            if let Err(e) = url::Url::parse(&url) {
                panic!("{engine} output {url:?} is not a URL: {e}");
            }
            // The output is in normal form: reading it again must neither fail nor change it.
            match to_url(engine, &url) {
                Ok(again) => assert_eq!(again, url, "{engine} translation is not idempotent"),
                Err(e) => panic!("{engine} refuses its own output {url:?}: {e}"),
            }
            let _ = redact(&url);
        }
    }
    let _ = redact(s);
});
