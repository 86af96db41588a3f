//! The HCL 1 config parser: no panic and an end on any text, with SPIRE's and spiffe-helper's
//! number rules alike; every typed reader and the SPIRE shape hold up on what it accepts; a
//! refusal is a syntax or interpolation error on a line of the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The config reader refuses a file that is not UTF-8 before parsing it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    lanyard_cli_fuzz::check_parse(text);
});
