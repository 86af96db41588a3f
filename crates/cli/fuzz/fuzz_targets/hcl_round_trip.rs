//! The HCL 1 config parser: whatever tree it reads from any text, written back as HCL, reads
//! again as the same tree (lines aside), with either number rule.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    lanyard_cli_fuzz::check_round_trip(text);
});
